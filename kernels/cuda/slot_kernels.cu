#include <cstdint>

#include "kernels/cuda/slot_kernels.h"

namespace slabserve::cuda {
namespace {

constexpr int kThreads = 256;

// One block row per listed slot; threads stride over the row's words.
// dst_slot < 0 writes out[i], src_slot < 0 reads in[i], src == nullptr
// writes zeros.
__global__ void MoveRowsKernel(const uint32_t* src, const int* src_slots,
                               uint32_t* dst, const int* dst_slots,
                               size_t words) {
  const int i = blockIdx.y;
  const size_t src_row = src_slots != nullptr ? src_slots[i] : i;
  const size_t dst_row = dst_slots != nullptr ? dst_slots[i] : i;
  for (size_t w = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
       w < words; w += static_cast<size_t>(gridDim.x) * blockDim.x) {
    dst[dst_row * words + w] = src != nullptr ? src[src_row * words + w] : 0u;
  }
}

cudaError_t Launch(const void* src, const int* src_slots, void* dst,
                   const int* dst_slots, size_t row_bytes, int count,
                   cudaStream_t stream) {
  if (row_bytes % 4 != 0 || count > kMaxRowsPerLaunch) {
    return cudaErrorInvalidValue;
  }
  if (count == 0) return cudaSuccess;
  const size_t words = row_bytes / 4;
  const size_t blocks_x = (words + kThreads - 1) / kThreads;
  const dim3 grid(static_cast<unsigned>(blocks_x < 64 ? blocks_x : 64),
                  static_cast<unsigned>(count));
  MoveRowsKernel<<<grid, kThreads, 0, stream>>>(
      static_cast<const uint32_t*>(src), src_slots, static_cast<uint32_t*>(dst),
      dst_slots, words);
  return cudaGetLastError();
}

}  // namespace

cudaError_t ZeroRows(void* slab, size_t row_bytes, const int* slots, int count,
                     cudaStream_t stream) {
  return Launch(nullptr, nullptr, slab, slots, row_bytes, count, stream);
}

cudaError_t CopyRows(void* slab, size_t row_bytes, const int* from,
                     const int* to, int count, cudaStream_t stream) {
  return Launch(slab, from, slab, to, row_bytes, count, stream);
}

cudaError_t GatherRows(const void* slab, size_t row_bytes, const int* slots,
                       int count, void* out, cudaStream_t stream) {
  return Launch(slab, slots, out, nullptr, row_bytes, count, stream);
}

cudaError_t ScatterRows(const void* in, size_t row_bytes, const int* slots,
                        int count, void* slab, cudaStream_t stream) {
  return Launch(in, nullptr, slab, slots, row_bytes, count, stream);
}

}  // namespace slabserve::cuda
