// Executable CUDA graphs of the decode forward pass, one per batch-size
// bucket, captured on first use. A graph bakes in every device address its
// kernels read, so the backend feeds it through fixed buffers (updated by
// copies before each launch), and the whole set is dropped whenever a
// device buffer has moved since the capture (cuda::BufferMoves()).
#ifndef SLABSERVE_ENGINE_BACKEND_CUDA_DECODE_GRAPHS_H_
#define SLABSERVE_ENGINE_BACKEND_CUDA_DECODE_GRAPHS_H_

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace slabserve::cuda {

class DecodeGraphs {
 public:
  DecodeGraphs() = default;
  ~DecodeGraphs() { Clear(); }
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  // The bucket's graph when one was captured and no buffer has moved
  // since (the set is dropped otherwise), else null.
  cudaGraphExec_t Find(int bucket);
  // Captures what `enqueue` puts on `stream` (which must be idle of other
  // capture and must not allocate: run the same work eagerly first, so
  // every grow-only buffer already has its size) as the bucket's graph.
  // Nothing captured runs now.
  absl::Status Capture(int bucket, cudaStream_t stream,
                       absl::FunctionRef<absl::Status()> enqueue);
  void Clear();
  int size() const { return static_cast<int>(graphs_.size()); }

 private:
  absl::flat_hash_map<int, cudaGraphExec_t> graphs_;
  uint64_t moves_ = 0;  // BufferMoves() when the set was last valid
};

}  // namespace slabserve::cuda

#endif  // SLABSERVE_ENGINE_BACKEND_CUDA_DECODE_GRAPHS_H_
