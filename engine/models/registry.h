// Loads any supported architecture from a model directory, by the
// model_type in its config.json.
#ifndef SLABSERVE_ENGINE_MODELS_REGISTRY_H_
#define SLABSERVE_ENGINE_MODELS_REGISTRY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/models/model.h"

namespace slabserve {

struct LoadOptions {
  // Weights file inside the directory; empty: model.safetensors, or the
  // shards named by model.safetensors.index.json.
  std::string weights_file;
};

// "recurrent_gemma" → Griffin/Hawk, "srm" → SRM; any other model_type is an
// error naming it and the supported ones.
absl::StatusOr<std::unique_ptr<Model>> LoadModel(
    const std::string& dir, const LoadOptions& options = {});

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_MODELS_REGISTRY_H_
