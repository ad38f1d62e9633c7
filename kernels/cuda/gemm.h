// cuBLAS products for every projection: y[rows, out] = x[rows, in] · Wᵀ for
// a row-major [out, in] weight (PyTorch's Linear layout), in F32 (f32 math:
// no TF32) or with BF16 weights and activations accumulated in
// F32 (f32 output). Also the RG-LRU's block-diagonal gates as one strided
// batched product.
//
// Batch invariance: cuBLAS picks its kernel from the whole problem shape,
// row count included, and kernels differ in how they split and order the
// sum over `in`, so a row's bits would depend on how many rows ride with
// it. Every product therefore runs on one cuBLASLt algorithm pinned per
// shape (everything but the row count): chosen once by cuBLASLt's
// heuristic at a reference row count among algorithms without split-K
// reductions, and reused for every row count, so each output element is
// summed by the same kernel in the same order whatever the batch.
//
// Everything runs on the stream given at creation, with a workspace of its
// own: a graph never reads memory cuBLAS reallocated.
#ifndef SLABSERVE_KERNELS_CUDA_GEMM_H_
#define SLABSERVE_KERNELS_CUDA_GEMM_H_

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

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
  // One product's shape, in cuBLASLt's column-major terms: D[m, rows] =
  // op(A)[m, k] · B[k, rows] for `batch` products, and the byte alignment
  // its pointers and strides share (it limits the algorithms).
  struct Shape {
    bool bf16 = false;
    bool transpose_a = false;
    int m = 0, k = 0, batch = 1;
    int64_t lda = 0, ldb = 0, ldc = 0;
    int64_t stride_a = 0, stride_b = 0, stride_c = 0;
    uint32_t alignment = 0;
    auto Key() const {
      return std::tie(bf16, transpose_a, m, k, batch, lda, ldb, ldc, stride_a,
                      stride_b, stride_c, alignment);
    }
    bool operator<(const Shape& other) const { return Key() < other.Key(); }
  };
  class Descriptors;

  Gemm(cublasLtHandle_t handle, cudaStream_t stream, void* workspace)
      : handle_(handle), stream_(stream), workspace_(workspace) {}
  // The pinned algorithm of `shape` (chosen on first use).
  absl::StatusOr<const cublasLtMatmulAlgo_t*> Algorithm(const Shape& shape);
  absl::Status Run(Shape shape, int rows, const void* a, const void* b,
                   float* c);

  cublasLtHandle_t handle_;
  cudaStream_t stream_;
  void* workspace_;  // kWorkspaceBytes, cudaMalloc'd
  std::map<Shape, cublasLtMatmulAlgo_t> algorithms_;
};

// A cuBLAS status as an absl::Status naming the operation.
absl::Status CublasStatus(cublasStatus_t status, const char* what);

}  // namespace slabserve::cuda

#endif  // SLABSERVE_KERNELS_CUDA_GEMM_H_
