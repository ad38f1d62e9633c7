// Loads any supported architecture from a model directory, by the
// model_type in its config.json.
#ifndef SLABSERVE_ENGINE_MODELS_REGISTRY_H_
#define SLABSERVE_ENGINE_MODELS_REGISTRY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/models/bmojo_config.h"
#include "engine/models/model.h"

namespace slabserve {

struct LoadOptions {
  // Weights file inside the directory; empty: model.safetensors, or the
  // shards named by model.safetensors.index.json.
  std::string weights_file;
  // Precision of the projections and the LM head.
  cpu::WeightPrecision weights = cpu::WeightPrecision::kF32;
  // hybrid_qwen3 only: the long-term eidetic memory (off by default).
  EideticConfig eidetic;
};

// "recurrent_gemma" → Griffin/Hawk, "srm" → SRM, "hybrid_qwen3" → hybrid
// Qwen3 with B'MOJO-F layers; any other model_type is an
// error naming it and the supported ones.
absl::StatusOr<std::unique_ptr<Model>> LoadModel(
    const std::string& dir, const LoadOptions& options = {});

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_MODELS_REGISTRY_H_
