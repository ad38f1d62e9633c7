// Local attention over the key/value rings, the ring update and SRM's token
// mixing (declared in model_kernels.h).
#include <math.h>

#include "kernels/cuda/model_kernels.h"
#include "kernels/math/elementwise.h"
#include "kernels/math/ragged.h"

namespace slabserve::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kAttentionThreads = 128;  // a multiple of kWarp
constexpr int kWarp = 32;

int Blocks(int64_t n) {
  return static_cast<int>((n + kThreads - 1) / kThreads);
}

// The block-wide max or sum of `value` in a fixed tree order; `scratch`
// holds blockDim.x floats. Every thread gets the result.
template <bool kMax>
__device__ float BlockReduce(float value, float* scratch) {
  scratch[threadIdx.x] = value;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      const float other = scratch[threadIdx.x + stride];
      scratch[threadIdx.x] = kMax ? fmaxf(scratch[threadIdx.x], other)
                                  : scratch[threadIdx.x] + other;
    }
    __syncthreads();
  }
  const float result = scratch[0];
  __syncthreads();
  return result;
}

// The key (or value) row of position `pos` of chunk s's sequence: the
// chunk's own rows from chunk_start on, the ring before.
__device__ const float* KvRow(const DeviceBatch& batch, int s, int pos,
                              const float* chunk_rows, const float* ring,
                              int kv_width, int window) {
  const math::RowSource source =
      math::KeySource(pos, batch.chunk_start[s], window);
  if (source.in_chunk) {
    return chunk_rows +
           static_cast<int64_t>(batch.chunk_begin[s] + source.row) * kv_width;
  }
  return ring + static_cast<int64_t>(source.row) * kv_width;
}

__global__ void LocalAttentionKernel(DeviceBatch batch, const float* q,
                                     const float* k, const float* v,
                                     const float* key_ring_slab,
                                     const float* value_ring_slab, int heads,
                                     int kv_heads, int head_dim, int window,
                                     float* attended) {
  extern __shared__ float shared[];
  float* scores = shared;            // [window]
  float* scratch = shared + window;  // [blockDim.x]
  const int row = blockIdx.x / heads;
  const int h = blockIdx.x % heads;
  const int s = batch.token_chunk[row];
  const int t = batch.token_position[row];
  const int first = math::FirstKeyPosition(t, window);
  const int n = t - first + 1;
  const int kv_width = kv_heads * head_dim;
  const int kv_offset = (h / (heads / kv_heads)) * head_dim;
  const int64_t ring_floats = static_cast<int64_t>(window) * kv_width;
  const int slot = batch.chunk_slot[s];
  const float* key_ring = key_ring_slab + slot * ring_floats;
  const float* value_ring = value_ring_slab + slot * ring_floats;
  const float* qh = q + (static_cast<int64_t>(row) * heads + h) * head_dim;
  const float scale = 1.0f / sqrtf(static_cast<float>(head_dim));

  // A warp per key, its lanes over the head's dimensions, so that a warp
  // reads a key row in whole cache lines. The butterfly leaves the same sum
  // in every lane (each pair adds the same two values), in an order fixed
  // by head_dim alone.
  const int lane = threadIdx.x % kWarp;
  const int warps = blockDim.x / kWarp;
  float local_max = -INFINITY;
  for (int j = threadIdx.x / kWarp; j < n; j += warps) {
    const float* key =
        KvRow(batch, s, first + j, k, key_ring, kv_width, window) + kv_offset;
    float dot = 0.0f;
    for (int d = lane; d < head_dim; d += kWarp) dot += qh[d] * key[d];
    for (int offset = kWarp / 2; offset > 0; offset /= 2) {
      dot += __shfl_xor_sync(0xffffffffu, dot, offset);
    }
    if (lane == 0) scores[j] = dot * scale;
    local_max = fmaxf(local_max, dot * scale);
  }
  const float max = BlockReduce<true>(local_max, scratch);
  float local_sum = 0.0f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    scores[j] = expf(scores[j] - max);
    local_sum += scores[j];
  }
  const float inverse = 1.0f / BlockReduce<false>(local_sum, scratch);
  for (int j = threadIdx.x; j < n; j += blockDim.x) scores[j] *= inverse;
  __syncthreads();
  float* out = attended + (static_cast<int64_t>(row) * heads + h) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < n; ++j) {
      const float* value =
          KvRow(batch, s, first + j, v, value_ring, kv_width, window);
      acc += scores[j] * value[kv_offset + d];
    }
    out[d] = acc;
  }
}

