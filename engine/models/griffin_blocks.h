// Internals of the Griffin model shared by its loader and its block
// implementations: weight layouts, the reused activation workspace and the
// three block kinds, each run over all the batch's tokens at once.
#ifndef SLABSERVE_ENGINE_MODELS_GRIFFIN_BLOCKS_H_
#define SLABSERVE_ENGINE_MODELS_GRIFFIN_BLOCKS_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/models/griffin_config.h"
#include "engine/models/ragged_batch.h"
#include "engine/state/state_pool.h"
#include "kernels/cpu/projection.h"

namespace slabserve::griffin {

// y = x·Wᵀ + b for a [rows, in] activation. Projections of the same input
// are loaded as one, their weights stacked row-wise (x and y; q, k and v;
// gate and up), so a step reads the input, and in BF16 rounds it, once per
// group, and each product is wider. Every output is computed as it would be
// alone (the products are exact per column).
struct Linear {
  cpu::Projection weight;   // [out, in], packed at load
  std::vector<float> bias;  // [out] or empty

  const float* bias_or_null() const {
    return bias.empty() ? nullptr : bias.data();
  }
  void Apply(const float* x, int rows, float* y) const {
    weight.Apply(x, rows, bias_or_null(), y);
  }
  // Apply for rows prepared as they were written (cpu::Projection).
  void ApplyPrepared(const float* x, int rows, cpu::Bf16Rows& prepared,
                     float* y) const {
    weight.ApplyPrepared(x, rows, bias_or_null(), prepared, y);
  }
  // Where a norm's output rows are prepared for this product.
  NextProduct Next(cpu::Bf16Rows& prepared) const {
    return {&weight, &prepared};
  }
};

struct RecurrentWeights {
  Linear x_y;  // linear_x then linear_y: [2R, D]
  Linear out;
  std::vector<float> conv_taps;  // [K, R]; tap K-1 is the current token
  const float* conv_bias = nullptr;
  // Block-diagonal gates: one [out, in] block per head.
  std::vector<cpu::Projection> input_gate, recurrence_gate;
  const float* input_gate_bias = nullptr;       // [R]
  const float* recurrence_gate_bias = nullptr;  // [R]
  std::vector<float> log_decay;                 // -8·softplus(Λ), [R]
};

struct AttentionWeights {
  Linear qkv;  // q, k, v: [H·hd + 2·KVH·hd, D]
  Linear o;
};

struct LayerWeights {
  GriffinBlock type = GriffinBlock::kRecurrent;
  int first_slab = 0;  // conv tail / key ring; the next slab is h / values
  std::vector<float> temporal_norm, channel_norm;  // 1 + w
  RecurrentWeights recurrent;
  AttentionWeights attention;
  Linear gate_up;  // gate then up: [2F, D]
  Linear down;

  // The temporal block's first product: x_y or qkv.
  const Linear& temporal_input() const {
    return type == GriffinBlock::kRecurrent ? recurrent.x_y : attention.qkv;
  }
};

// Forward's activations, grown to the largest batch seen and then reused, so
// that steady-state steps allocate and zero nothing. The model is therefore
// not reentrant: one Forward at a time (the scheduler's step loop).
struct Workspace {
  std::vector<float> x, normed, out;  // [T, D]
  std::vector<float> x_y;  // [T, 2R]: x, then y (gelu(y) after the gates)
  std::vector<float> conv, lru_a, lru_b;  // [T, R]; lru_a ends as the output
  std::vector<float> qkv;                 // [T, H·hd + 2·KVH·hd]
  std::vector<float> attended;            // [T, H·hd]
  std::vector<float> mlp;                 // [T, 2F]: gate, up
  std::vector<float> mlp_act;             // [T, F]: F32 only, MlpBlock grows it
  std::vector<float> head_in;             // [logit rows, D]
  // The next product's input rows as they are written, rounded in BF16:
  // each block's input (the norm's output), attended, a decode token's scan
  // output, the MLP activation, the LM head's input.
  cpu::Bf16Rows prepared;
  // The RG-LRU gates' input c, one head's slice per entry (BF16 products).
  std::vector<cpu::Bf16Rows> gate_rows;
  std::vector<int> long_chunks;  // chunks of more than one token, this step

  // Makes every buffer but mlp_act hold at least `tokens` rows for `config`.
  void Reserve(const GriffinConfig& config, int tokens);
};

// The blocks read their input n with its rows prepared in ws.prepared for
// their first product (temporal_input(), gate_up).
// out = the recurrent temporal block of normalized input n ([T, D]); reads
// and advances each chunk's conv tail and RG-LRU state.
void RecurrentBlock(const GriffinConfig& config, const LayerWeights& layer,
                    const RaggedBatch& plan, const float* n, StatePool& pool,
                    Workspace& ws, float* out);
// out = local attention of n over each chunk's key/value ring and its own
// keys; then the chunk's keys enter the ring.
void AttentionBlock(const GriffinConfig& config, const LayerWeights& layer,
                    const RaggedBatch& plan, const float* n, StatePool& pool,
                    Workspace& ws, float* out);
// out = GeGLU MLP of m ([rows, D]).
void MlpBlock(const GriffinConfig& config, const LayerWeights& layer, int rows,
              const float* m, Workspace& ws, float* out);

}  // namespace slabserve::griffin

#endif  // SLABSERVE_ENGINE_MODELS_GRIFFIN_BLOCKS_H_
