// Proves the CUDA build path: links cudart, cuBLAS and NCCL; runs a kernel
// when a device is present and skips cleanly when there is none.
#include "kernels/cuda/device.h"

#include <cublas_v2.h>
#include <gtest/gtest.h>
#include <nccl.h>

#include <vector>

namespace slabserve::cuda {
namespace {

TEST(CudaDeviceTest, NcclLibraryLinks) {
  int version = 0;
  ASSERT_EQ(ncclGetVersion(&version), ncclSuccess);
  EXPECT_GT(version, 0);
}

TEST(CudaDeviceTest, SaxpyOnDevice) {
  std::string error;
  if (DeviceCount(&error) == 0) GTEST_SKIP() << "no CUDA device: " << error;
  std::vector<float> x(1000, 2.0f), y(1000, 1.0f);
  ASSERT_TRUE(Saxpy(1000, 3.0f, x.data(), y.data(), &error)) << error;
  for (float v : y) EXPECT_FLOAT_EQ(v, 7.0f);
}

TEST(CudaDeviceTest, CublasHandle) {
  if (DeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
  cublasHandle_t handle;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  cublasDestroy(handle);
}

}  // namespace
}  // namespace slabserve::cuda
