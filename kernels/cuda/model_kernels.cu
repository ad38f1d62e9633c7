#include <cuda_bf16.h>

#include "kernels/cuda/model_kernels.h"
#include "kernels/math/elementwise.h"
#include "kernels/math/ragged.h"
#include "kernels/math/rows.h"
#include "kernels/math/sampling.h"

namespace slabserve::cuda {
namespace {

constexpr int kThreads = 256;

int Blocks(int64_t n) {
  return static_cast<int>((n + kThreads - 1) / kThreads);
}

// Grid-stride loop index helpers.
__device__ int64_t GlobalIndex() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

template <typename T>
__device__ float Widen(T x);
template <>
__device__ float Widen<float>(float x) {
  return x;
}
template <>
__device__ float Widen<uint16_t>(uint16_t x) {
  return math::Bf16ToFloat(x);
}

template <typename T>
__global__ void EmbedKernel(DeviceBatch batch, const T* table, int dim,
                            float scale, float* x) {
  const int64_t i = GlobalIndex();
  if (i >= static_cast<int64_t>(batch.tokens) * dim) return;
  const int row = static_cast<int>(i / dim);
  const int d = static_cast<int>(i % dim);
  const int64_t token = batch.token_id[row];
  x[i] = Widen<T>(table[token * dim + d]) * scale;
}

__global__ void ToBf16Kernel(const float* x, int64_t n, uint16_t* out) {
  const int64_t i = GlobalIndex();
  if (i < n) out[i] = math::Bf16Bits(x[i]);
}

template <typename T>
__global__ void FillUniformKernel(T* x, int64_t n, float low, float high,
                                  uint64_t seed) {
  const int64_t i = GlobalIndex();
  if (i >= n) return;
  const float u = static_cast<float>(math::UniformDraw(seed, i));
  const float value = low + (high - low) * u;
  if constexpr (sizeof(T) == sizeof(float)) {
    x[i] = value;
  } else {
    x[i] = math::Bf16Bits(value);
  }
}

__global__ void AddBiasKernel(float* y, int rows, int n, const float* bias) {
  const int64_t i = GlobalIndex();
  if (i < static_cast<int64_t>(rows) * n) y[i] += bias[i % n];
}

__global__ void AddKernel(float* x, const float* y, int64_t n) {
  const int64_t i = GlobalIndex();
  if (i < n) x[i] += y[i];
}

__global__ void GeGluKernel(const float* in, int rows, int width, int stride,
                            int up_offset, float* out) {
  const int64_t i = GlobalIndex();
  if (i >= static_cast<int64_t>(rows) * width) return;
  const int64_t r = i / width;
  const int j = static_cast<int>(i % width);
  const float* row = in + r * stride;
  out[i] = math::GeGlu(row[j], row[up_offset + j]);
}

__global__ void GeluKernel(float* x, int64_t n) {
  const int64_t i = GlobalIndex();
  if (i < n) x[i] = math::GeluTanh(x[i]);
}

__global__ void SiluKernel(float* x, int64_t n) {
  const int64_t i = GlobalIndex();
  if (i < n) x[i] = math::Silu(x[i]);
}

__global__ void SoftCapKernel(float* x, int64_t n, float cap) {
  const int64_t i = GlobalIndex();
  if (i < n) x[i] = math::SoftCap(x[i], cap);
}

// The block's sum of `value` (every thread gets it); a fixed tree order.
__device__ double BlockSum(double value, double* shared) {
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride)
      shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();
  return total;
}

__global__ void RmsNormKernel(const float* x, const int* rows, int dim,
                              const float* scale, float eps, float* y) {
  __shared__ double shared[kThreads];
  const int64_t in_row = rows != nullptr ? rows[blockIdx.x] : blockIdx.x;
  const float* xr = x + in_row * dim;
  float* yr = y + static_cast<int64_t>(blockIdx.x) * dim;
  double squares = 0.0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    squares += static_cast<double>(xr[i]) * xr[i];
  }
  const float inverse =
      math::RmsNormInverse(BlockSum(squares, shared), dim, eps);
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    yr[i] = math::RmsNormElement(xr[i], inverse, scale[i]);
  }
}

__global__ void LayerNormKernel(const float* x, int dim, const float* weight,
                                const float* bias, float eps, float* y) {
  __shared__ double shared[kThreads];
  const float* xr = x + static_cast<int64_t>(blockIdx.x) * dim;
  float* yr = y + static_cast<int64_t>(blockIdx.x) * dim;
  double sum = 0.0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) sum += xr[i];
  const double mean = BlockSum(sum, shared) / dim;
  double squares = 0.0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    const double d = xr[i] - mean;
    squares += d * d;
  }
  const double inverse_std =
      math::LayerNormInverseStd(BlockSum(squares, shared), dim, eps);
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    yr[i] =
        math::LayerNormElement(xr[i], mean, inverse_std, weight[i], bias[i]);
  }
}

