#include "engine/backend/cuda/decode_graphs.h"

#include "engine/backend/cuda/device_buffer.h"

namespace slabserve::cuda {

cudaGraphExec_t DecodeGraphs::Find(int bucket) {
  if (moves_ != BufferMoves().load()) Clear();
  const auto it = graphs_.find(bucket);
  return it == graphs_.end() ? nullptr : it->second;
}

absl::Status DecodeGraphs::Capture(int bucket, cudaStream_t stream,
                                   absl::FunctionRef<absl::Status()> enqueue) {
  if (moves_ != BufferMoves().load()) Clear();
  // Thread-local: another thread's CUDA calls (a second backend in tests)
  // neither join nor break this capture.
  SLAB_CUDA_RETURN_IF_ERROR(
      cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  const absl::Status enqueued = enqueue();
  cudaGraph_t graph = nullptr;
  // Always ended, so the stream leaves capture mode whatever happened.
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  absl::Status status = enqueued;
  if (status.ok()) status = CudaStatus(ended, "capturing a decode graph");
  if (status.ok() && moves_ != BufferMoves().load()) {
    status = absl::InternalError("a device buffer moved during graph capture");
  }
  cudaGraphExec_t exec = nullptr;
  if (status.ok()) {
    status = CudaStatus(cudaGraphInstantiate(&exec, graph, 0),
                        "instantiating a decode graph");
  }
  if (graph != nullptr) cudaGraphDestroy(graph);
  if (!status.ok()) {
    // A failed capture leaves its error as the last error; later launch
    // checks must not report it again.
    cudaGetLastError();
    return status;
  }
  graphs_[bucket] = exec;
  return absl::OkStatus();
}

void DecodeGraphs::Clear() {
  for (auto& [bucket, exec] : graphs_) cudaGraphExecDestroy(exec);
  graphs_.clear();
  moves_ = BufferMoves().load();
}

}  // namespace slabserve::cuda
