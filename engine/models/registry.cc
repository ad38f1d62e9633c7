#include "engine/models/registry.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/io/checkpoint.h"
#include "engine/models/bmojo.h"
#include "engine/models/griffin.h"
#include "engine/models/srm.h"

namespace slabserve {

absl::StatusOr<std::unique_ptr<Model>> LoadModel(const std::string& dir,
                                                 const LoadOptions& options) {
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint =
      Checkpoint::Open(dir, options.weights_file);
  if (!checkpoint.ok()) return checkpoint.status();
  const Config& config = (*checkpoint)->config();
  absl::StatusOr<std::string> model_type = config.String("model_type");
  if (!model_type.ok()) return model_type.status();
  if (*model_type != "hybrid_qwen3" && options.eidetic.enabled()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the eidetic memory (eidetic_capacity ", options.eidetic.capacity,
        ") is a hybrid_qwen3 option; model_type is \"", *model_type, "\""));
  }
  if (*model_type == "recurrent_gemma") {
    return LoadGriffin(*std::move(checkpoint), options.weights);
  }
  if (*model_type == "srm") return LoadSrm(**checkpoint, options.weights);
  if (*model_type == "hybrid_qwen3") {
    return LoadBmojo(**checkpoint, options.eidetic, options.weights);
  }
  return config.Error("model_type",
                      absl::StrCat("\"", *model_type,
                                   "\" is not supported (supported: "
                                   "recurrent_gemma, srm, hybrid_qwen3)"));
}

}  // namespace slabserve
