#include "kernels/cuda/gemm.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace slabserve::cuda {
namespace {

// What cuBLAS recommends for Hopper (more than other GPUs need).
constexpr size_t kWorkspaceBytes = size_t{32} << 20;
// The row count each shape's algorithm is chosen at: a large decode batch,
// where the choice matters most for throughput.
constexpr int kReferenceRows = 2048;
constexpr int kHeuristicResults = 8;

#define GEMM_RETURN_IF_ERROR(expr)                     \
  do {                                                 \
    if (absl::Status s_ = (expr); !s_.ok()) return s_; \
  } while (0)

// The largest power of two, at most 16, dividing every value.
uint32_t CommonAlignment(std::initializer_list<uint64_t> values) {
  uint32_t alignment = 16;
  for (uint64_t v : values) {
    while (alignment > 1 && v % alignment != 0) alignment /= 2;
  }
  return alignment;
}

}  // namespace

absl::Status CublasStatus(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat(what, ": cuBLAS error ", cublasGetStatusName(status), " (",
                   cublasGetStatusString(status), ")"));
}

// The matmul and matrix layout descriptors of one shape at one row count.
class Gemm::Descriptors {
 public:
  ~Descriptors() {
    for (cublasLtMatrixLayout_t layout : {a_, b_, c_}) {
      if (layout != nullptr) cublasLtMatrixLayoutDestroy(layout);
    }
    if (matmul_ != nullptr) cublasLtMatmulDescDestroy(matmul_);
  }

  absl::Status Create(const Shape& s, int rows) {
    const cudaDataType_t in = s.bf16 ? CUDA_R_16BF : CUDA_R_32F;
    // F32 sums for both: cuBLASLt uses TF32 only when asked for it
    // (CUBLAS_COMPUTE_32F_FAST_TF32), whatever the handle's math mode.
    GEMM_RETURN_IF_ERROR(CublasStatus(
        cublasLtMatmulDescCreate(&matmul_, CUBLAS_COMPUTE_32F, CUDA_R_32F),
        "cublasLtMatmulDescCreate"));
    const int32_t op_a = s.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    GEMM_RETURN_IF_ERROR(CublasStatus(
        cublasLtMatmulDescSetAttribute(matmul_, CUBLASLT_MATMUL_DESC_TRANSA,
                                       &op_a, sizeof(op_a)),
        "cublasLtMatmulDescSetAttribute"));
    // A as stored: [k, m] for op T, [m, k] for op N.
    GEMM_RETURN_IF_ERROR(Layout(&a_, in, s.transpose_a ? s.k : s.m,
                                s.transpose_a ? s.m : s.k, s.lda, s.batch,
                                s.stride_a));
    GEMM_RETURN_IF_ERROR(
        Layout(&b_, in, s.k, rows, s.ldb, s.batch, s.stride_b));
    return Layout(&c_, CUDA_R_32F, s.m, rows, s.ldc, s.batch, s.stride_c);
  }

  cublasLtMatmulDesc_t matmul() const { return matmul_; }
  cublasLtMatrixLayout_t a() const { return a_; }
  cublasLtMatrixLayout_t b() const { return b_; }
  cublasLtMatrixLayout_t c() const { return c_; }

 private:
  static absl::Status Layout(cublasLtMatrixLayout_t* layout,
                             cudaDataType_t type, int rows, int cols,
                             int64_t ld, int batch, int64_t stride) {
    GEMM_RETURN_IF_ERROR(
        CublasStatus(cublasLtMatrixLayoutCreate(layout, type, rows, cols, ld),
                     "cublasLtMatrixLayoutCreate"));
    if (batch == 1) return absl::OkStatus();
    const int32_t count = batch;
    GEMM_RETURN_IF_ERROR(CublasStatus(
        cublasLtMatrixLayoutSetAttribute(
            *layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)),
        "cublasLtMatrixLayoutSetAttribute"));
    return CublasStatus(
        cublasLtMatrixLayoutSetAttribute(
            *layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
            sizeof(stride)),
        "cublasLtMatrixLayoutSetAttribute");
  }

  cublasLtMatmulDesc_t matmul_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
};

absl::StatusOr<std::unique_ptr<Gemm>> Gemm::Create(cudaStream_t stream) {
  cublasLtHandle_t handle;
  GEMM_RETURN_IF_ERROR(CublasStatus(cublasLtCreate(&handle), "cublasLtCreate"));
  void* workspace = nullptr;
  if (const cudaError_t error = cudaMalloc(&workspace, kWorkspaceBytes);
      error != cudaSuccess) {
    cublasLtDestroy(handle);
    return absl::UnavailableError(absl::StrCat(
        "cudaMalloc of the cuBLAS workspace: ", cudaGetErrorName(error)));
  }
  return std::unique_ptr<Gemm>(new Gemm(handle, stream, workspace));
}

Gemm::~Gemm() {
  cublasLtDestroy(handle_);
  cudaFree(workspace_);
}

