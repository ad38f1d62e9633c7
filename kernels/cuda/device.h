// CUDA device discovery and a minimal kernel that proves the nvcc build path.
#ifndef SLABSERVE_KERNELS_CUDA_DEVICE_H_
#define SLABSERVE_KERNELS_CUDA_DEVICE_H_

#include <string>

namespace slabserve::cuda {

// Number of usable CUDA devices; 0 when there is no driver or no device.
// `error` (optional) receives the runtime's reason when the count is 0.
int DeviceCount(std::string* error = nullptr);

// y[i] += alpha * x[i] on device 0 for host arrays of length n.
// Returns false (with `error`) when the device work fails.
bool Saxpy(int n, float alpha, const float* x, float* y, std::string* error);

}  // namespace slabserve::cuda

#endif  // SLABSERVE_KERNELS_CUDA_DEVICE_H_
