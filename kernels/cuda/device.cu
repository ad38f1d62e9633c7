#include <cuda_runtime.h>

#include "kernels/cuda/device.h"

namespace slabserve::cuda {
namespace {

__global__ void SaxpyKernel(int n, float alpha, const float* x, float* y) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += alpha * x[i];
}

bool Check(cudaError_t status, std::string* error) {
  if (status == cudaSuccess) return true;
  if (error != nullptr) *error = cudaGetErrorString(status);
  return false;
}

}  // namespace

int DeviceCount(std::string* error) {
  int count = 0;
  if (!Check(cudaGetDeviceCount(&count), error)) return 0;
  return count;
}

bool Saxpy(int n, float alpha, const float* x, float* y, std::string* error) {
  float* dx = nullptr;
  float* dy = nullptr;
  size_t bytes = sizeof(float) * n;
  bool ok = Check(cudaMalloc(&dx, bytes), error) &&
            Check(cudaMalloc(&dy, bytes), error) &&
            Check(cudaMemcpy(dx, x, bytes, cudaMemcpyHostToDevice), error) &&
            Check(cudaMemcpy(dy, y, bytes, cudaMemcpyHostToDevice), error);
  if (ok) {
    SaxpyKernel<<<(n + 255) / 256, 256>>>(n, alpha, dx, dy);
    ok = Check(cudaGetLastError(), error) &&
         Check(cudaMemcpy(y, dy, bytes, cudaMemcpyDeviceToHost), error);
  }
  cudaFree(dx);
  cudaFree(dy);
  return ok;
}

}  // namespace slabserve::cuda