__global__ void RotaryKernel(DeviceBatch batch, float* x, int heads,
                             int head_dim, int rotary_dims, double theta) {
  const int half = rotary_dims / 2;
  const int64_t i = GlobalIndex();
  if (i >= static_cast<int64_t>(batch.tokens) * heads * half) return;
  const int j = static_cast<int>(i % half);
  const int64_t row_head = i / half;
  const int row = static_cast<int>(row_head / heads);
  float cos_t, sin_t;
  math::RotaryAngle(batch.token_position[row], j, rotary_dims, theta, &cos_t,
                    &sin_t);
  float* head = x + row_head * head_dim;
  math::RotatePair(head[j], head[j + half], cos_t, sin_t);
}

// The input `back` tokens before row i's token, for channel ch: a chunk row
// or the slot's tail.
__device__ float ConvInput(const DeviceBatch& batch, const float* u,
                           int u_stride, const float* tail, int R, int K, int i,
                           int back, int ch) {
  const int begin = batch.chunk_begin[batch.token_chunk[i]];
  const math::RowSource source = math::ConvInputSource(i - begin, back, K);
  if (source.in_chunk) {
    return u[static_cast<int64_t>(begin + source.row) * u_stride + ch];
  }
  return tail[static_cast<int64_t>(source.row) * R + ch];
}

__global__ void CausalConvKernel(DeviceBatch batch, const float* u,
                                 int u_stride, const float* taps,
                                 const float* bias, int R, int K,
                                 const float* tail_slab, float* c) {
  const int64_t idx = GlobalIndex();
  if (idx >= static_cast<int64_t>(batch.tokens) * R) return;
  const int i = static_cast<int>(idx / R);
  const int ch = static_cast<int>(idx % R);
  const int slot = batch.chunk_slot[batch.token_chunk[i]];
  const float* tail = tail_slab + static_cast<int64_t>(slot) * (K - 1) * R;
  float window[math::kMaxConvWidth];
  for (int k = 0; k < K; ++k) {
    window[k] = ConvInput(batch, u, u_stride, tail, R, K, i, K - 1 - k, ch);
  }
  c[idx] = math::CausalConvChannel(taps + ch, R, K, bias[ch], window);
}

__global__ void ConvTailKernel(DeviceBatch batch, const float* u, int u_stride,
                               int R, int K, float* tail_slab) {
  const int64_t idx = GlobalIndex();
  if (idx >= static_cast<int64_t>(batch.chunks) * R) return;
  const int s = static_cast<int>(idx / R);
  const int ch = static_cast<int>(idx % R);
  float* tail =
      tail_slab + static_cast<int64_t>(batch.chunk_slot[s]) * (K - 1) * R;
  const int begin = batch.chunk_begin[s];
  const int length = batch.chunk_begin[s + 1] - begin;
  float fresh[math::kMaxConvWidth];
  for (int r = 0; r < K - 1; ++r) {
    const math::RowSource source = math::NewTailSource(r, length, K);
    fresh[r] = source.in_chunk
                   ? u[static_cast<int64_t>(begin + source.row) * u_stride + ch]
                   : tail[static_cast<int64_t>(source.row) * R + ch];
  }
  for (int r = 0; r < K - 1; ++r)
    tail[static_cast<int64_t>(r) * R + ch] = fresh[r];
}

__global__ void RgLruScanKernel(DeviceBatch batch, const float* log_decay,
                                const float* recurrence_gate,
                                const float* input_gate, const float* c,
                                const float* y, int y_stride, int R,
                                float* h_slab, float* out) {
  const int64_t idx = GlobalIndex();
  if (idx >= static_cast<int64_t>(batch.chunks) * R) return;
  const int s = static_cast<int>(idx / R);
  const int ch = static_cast<int>(idx % R);
  float* h = h_slab + static_cast<int64_t>(batch.chunk_slot[s]) * R + ch;
  float state = *h;
  const float decay = log_decay[ch];
  for (int i = batch.chunk_begin[s]; i < batch.chunk_begin[s + 1]; ++i) {
    const int64_t at = static_cast<int64_t>(i) * R + ch;
    const bool reset = batch.token_position[i] == 0;
    const math::ScanStep step = math::RgLruCoefficients(
        decay, recurrence_gate[at], input_gate[at], c[at], reset);
    state = math::RgLruUpdate(state, step, reset);
    out[at] = state * y[static_cast<int64_t>(i) * y_stride + ch];
  }
  *h = state;
}

}  // namespace

cudaError_t EmbedTokens(const DeviceBatch& batch, const float* table, int dim,
                        float scale, float* x, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(batch.tokens) * dim;
  EmbedKernel<float>
      <<<Blocks(n), kThreads, 0, stream>>>(batch, table, dim, scale, x);
  return cudaGetLastError();
}

cudaError_t EmbedTokensBf16(const DeviceBatch& batch, const uint16_t* table,
                            int dim, float scale, float* x,
                            cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(batch.tokens) * dim;
  EmbedKernel<uint16_t>
      <<<Blocks(n), kThreads, 0, stream>>>(batch, table, dim, scale, x);
  return cudaGetLastError();
}

