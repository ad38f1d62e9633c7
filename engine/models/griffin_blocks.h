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
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/projection.h"

namespace slabserve::griffin {

// y = x·Wᵀ + b for a [rows, in] activation.
struct Linear {
  cpu::Projection weight;       // [out, in], packed at load
  const float* bias = nullptr;  // [out] or null
  int out = 0;
  int in = 0;

  void Apply(const float* x, int rows, float* y) const {
    weight.Apply(x, rows, bias, y);
  }
};

struct RecurrentWeights {
  Linear x, y, out;
  std::vector<float> conv_taps;  // [K, R]; tap K-1 is the current token
  const float* conv_bias = nullptr;
  // Block-diagonal gates: one packed [out, in] block per head.
  std::vector<cpu::PackedWeight> input_gate, recurrence_gate;
  const float* input_gate_bias = nullptr;       // [R]
  const float* recurrence_gate_bias = nullptr;  // [R]
  std::vector<float> log_decay;                 // -8·softplus(Λ), [R]
};

struct AttentionWeights {
  Linear q, k, v, o;
};

struct LayerWeights {
  GriffinBlock type = GriffinBlock::kRecurrent;
  int first_slab = 0;  // conv tail / key ring; the next slab is h / values
  std::vector<float> temporal_norm, channel_norm;  // 1 + w
  RecurrentWeights recurrent;
  AttentionWeights attention;
  Linear gate, up, down;
};

// Forward's activations, grown to the largest batch seen and then reused, so
// that steady-state steps allocate and zero nothing. The model is therefore
// not reentrant: one Forward at a time (the scheduler's step loop).
struct Workspace {
  std::vector<float> x, normed, out;            // [T, D]
  std::vector<float> y, u, conv, lru_a, lru_b;  // [T, R] recurrent block
  std::vector<float> q, k, v, attended;         // [T, H·hd or KVH·hd]
  std::vector<float> mlp_gate, mlp_up;          // [T, F]
  std::vector<float> head_in;                   // [logit rows, D]

  // Makes every buffer hold at least `tokens` rows for `config`.
  void Reserve(const GriffinConfig& config, int tokens);
};

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
