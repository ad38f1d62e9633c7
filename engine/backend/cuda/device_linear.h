// Linear layers on the device: y = x · Wᵀ + b through cuBLAS, with the
// weight in F32 or BF16 (activations rounded to BF16 for the product,
// accumulated and returned in F32).
#ifndef SLABSERVE_ENGINE_BACKEND_CUDA_DEVICE_LINEAR_H_
#define SLABSERVE_ENGINE_BACKEND_CUDA_DEVICE_LINEAR_H_

#include <cuda_runtime.h>

#include <vector>

#include "absl/status/statusor.h"
#include "engine/backend/cuda/device_buffer.h"
#include "kernels/cuda/gemm.h"

namespace slabserve::cuda {

struct DeviceLinear {
  DeviceBuffer weight_storage, bias_storage;
  DeviceMatrix weight;  // [out, in]
  const float* bias = nullptr;
};

// Uploads a row-major [out, in] f32 weight (converted to `type`) and an
// optional [out] bias (kept in f32).
absl::StatusOr<DeviceLinear> UploadLinear(const float* weight, int out, int in,
                                          const float* bias, GemmType type);
// An f32 device copy of n host floats.
absl::StatusOr<DeviceBuffer> UploadFloats(const float* data, size_t n);

// Applies linears on one stream, with a grow-only BF16 staging buffer.
class LinearRunner {
 public:
  LinearRunner(Gemm* gemm, cudaStream_t stream)
      : gemm_(gemm), stream_(stream) {}
  absl::Status Apply(const DeviceLinear& linear, const float* x, int rows,
                     float* y);

 private:
  Gemm* gemm_;
  cudaStream_t stream_;
  DeviceBuffer bf16_input_;
};

}  // namespace slabserve::cuda

#endif  // SLABSERVE_ENGINE_BACKEND_CUDA_DEVICE_LINEAR_H_
