// Griffin and Hawk (RecurrentGemma): residual blocks of RMSNorm → temporal
// block (RG-LRU recurrence or sliding-window MQA) → RMSNorm → GeGLU MLP, with
// a tied, soft-capped LM head. CPU f32 compute on F32 or widened BF16
// weights.
//
// Per-sequence state, one slab per entry: for a recurrent layer the conv tail
// ([K-1, R] pre-conv inputs, oldest first) and the RG-LRU state h ([R]); for
// an attention layer a key ring and a value ring ([W, KVH·hd], keys after
// RoPE, position p in slot p mod W). The position lives in the pool.
#ifndef SLABSERVE_ENGINE_MODELS_GRIFFIN_H_
#define SLABSERVE_ENGINE_MODELS_GRIFFIN_H_

#include <memory>

#include "absl/status/statusor.h"
#include "engine/io/checkpoint.h"
#include "engine/models/model.h"
#include "kernels/cpu/projection.h"

namespace slabserve {

// Builds the model from a `recurrent_gemma` checkpoint. Every tensor is
// loaded with its exact expected shape and no unexpected tensor may remain.
// The model keeps the checkpoint, whose F32 weights it reads in place;
// projections and the tied head are packed in `precision` (the recurrence
// gates, norms and state stay F32).
absl::StatusOr<std::unique_ptr<Model>> LoadGriffin(
    std::unique_ptr<Checkpoint> checkpoint,
    cpu::WeightPrecision precision = cpu::WeightPrecision::kF32);

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_MODELS_GRIFFIN_H_
