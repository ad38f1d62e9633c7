// Internals of the hybrid Qwen3 / B'MOJO-F model shared by its loader and
// its layers: weight layouts, the reused activation workspace, the state a
// layer keeps, and the layer kinds, each run over all the batch's tokens at
// once.
//
// State of a full-attention layer ("*"): one per-token kind holding the
// token's key (after q/k norm and RoPE) and value, [k | v] of Hkv·D floats
// each. State of a B'MOJO-F layer, one slab each: the last K−1 pre-conv rows
// (after the B/C norms, oldest first), the SSM state [H][P][N], the
// in-context ring (W−1 entries [k | v], position p in entry p mod (W−1)), the
// fading ring (2W−1 entries [kf | vf], p mod (2W−1)) and, with the eidetic
// memory on, its store and the in-context entries' innovation scores.
#ifndef SLABSERVE_ENGINE_MODELS_BMOJO_LAYERS_H_
#define SLABSERVE_ENGINE_MODELS_BMOJO_LAYERS_H_

#include <vector>

#include "engine/models/bmojo_config.h"
#include "engine/models/ragged_batch.h"
#include "engine/state/state_pool.h"
#include "kernels/cpu/projection.h"

namespace slabserve::bmojo {

// y = x·Wᵀ (no bias anywhere in this model).
struct Linear {
  cpu::Projection weight;  // [out, in], packed at load

  void Apply(const float* x, int rows, float* y) const {
    weight.Apply(x, rows, nullptr, y);
  }
  // Apply with x's rows already prepared (cpu::Projection::ApplyPrepared).
  void ApplyPrepared(const float* x, int rows, cpu::Bf16Rows& prepared,
                     float* y) const {
    weight.ApplyPrepared(x, rows, nullptr, prepared, y);
  }
  NextProduct Next(cpu::Bf16Rows& prepared) const {
    return {&weight, &prepared};
  }
};

// Qwen3 attention projections, also the tied B'MOJO-F attention.
struct AttentionWeights {
  Linear q, k, v, o;
  std::vector<float> q_norm, k_norm;  // [D]
};

struct MambaWeights {
  Linear in_proj;                     // [2·d_in + 2·d_xb + H, d]: z|x|B|C|dt
  Linear out_proj;                    // [d, d_in]
  std::vector<float> conv_taps;       // [K, C]; tap K−1 is the current token
  std::vector<float> conv_bias;       // [C]
  std::vector<float> dt_bias;         // [H]
  std::vector<float> a;               // [H]: A = −exp(A_log)
  std::vector<float> d_skip;          // [H]
  std::vector<float> b_norm, c_norm;  // [D]; empty without B/C norms
  std::vector<float> gate_norm;       // [d_in]
};

// Slabs of a B'MOJO-F layer, from its first_slab.
enum BmfSlab {
  kConvRows = 0,
  kSsmState = 1,
  kContextRing = 2,
  kFadingRing = 3,
  kMemoryStore = 4,    // eidetic memory only
  kContextScores = 5,  // eidetic memory only
};

struct LayerWeights {
  BmojoLayerType type = BmojoLayerType::kAttention;
  int first_slab = -1;                       // B'MOJO-F: the BmfSlab base
  int token_kind = -1;                       // attention: its per-token kind
  std::vector<float> input_norm, post_norm;  // [d]
  AttentionWeights attention;
  MambaWeights mamba;
  Linear gate, up, down;
};

// Forward's activations, grown to the largest batch seen and then reused, so
// that steady-state steps allocate nothing. One Forward at a time.
struct Workspace {
  std::vector<float> x, normed, out, head_in;  // [T, d]
  std::vector<float> q, attended;              // [T, H·D]
  std::vector<float> k, v, kf, vf;             // [T, Hkv·D]
  std::vector<float> zxbcdt;                   // [T, in_proj rows]
  std::vector<float> xbc;                      // [T, C] after conv + SiLU
  std::vector<float> dt, decay;                // [T, H]: Δ and exp(Δ·A)
  std::vector<float> y, fading;                // [T, d_in], [T, d]
  std::vector<float> innovation;               // [T, H] per-head r
  std::vector<float> gate, up;                 // [T, I]
  // A norm's output rows as it writes them, rounded in BF16 for the
  // products that read them: every product of a norm's output has depth d
  // (q, k, v and in_proj; gate and up; the LM head), so one preparation
  // serves them all. Then the MLP activation, for down.
  cpu::Bf16Rows prepared;

  void Reserve(const BmojoConfig& config, int tokens);
};

// out = full causal attention of n ([T, d]); the chunk's keys and values are
// written to its slot's per-token state first (reserved by the caller).
void FullAttentionLayer(const BmojoConfig& config, const LayerWeights& layer,
                        const RaggedBatch& plan, const float* n,
                        StatePool& pool, Workspace& ws, float* out);
// The Mamba2 half of a B'MOJO-F layer (spec 5.1): fading tokens f of n
// into ws.fading ([T, d]) and, with the eidetic memory on, each token's
// per-head innovation into ws.innovation; updates the conv rows and the SSM
// state.
void MambaFading(const BmojoConfig& config, const LayerWeights& layer,
                 const RaggedBatch& plan, const float* n, StatePool& pool,
                 Workspace& ws);
// out = the B'MOJO-F mixer of n: Mamba2 fading tokens, then one softmax over
// the in-context window, the fading window (and the eidetic store); updates
// the layer's slabs.
void BmojoFLayer(const BmojoConfig& config, const LayerWeights& layer,
                 const RaggedBatch& plan, const float* n, StatePool& pool,
                 Workspace& ws, float* out);
// out = SwiGLU MLP of m ([rows, d]).
void MlpLayer(const BmojoConfig& config, const LayerWeights& layer, int rows,
              const float* m, Workspace& ws, float* out);

}  // namespace slabserve::bmojo

#endif  // SLABSERVE_ENGINE_MODELS_BMOJO_LAYERS_H_