cudaError_t ToBf16(const float* x, int64_t n, uint16_t* out,
                   cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  ToBf16Kernel<<<Blocks(n), kThreads, 0, stream>>>(x, n, out);
  return cudaGetLastError();
}

cudaError_t FillUniform(float* x, int64_t n, float low, float high,
                        uint64_t seed, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  FillUniformKernel<float>
      <<<Blocks(n), kThreads, 0, stream>>>(x, n, low, high, seed);
  return cudaGetLastError();
}

cudaError_t FillUniformBf16(uint16_t* x, int64_t n, float low, float high,
                            uint64_t seed, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  FillUniformKernel<uint16_t>
      <<<Blocks(n), kThreads, 0, stream>>>(x, n, low, high, seed);
  return cudaGetLastError();
}

cudaError_t AddBias(float* y, int rows, int n, const float* bias,
                    cudaStream_t stream) {
  AddBiasKernel<<<Blocks(static_cast<int64_t>(rows) * n), kThreads, 0,
                  stream>>>(y, rows, n, bias);
  return cudaGetLastError();
}

cudaError_t AddInPlace(float* x, const float* y, int64_t n,
                       cudaStream_t stream) {
  AddKernel<<<Blocks(n), kThreads, 0, stream>>>(x, y, n);
  return cudaGetLastError();
}

cudaError_t GeGluRows(const float* in, int rows, int width, int in_stride,
                      int up_offset, float* out, cudaStream_t stream) {
  GeGluKernel<<<Blocks(static_cast<int64_t>(rows) * width), kThreads, 0,
                stream>>>(in, rows, width, in_stride, up_offset, out);
  return cudaGetLastError();
}

cudaError_t GeluTanh(float* x, int64_t n, cudaStream_t stream) {
  GeluKernel<<<Blocks(n), kThreads, 0, stream>>>(x, n);
  return cudaGetLastError();
}

cudaError_t Silu(float* x, int64_t n, cudaStream_t stream) {
  SiluKernel<<<Blocks(n), kThreads, 0, stream>>>(x, n);
  return cudaGetLastError();
}

cudaError_t SoftCap(float* x, int64_t n, float cap, cudaStream_t stream) {
  if (cap <= 0.0f) return cudaSuccess;
  SoftCapKernel<<<Blocks(n), kThreads, 0, stream>>>(x, n, cap);
  return cudaGetLastError();
}

cudaError_t RmsNormRows(const float* x, const int* rows, int count, int dim,
                        const float* scale, float eps, float* y,
                        cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  RmsNormKernel<<<count, kThreads, 0, stream>>>(x, rows, dim, scale, eps, y);
  return cudaGetLastError();
}

cudaError_t LayerNormRows(const float* x, int count, int dim,
                          const float* weight, const float* bias, float eps,
                          float* y, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  LayerNormKernel<<<count, kThreads, 0, stream>>>(x, dim, weight, bias, eps, y);
  return cudaGetLastError();
}

cudaError_t ApplyRotary(const DeviceBatch& batch, float* x, int heads,
                        int head_dim, int rotary_dims, double theta,
                        cudaStream_t stream) {
  const int64_t n =
      static_cast<int64_t>(batch.tokens) * heads * (rotary_dims / 2);
  if (n == 0) return cudaSuccess;
  RotaryKernel<<<Blocks(n), kThreads, 0, stream>>>(batch, x, heads, head_dim,
                                                   rotary_dims, theta);
  return cudaGetLastError();
}

cudaError_t CausalConv(const DeviceBatch& batch, const float* u, int u_stride,
                       const float* taps, const float* bias, int R, int K,
                       const float* tail_slab, float* c, cudaStream_t stream) {
  if (K > math::kMaxConvWidth) return cudaErrorInvalidValue;
  const int64_t n = static_cast<int64_t>(batch.tokens) * R;
  CausalConvKernel<<<Blocks(n), kThreads, 0, stream>>>(
      batch, u, u_stride, taps, bias, R, K, tail_slab, c);
  return cudaGetLastError();
}

cudaError_t UpdateConvTail(const DeviceBatch& batch, const float* u,
                           int u_stride, int R, int K, float* tail_slab,
                           cudaStream_t stream) {
  if (K > math::kMaxConvWidth) return cudaErrorInvalidValue;
  if (K == 1) return cudaSuccess;
  const int64_t n = static_cast<int64_t>(batch.chunks) * R;
  ConvTailKernel<<<Blocks(n), kThreads, 0, stream>>>(batch, u, u_stride, R, K,
                                                     tail_slab);
  return cudaGetLastError();
}

cudaError_t RgLruScan(const DeviceBatch& batch, const float* log_decay,
                      const float* recurrence_gate, const float* input_gate,
                      const float* c, const float* y, int y_stride, int R,
                      float* h_slab, float* out, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(batch.chunks) * R;
  RgLruScanKernel<<<Blocks(n), kThreads, 0, stream>>>(
      batch, log_decay, recurrence_gate, input_gate, c, y, y_stride, R, h_slab,
      out);
  return cudaGetLastError();
}

}  // namespace slabserve::cuda
