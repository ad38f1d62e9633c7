// cuBLAS products for every projection: y[rows, out] = x[rows, in] · Wᵀ for
// a row-major [out, in] weight (PyTorch's Linear layout), in F32 (pedantic
// f32 math: no TF32) or with BF16 weights and activations accumulated in
// F32 (f32 output). Also the RG-LRU's block-diagonal gates as one strided
// batched product. Everything runs on the stream given at creation, with a
// workspace of its own set once: cuBLAS then picks the same algorithms
// whether or not the stream is being captured into a CUDA graph (with no
// workspace set it may avoid workspace-hungry algorithms under capture),
// and a graph never reads memory cuBLAS reallocated.
#ifndef SLABSERVE_KERNELS_CUDA_GEMM_H_
#define SLABSERVE_KERNELS_CUDA_GEMM_H_

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slabserve::cuda {

enum class GemmType { kF32, kBf16 };

// A device matrix [rows, cols] row-major, f32 or bf16 (raw bits).
struct DeviceMatrix {
  GemmType type = GemmType::kF32;
  const void* data = nullptr;
  int rows = 0;
  int cols = 0;
};

class Gemm {
 public:
  static absl::StatusOr<std::unique_ptr<Gemm>> Create(cudaStream_t stream);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // y = x · weightᵀ (y has row stride weight.rows). x is f32 for an f32
  // weight and bf16 bits for a bf16 one.
  absl::Status Linear(const void* x, int rows, const DeviceMatrix& weight,
                      float* y);
  // For each of `blocks` blocks of width bw: y[:, h·bw..] =
  // x[:, h·bw..] · G[h] with G stored [blocks, bw(in), bw(out)] f32, x and y
  // rows of `stride` floats.
  absl::Status BlockDiagonal(const float* x, int rows, int stride,
                             const float* g, int blocks, int bw, float* y);

 private:
  Gemm(cublasHandle_t handle, void* workspace)
      : handle_(handle), workspace_(workspace) {}
  cublasHandle_t handle_;
  void* workspace_;  // 32 MiB, cudaMalloc'd
};

// A cuBLAS status as an absl::Status naming the operation.
absl::Status CublasStatus(cublasStatus_t status, const char* what);

}  // namespace slabserve::cuda

#endif  // SLABSERVE_KERNELS_CUDA_GEMM_H_