// One thread per (chunk, element); each walks the chunk's last W positions.
__global__ void WriteRingKernel(DeviceBatch batch, const float* k,
                                const float* v, int kv_width, int window,
                                float* key_ring_slab, float* value_ring_slab) {
  const int64_t idx =
      static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<int64_t>(batch.chunks) * kv_width) return;
  const int s = static_cast<int>(idx / kv_width);
  const int e = static_cast<int>(idx % kv_width);
  const int t0 = batch.chunk_start[s];
  const int end = t0 + batch.chunk_begin[s + 1] - batch.chunk_begin[s];
  const int64_t ring = static_cast<int64_t>(batch.chunk_slot[s]) * window;
  for (int pos = math::FirstRingWrite(t0, end - t0, window); pos < end; ++pos) {
    const int64_t from =
        static_cast<int64_t>(batch.chunk_begin[s] + pos - t0) * kv_width + e;
    const int64_t to = (ring + pos % window) * kv_width + e;
    key_ring_slab[to] = k[from];
    value_ring_slab[to] = v[from];
  }
}

__global__ void SrmMixKernel(DeviceBatch batch, float* p, int D, int heads,
                             int max_positions, const float* mixer_weight,
                             const float* mixer_bias, const float* decay,
                             float* state_slab) {
  const int64_t idx =
      static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<int64_t>(batch.chunks) * D) return;
  const int s = static_cast<int>(idx / D);
  const int ch = static_cast<int>(idx % D);
  const int head = ch / (D / heads);
  const bool column = head < heads / 2;
  float* state_ptr =
      state_slab + static_cast<int64_t>(batch.chunk_slot[s]) * D + ch;
  float state = *state_ptr;
  const float a = decay[head];
  const float* weight =
      mixer_weight + static_cast<int64_t>(head) * max_positions;
  const float* bias = mixer_bias + static_cast<int64_t>(head) * max_positions;
  for (int i = batch.chunk_begin[s]; i < batch.chunk_begin[s + 1]; ++i) {
    const int t = batch.token_position[i];
    float& y = p[static_cast<int64_t>(i) * D + ch];
    y = column ? math::SrmColumnStep(state, y, a, weight[t], bias[t])
               : math::SrmRowStep(state, y, a, weight[t], bias[t]);
  }
  *state_ptr = state;
}

}  // namespace

cudaError_t LocalAttention(const DeviceBatch& batch, const float* q,
                           const float* k, const float* v,
                           const float* key_ring_slab,
                           const float* value_ring_slab, int heads,
                           int kv_heads, int head_dim, int window,
                           float* attended, cudaStream_t stream) {
  if (batch.tokens == 0) return cudaSuccess;
  if (kv_heads <= 0 || heads % kv_heads != 0) return cudaErrorInvalidValue;
  const size_t shared = sizeof(float) * (window + kAttentionThreads);
  if (shared > 48 * 1024) {
    const cudaError_t status = cudaFuncSetAttribute(
        LocalAttentionKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
        static_cast<int>(shared));
    if (status != cudaSuccess) return status;
  }
  LocalAttentionKernel<<<batch.tokens * heads, kAttentionThreads, shared,
                         stream>>>(batch, q, k, v, key_ring_slab,
                                   value_ring_slab, heads, kv_heads, head_dim,
                                   window, attended);
  return cudaGetLastError();
}

cudaError_t WriteRing(const DeviceBatch& batch, const float* k, const float* v,
                      int kv_width, int window, float* key_ring_slab,
                      float* value_ring_slab, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(batch.chunks) * kv_width;
  if (n == 0) return cudaSuccess;
  WriteRingKernel<<<Blocks(n), kThreads, 0, stream>>>(
      batch, k, v, kv_width, window, key_ring_slab, value_ring_slab);
  return cudaGetLastError();
}

cudaError_t SrmMix(const DeviceBatch& batch, float* p, int D, int heads,
                   int max_positions, const float* mixer_weight,
                   const float* mixer_bias, const float* decay,
                   float* state_slab, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(batch.chunks) * D;
  if (n == 0) return cudaSuccess;
  SrmMixKernel<<<Blocks(n), kThreads, 0, stream>>>(
      batch, p, D, heads, max_positions, mixer_weight, mixer_bias, decay,
      state_slab);
  return cudaGetLastError();
}

}  // namespace slabserve::cuda
