// Hybrid Qwen3 with B'MOJO-F layers (model_type "hybrid_qwen3"): residual
// layers of RMSNorm → mixer → RMSNorm → SwiGLU MLP, where the mixer is Qwen3
// full attention ("*": GQA, q/k norms, RoPE, a key/value cache that grows in
// per-token blocks) or B'MOJO-F ("BMF": a Mamba2 fading mixer whose outputs
// become keys and values W positions later, and attention over the last W
// tokens and the W fading tokens before them, merged in one softmax). Untied
// or tied LM head. CPU f32 compute on F32 or widened BF16/F16 weights.
#ifndef SLABSERVE_ENGINE_MODELS_BMOJO_H_
#define SLABSERVE_ENGINE_MODELS_BMOJO_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/io/checkpoint.h"
#include "engine/models/bmojo_config.h"
#include "engine/models/model.h"
#include "engine/state/state_pool.h"

namespace slabserve {

// Builds the model from a hybrid_qwen3 checkpoint: every tensor is loaded
// with its exact expected shape, projection biases and unexpected tensors
// are rejected, and the conv width is read from conv1d.weight. `eidetic`
// configures the long-term eidetic memory (off by default).
// The state one sequence of `config` keeps, as the loaded model declares it:
// constant-size slabs (per B'MOJO-F layer, in layer order: conv rows, SSM
// state, in-context ring, fading ring and, with the eidetic memory, its
// store and the in-context scores) and one per-token kind per attention
// layer ([k | v], f32).
std::vector<StateSlabSpec> BmojoStateLayout(const BmojoConfig& config);
TokenStateLayout BmojoTokenLayout(const BmojoConfig& config);

// Projections and the LM head are packed in `precision` (the embedding
// lookup, norms, mixers and state stay F32).
absl::StatusOr<std::unique_ptr<Model>> LoadBmojo(
    Checkpoint& checkpoint, const EideticConfig& eidetic = {},
    cpu::WeightPrecision precision = cpu::WeightPrecision::kF32);

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_MODELS_BMOJO_H_
