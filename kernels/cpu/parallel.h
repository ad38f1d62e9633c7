// A fixed pool of worker threads for data-parallel loops. Work is split over
// independent outputs only (never over a reduction), so results do not depend
// on the number of threads.
#ifndef SLABSERVE_KERNELS_CPU_PARALLEL_H_
#define SLABSERVE_KERNELS_CPU_PARALLEL_H_

#include <cstdint>
#include <functional>

namespace slabserve::cpu {

// Threads used by ParallelFor (default: hardware concurrency). Call before
// the first ParallelFor; later calls have no effect.
void SetNumThreads(int threads);
int NumThreads();

// Calls fn(begin, end) over disjoint ranges covering [0, n), possibly on
// several threads; returns when all are done. Ranges hold at least
// `min_grain` items (except the last) so small loops stay on one thread.
void ParallelFor(int64_t n, int64_t min_grain,
                 const std::function<void(int64_t, int64_t)>& fn);

}  // namespace slabserve::cpu

#endif  // SLABSERVE_KERNELS_CPU_PARALLEL_H_
