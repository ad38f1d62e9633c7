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
// Called from inside another ParallelFor's fn, it runs fn(0, n) on the
// calling thread: the outer loop already spreads the work.
void ParallelFor(int64_t n, int64_t min_grain,
                 const std::function<void(int64_t, int64_t)>& fn);

// How a matrix product's outputs ([rows] × [panels] of 16 columns, k steps
// each) are cut into parallel work items: blocks of up to `block_rows` rows
// × `block_panels` panels (a multiple of `panel_group`, at most
// `max_block_panels`; narrower when there are few rows, so that every thread
// gets work), each big enough to be worth a thread.
struct ProductBlocks {
  int block_rows = 0;
  int max_block_panels = 0;
  int panel_group = 1;
};

// Calls block(r0, r1, p0, p1) for every block of rows [r0, r1) × panels
// [p0, p1), possibly on several threads.
void ParallelForProductBlocks(
    int rows, int panels, int k, const ProductBlocks& shape,
    const std::function<void(int, int, int, int)>& block);

}  // namespace slabserve::cpu

#endif  // SLABSERVE_KERNELS_CPU_PARALLEL_H_
