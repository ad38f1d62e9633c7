// Device buffers and the skip rule for tests that need a CUDA device.
#ifndef SLABSERVE_KERNELS_CUDA_TEST_UTIL_H_
#define SLABSERVE_KERNELS_CUDA_TEST_UTIL_H_

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/cuda/device.h"

namespace slabserve::cuda {

// Skips the test (counted as skipped) when no device is usable.
#define SKIP_WITHOUT_CUDA_DEVICE()                       \
  do {                                                   \
    std::string reason_;                                 \
    if (::slabserve::cuda::DeviceCount(&reason_) == 0) { \
      GTEST_SKIP() << "no CUDA device: " << reason_;     \
    }                                                    \
  } while (0)

// A device copy of a host vector; Read() brings it back.
template <typename T>
class DeviceVector {
 public:
  explicit DeviceVector(const std::vector<T>& host) : size_(host.size()) {
    EXPECT_EQ(cudaMalloc(&data_, bytes()), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(data_, host.data(), bytes(), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  explicit DeviceVector(size_t size) : DeviceVector(std::vector<T>(size)) {}
  ~DeviceVector() { cudaFree(data_); }
  DeviceVector(const DeviceVector&) = delete;
  DeviceVector& operator=(const DeviceVector&) = delete;

  T* get() { return data_; }
  size_t bytes() const { return sizeof(T) * (size_ == 0 ? 1 : size_); }
  std::vector<T> Read() const {
    std::vector<T> host(size_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(host.data(), data_, sizeof(T) * size_,
                         cudaMemcpyDeviceToHost),
              cudaSuccess);
    return host;
  }

 private:
  T* data_ = nullptr;
  size_t size_;
};

}  // namespace slabserve::cuda

#endif  // SLABSERVE_KERNELS_CUDA_TEST_UTIL_H_
