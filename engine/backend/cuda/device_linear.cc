#include "engine/backend/cuda/device_linear.h"

#include <cstdint>

#include "kernels/cuda/model_kernels.h"
#include "kernels/math/elementwise.h"

namespace slabserve::cuda {

absl::StatusOr<DeviceBuffer> UploadFloats(const float* data, size_t n) {
  DeviceBuffer buffer;
  SLAB_RETURN_IF_ERROR(buffer.Upload(data, sizeof(float) * n));
  return buffer;
}

absl::StatusOr<DeviceLinear> UploadLinear(const float* weight, int out, int in,
                                          const float* bias, GemmType type) {
  DeviceLinear linear;
  const size_t n = static_cast<size_t>(out) * in;
  if (type == GemmType::kBf16) {
    std::vector<uint16_t> bits(n);
    for (size_t i = 0; i < n; ++i) bits[i] = math::Bf16Bits(weight[i]);
    SLAB_RETURN_IF_ERROR(
        linear.weight_storage.Upload(bits.data(), sizeof(uint16_t) * n));
  } else {
    SLAB_RETURN_IF_ERROR(
        linear.weight_storage.Upload(weight, sizeof(float) * n));
  }
  linear.weight = {type, linear.weight_storage.get(), out, in};
  if (bias != nullptr) {
    SLAB_RETURN_IF_ERROR(linear.bias_storage.Upload(bias, sizeof(float) * out));
    linear.bias = linear.bias_storage.get<float>();
  }
  return linear;
}

absl::Status LinearRunner::Apply(const DeviceLinear& linear, const float* x,
                                 int rows, float* y) {
  if (rows == 0) return absl::OkStatus();
  const void* input = x;
  if (linear.weight.type == GemmType::kBf16) {
    const int64_t n = static_cast<int64_t>(rows) * linear.weight.cols;
    SLAB_RETURN_IF_ERROR(bf16_input_.Reserve(sizeof(uint16_t) * n));
    SLAB_CUDA_RETURN_IF_ERROR(
        ToBf16(x, n, bf16_input_.get<uint16_t>(), stream_));
    input = bf16_input_.get();
  }
  SLAB_RETURN_IF_ERROR(gemm_->Linear(input, rows, linear.weight, y));
  if (linear.bias != nullptr) {
    SLAB_CUDA_RETURN_IF_ERROR(
        AddBias(y, rows, linear.weight.rows, linear.bias, stream_));
  }
  return absl::OkStatus();
}

}  // namespace slabserve::cuda
