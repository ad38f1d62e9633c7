#include "kernels/cuda/gemm.h"

#include "absl/strings/str_cat.h"

namespace slabserve::cuda {
namespace {

// What cuBLAS recommends for Hopper (more than other GPUs need).
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

}  // namespace

absl::Status CublasStatus(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat(what, ": cuBLAS error ", static_cast<int>(status), " (",
                   cublasGetStatusString(status), ")"));
}

absl::StatusOr<std::unique_ptr<Gemm>> Gemm::Create(cudaStream_t stream) {
  cublasHandle_t handle;
  absl::Status status = CublasStatus(cublasCreate(&handle), "cublasCreate");
  if (!status.ok()) return status;
  void* workspace = nullptr;
  if (const cudaError_t error = cudaMalloc(&workspace, kWorkspaceBytes);
      error != cudaSuccess) {
    status = absl::UnavailableError(absl::StrCat(
        "cudaMalloc of the cuBLAS workspace: ", cudaGetErrorName(error)));
  }
  // After cublasSetStream, which resets the workspace to cuBLAS's own.
  if (status.ok()) {
    status = CublasStatus(cublasSetStream(handle, stream), "cublasSetStream");
  }
  if (status.ok()) {
    status =
        CublasStatus(cublasSetWorkspace(handle, workspace, kWorkspaceBytes),
                     "cublasSetWorkspace");
  }
  if (!status.ok()) {
    cublasDestroy(handle);
    cudaFree(workspace);
    return status;
  }
  return std::unique_ptr<Gemm>(new Gemm(handle, workspace));
}

Gemm::~Gemm() {
  cublasDestroy(handle_);
  cudaFree(workspace_);
}

absl::Status Gemm::Linear(const void* x, int rows, const DeviceMatrix& weight,
                          float* y) {
  if (rows == 0) return absl::OkStatus();
  // Row-major y[rows, out] is column-major yᵀ[out, rows] = W · xᵀ, where the
  // row-major [out, in] weight is a column-major [in, out] matrix (op T)
  // and row-major x a column-major [in, rows] one.
  const bool bf16 = weight.type == GemmType::kBf16;
  const cudaDataType_t type = bf16 ? CUDA_R_16BF : CUDA_R_32F;
  const cublasComputeType_t compute =
      bf16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_PEDANTIC;
  const float alpha = 1.0f, beta = 0.0f;
  return CublasStatus(
      cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, weight.rows, rows,
                   weight.cols, &alpha, weight.data, type, weight.cols, x, type,
                   weight.cols, &beta, y, CUDA_R_32F, weight.rows, compute,
                   CUBLAS_GEMM_DEFAULT),
      "cublasGemmEx");
}

absl::Status Gemm::BlockDiagonal(const float* x, int rows, int stride,
                                 const float* g, int blocks, int bw, float* y) {
  if (rows == 0) return absl::OkStatus();
  // Per block, column-major yᵀ[bw(out), rows] = G[h] · xᵀ: the row-major
  // [in, out] block is a column-major [out, in] matrix (op N).
  const float alpha = 1.0f, beta = 0.0f;
  return CublasStatus(
      cublasGemmStridedBatchedEx(
          handle_, CUBLAS_OP_N, CUBLAS_OP_N, bw, rows, bw, &alpha, g,
          CUDA_R_32F, bw, static_cast<long long>(bw) * bw, x, CUDA_R_32F,
          stride, bw, &beta, y, CUDA_R_32F, stride, bw, blocks,
          CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT),
      "cublasGemmStridedBatchedEx");
}

}  // namespace slabserve::cuda