absl::StatusOr<const cublasLtMatmulAlgo_t*> Gemm::Algorithm(
    const Shape& shape) {
  if (auto found = algorithms_.find(shape); found != algorithms_.end()) {
    return &found->second;
  }
  Descriptors reference;
  GEMM_RETURN_IF_ERROR(reference.Create(shape, kReferenceRows));
  cublasLtMatmulPreference_t preference;
  GEMM_RETURN_IF_ERROR(CublasStatus(cublasLtMatmulPreferenceCreate(&preference),
                                    "cublasLtMatmulPreferenceCreate"));
  const uint64_t workspace = kWorkspaceBytes;
  // Only algorithms that sum each element in one piece: no split-K.
  const uint32_t reductions = CUBLASLT_REDUCTION_SCHEME_NONE;
  absl::Status status;
  auto set = [&](cublasLtMatmulPreferenceAttributes_t attribute,
                 const void* value, size_t size) {
    if (status.ok()) {
      status = CublasStatus(cublasLtMatmulPreferenceSetAttribute(
                                preference, attribute, value, size),
                            "cublasLtMatmulPreferenceSetAttribute");
    }
  };
  set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace));
  set(CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &reductions,
      sizeof(reductions));
  for (auto attribute : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                         CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                         CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                         CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES}) {
    set(attribute, &shape.alignment, sizeof(shape.alignment));
  }
  cublasLtMatmulHeuristicResult_t results[kHeuristicResults] = {};
  int found = 0;
  if (status.ok()) {
    status = CublasStatus(cublasLtMatmulAlgoGetHeuristic(
                              handle_, reference.matmul(), reference.a(),
                              reference.b(), reference.c(), reference.c(),
                              preference, kHeuristicResults, results, &found),
                          "cublasLtMatmulAlgoGetHeuristic");
  }
  cublasLtMatmulPreferenceDestroy(preference);
  GEMM_RETURN_IF_ERROR(status);
  for (int i = 0; i < found; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    cublasLtMatmulAlgo_t algo = results[i].algo;
    const int32_t one_split = 1;
    GEMM_RETURN_IF_ERROR(CublasStatus(
        cublasLtMatmulAlgoConfigSetAttribute(&algo,
                                             CUBLASLT_ALGO_CONFIG_SPLITK_NUM,
                                             &one_split, sizeof(one_split)),
        "cublasLtMatmulAlgoConfigSetAttribute"));
    return &algorithms_.emplace(shape, algo).first->second;
  }
  return absl::UnavailableError(absl::StrCat(
      "cuBLASLt has no algorithm without split-K for a ",
      shape.bf16 ? "bf16" : "f32", " product of ", shape.m, " x ", shape.k,
      " (batch ", shape.batch, ", alignment ", shape.alignment, " bytes)"));
}

absl::Status Gemm::Run(Shape shape, int rows, const void* a, const void* b,
                       float* c) {
  const uint64_t element = shape.bf16 ? 2 : 4;
  shape.alignment = CommonAlignment(
      {reinterpret_cast<uintptr_t>(a), reinterpret_cast<uintptr_t>(b),
       reinterpret_cast<uintptr_t>(c), shape.lda * element, shape.ldb * element,
       shape.ldc * sizeof(float), shape.stride_a * element,
       shape.stride_b * element, shape.stride_c * sizeof(float)});
  const cublasLtMatmulAlgo_t* algo;
  if (auto chosen = Algorithm(shape); chosen.ok()) {
    algo = *chosen;
  } else {
    return chosen.status();
  }
  Descriptors d;
  GEMM_RETURN_IF_ERROR(d.Create(shape, rows));
  const float alpha = 1.0f, beta = 0.0f;
  return CublasStatus(cublasLtMatmul(handle_, d.matmul(), &alpha, a, d.a(), b,
                                     d.b(), &beta, c, d.c(), c, d.c(), algo,
                                     workspace_, kWorkspaceBytes, stream_),
                      "cublasLtMatmul");
}

absl::Status Gemm::Linear(const void* x, int rows, const DeviceMatrix& weight,
                          float* y) {
  if (rows == 0) return absl::OkStatus();
  // Row-major y[rows, out] is column-major yᵀ[out, rows] = W · xᵀ, where the
  // row-major [out, in] weight is a column-major [in, out] matrix (op T)
  // and row-major x a column-major [in, rows] one.
  Shape shape;
  shape.bf16 = weight.type == GemmType::kBf16;
  shape.transpose_a = true;
  shape.m = weight.rows;
  shape.k = weight.cols;
  shape.lda = shape.ldb = weight.cols;
  shape.ldc = weight.rows;
  return Run(shape, rows, weight.data, x, y);
}

absl::Status Gemm::BlockDiagonal(const float* x, int rows, int stride,
                                 const float* g, int blocks, int bw, float* y) {
  if (rows == 0) return absl::OkStatus();
  // Per block, column-major yᵀ[bw(out), rows] = G[h] · xᵀ: the row-major
  // [in, out] block is a column-major [out, in] matrix (op N).
  Shape shape;
  shape.m = shape.k = bw;
  shape.batch = blocks;
  shape.lda = bw;
  shape.ldb = shape.ldc = stride;
  shape.stride_a = int64_t{bw} * bw;
  shape.stride_b = shape.stride_c = bw;
  return Run(shape, rows, g, x, y);
}

}  // namespace slabserve::cuda
