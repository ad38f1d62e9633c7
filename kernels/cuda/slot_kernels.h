// Slab rows moved by slot index on the device: zeroing new slots, copying a
// slot to another (fork), and gathering rows into / scattering them from a
// contiguous buffer (snapshot and restore). Rows are `row_bytes` long, a
// multiple of 4. At most kMaxRowsPerLaunch slots per call.
#ifndef SLABSERVE_KERNELS_CUDA_SLOT_KERNELS_H_
#define SLABSERVE_KERNELS_CUDA_SLOT_KERNELS_H_

#include <cuda_runtime.h>

#include <cstddef>

namespace slabserve::cuda {

inline constexpr int kMaxRowsPerLaunch = 65535;

// slab[slots[i]] = 0 for i < count (slots in device memory).
cudaError_t ZeroRows(void* slab, size_t row_bytes, const int* slots, int count,
                     cudaStream_t stream);
// slab[to[i]] = slab[from[i]]; the two lists must not share a slot.
cudaError_t CopyRows(void* slab, size_t row_bytes, const int* from,
                     const int* to, int count, cudaStream_t stream);
// out[i] = slab[slots[i]].
cudaError_t GatherRows(const void* slab, size_t row_bytes, const int* slots,
                       int count, void* out, cudaStream_t stream);
// slab[slots[i]] = in[i].
cudaError_t ScatterRows(const void* in, size_t row_bytes, const int* slots,
                        int count, void* slab, cudaStream_t stream);

}  // namespace slabserve::cuda

#endif  // SLABSERVE_KERNELS_CUDA_SLOT_KERNELS_H_
