// CUDA kernels for the Griffin, Hawk and SRM forward pass over a ragged
// batch (chunks of consecutive tokens, one chunk per slot). Each launcher
// enqueues its kernel on `stream` and returns the launch error; per-element
// math comes from kernels/math (shared with, and tested on, the CPU). All
// activations are f32 row-major [tokens, width]; state slabs are
// [capacity, row] arrays addressed by slot index. No launcher synchronizes.
//
// Reductions (norms, softmax, dot products) run in a fixed order per row,
// never split across rows, so a row's result does not depend on the batch.
#ifndef SLABSERVE_KERNELS_CUDA_MODEL_KERNELS_H_
#define SLABSERVE_KERNELS_CUDA_MODEL_KERNELS_H_

#include <cuda_runtime.h>

#include <cstdint>

namespace slabserve::cuda {

// A ragged batch in device memory: chunk s owns token rows
// [chunk_begin[s], chunk_begin[s + 1]) of slot chunk_slot[s], starting at
// absolute position chunk_start[s]; row i is token token_id[i] of chunk
// token_chunk[i] at position token_position[i].
struct DeviceBatch {
  int tokens = 0;
  int chunks = 0;
  const int* token_chunk = nullptr;     // [tokens]
  const int* token_position = nullptr;  // [tokens]
  const int32_t* token_id = nullptr;    // [tokens]
  const int* chunk_begin = nullptr;     // [chunks + 1]
  const int* chunk_slot = nullptr;      // [chunks]
  const int* chunk_start = nullptr;     // [chunks]
};

// x[i] = table[token_id[i]] · scale, for an f32 or bf16 (raw bits) table.
cudaError_t EmbedTokens(const DeviceBatch& batch, const float* table, int dim,
                        float scale, float* x, cudaStream_t stream);
cudaError_t EmbedTokensBf16(const DeviceBatch& batch, const uint16_t* table,
                            int dim, float scale, float* x,
                            cudaStream_t stream);

// out[i] = x[i] rounded to bf16 (raw bits), the input of a BF16 product.
cudaError_t ToBf16(const float* x, int64_t n, uint16_t* out,
                   cudaStream_t stream);
// x[i] uniform in [low, high) from Philox keyed by seed (counter i), as f32
// or as bf16 bits: random weights made on the device, for benchmarks.
cudaError_t FillUniform(float* x, int64_t n, float low, float high,
                        uint64_t seed, cudaStream_t stream);
cudaError_t FillUniformBf16(uint16_t* x, int64_t n, float low, float high,
                            uint64_t seed, cudaStream_t stream);
// y[r] += bias for rows of width n.
cudaError_t AddBias(float* y, int rows, int n, const float* bias,
                    cudaStream_t stream);
// x += y, elementwise over n values.
cudaError_t AddInPlace(float* x, const float* y, int64_t n,
                       cudaStream_t stream);
// out[r, j] = gelu(in[r, j]) · in[r, up_offset + j] for j < width, reading
// rows of in_stride floats (a fused gate‖up product) into rows of `width`.
cudaError_t GeGluRows(const float* in, int rows, int width, int in_stride,
                      int up_offset, float* out, cudaStream_t stream);
// In place over n values.
cudaError_t GeluTanh(float* x, int64_t n, cudaStream_t stream);
cudaError_t Silu(float* x, int64_t n, cudaStream_t stream);
// x = cap · tanh(x / cap) (no-op for cap <= 0).
cudaError_t SoftCap(float* x, int64_t n, float cap, cudaStream_t stream);

// Row normalizations (one block per row, statistics in double). `rows`
// (optional) picks input rows: y[r] = norm(x[rows[r]]).
cudaError_t RmsNormRows(const float* x, const int* rows, int count, int dim,
                        const float* scale, float eps, float* y,
                        cudaStream_t stream);
cudaError_t LayerNormRows(const float* x, int count, int dim,
                          const float* weight, const float* bias, float eps,
                          float* y, cudaStream_t stream);

// Partial RoPE in place on `heads` heads of head_dim per row (row stride
// heads·head_dim), rotating the first rotary_dims of each head at the row's
// position.
cudaError_t ApplyRotary(const DeviceBatch& batch, float* x, int heads,
                        int head_dim, int rotary_dims, double theta,
                        cudaStream_t stream);

// Causal depthwise conv of u ([tokens, R], row stride u_stride) into c
// ([tokens, R]); inputs before a chunk come from its slot's tail
// ([K−1, R] floats per slot in tail_slab, oldest first).
cudaError_t CausalConv(const DeviceBatch& batch, const float* u, int u_stride,
                       const float* taps, const float* bias, int R, int K,
                       const float* tail_slab, float* c, cudaStream_t stream);
// Then each chunk's last K−1 inputs (with older tail rows for short
// chunks) become its slot's tail.
cudaError_t UpdateConvTail(const DeviceBatch& batch, const float* u,
                           int u_stride, int R, int K, float* tail_slab,
                           cudaStream_t stream);

// The RG-LRU over each chunk, one thread per (chunk, channel), sequential
// over the chunk's tokens with the f32 state h_slab[slot] ([R] per slot):
// coefficients from the gate pre-activations (recurrence_gate, input_gate,
// [tokens, R]) and the conv output c, reset at position 0; then
// out = h ⊙ y (y: row stride y_stride).
cudaError_t RgLruScan(const DeviceBatch& batch, const float* log_decay,
                      const float* recurrence_gate, const float* input_gate,
                      const float* c, const float* y, int y_stride, int R,
                      float* h_slab, float* out, cudaStream_t stream);

// Local attention (MQA/GQA) of q ([tokens, H·hd], after RoPE) over each
// row's window max(0, t−W+1)..t: keys before the chunk from the slot's rings
// ([W, KVH·hd] per slot, position p in slot p mod W), the chunk's own from
// k / v ([tokens, KVH·hd]). One block per (row, head).
cudaError_t LocalAttention(const DeviceBatch& batch, const float* q,
                           const float* k, const float* v,
                           const float* key_ring_slab,
                           const float* value_ring_slab, int heads,
                           int kv_heads, int head_dim, int window,
                           float* attended, cudaStream_t stream);
// Then each chunk's keys and values enter its rings (the last W of them).
cudaError_t WriteRing(const DeviceBatch& batch, const float* k, const float* v,
                      int kv_width, int window, float* key_ring_slab,
                      float* value_ring_slab, cudaStream_t stream);

// SRM token mixing in place on p ([tokens, D], head k owns channels
// k·e..k·e+e−1): per (chunk, channel), sequential over the chunk's tokens,
// with the f32 state state_slab[slot] ([D] per slot). mixer_weight and
// mixer_bias are [H, N]; decay is [H].
cudaError_t SrmMix(const DeviceBatch& batch, float* p, int D, int heads,
                   int max_positions, const float* mixer_weight,
                   const float* mixer_bias, const float* decay,
                   float* state_slab, cudaStream_t stream);

}  // namespace slabserve::cuda

#endif  // SLABSERVE_KERNELS_CUDA_MODEL_KERNELS_H_
