#include "engine/models/srm_config.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace slabserve {
namespace {

// A boolean switch that must hold `required` for the supported variant.
absl::Status RequireBool(const Config& config, const std::string& key,
                         bool fallback, bool required, const std::string& why) {
  absl::StatusOr<bool> value = config.Bool(key, fallback);
  if (!value.ok()) return value.status();
  if (*value != required) {
    return config.Error(
        key,
        absl::StrCat("must be ", required ? "true" : "false", " (", why, ")"));
  }
  return absl::OkStatus();
}

// The model type and the variant switches: only the upstream served
// variant is implemented (mixed column/row heads with per-head
// projections, kernel 1); the others have different tensors.
absl::Status CheckVariant(const Config& config) {
  absl::StatusOr<std::string> model_type = config.String("model_type", "srm");
  if (!model_type.ok()) return model_type.status();
  if (*model_type != "srm") {
    return config.Error("model_type", absl::StrCat("must be \"srm\", got \"",
                                                   *model_type, "\""));
  }
  const std::pair<const char*, std::pair<bool, bool>> switches[] = {
      {"parallel_heads", {false, false}},
      {"use_projections", {true, true}},
      {"mixed_heads", {true, true}},
      {"expanded_convs", {false, false}},
      {"combined_heads", {false, false}},
      {"tie_word_embeddings", {false, false}},
  };
  for (const auto& [key, fallback_and_required] : switches) {
    absl::Status status = RequireBool(config, key, fallback_and_required.first,
                                      fallback_and_required.second,
                                      "only the mixed-heads SRM "
                                      "with per-head projections "
                                      "is supported");
    if (!status.ok()) return status;
  }
  absl::StatusOr<int64_t> kernel = config.Int("kernel", 0, 1 << 20, 1);
  if (!kernel.ok()) return kernel.status();
  if (*kernel != 1) {
    return config.Error("kernel", absl::StrCat("must be 1 (convolutional "
                                               "kernels are not supported), "
                                               "got ",
                                               *kernel));
  }
  return absl::OkStatus();
}

// Sizes, heads and token ids.
absl::Status ParseSizes(const Config& config, SrmConfig& out) {
  struct IntField {
    const char* key;
    int* field;
    int64_t min, max;
    std::optional<int64_t> fallback;
  };
  const IntField ints[] = {
      {"vocab_size", &out.vocab_size, 1, 1 << 24, std::nullopt},
      {"hidden_dim", &out.hidden_dim, 1, 1 << 16, std::nullopt},
      {"seq_len", &out.seq_len, 1, 1 << 24, std::nullopt},
      {"num_blocks", &out.num_blocks, 1, 4096, std::nullopt},
      {"heads", &out.heads, 1, 1 << 16, std::nullopt},
      {"expansion_factor", &out.expansion_factor, 1, 64, 4},
      {"bos_token_id", &out.bos_id, -1, 1 << 24, -1},
      {"eos_token_id", &out.eos_id, -1, 1 << 24, -1},
      {"pad_token_id", &out.pad_id, -1, 1 << 24, -1},
  };
  for (const IntField& f : ints) {
    absl::StatusOr<int64_t> value = config.Int(f.key, f.min, f.max, f.fallback);
    if (!value.ok()) return value.status();
    *f.field = static_cast<int>(*value);
  }
  if (out.heads % 2 != 0) {
    return config.Error("heads", absl::StrCat("must be even (half column-, "
                                              "half row-repeat heads), got ",
                                              out.heads));
  }
  if (out.hidden_dim % out.heads != 0) {
    return config.Error("heads",
                        absl::StrCat("must divide hidden_dim ", out.hidden_dim,
                                     ", got ", out.heads));
  }
  return absl::OkStatus();
}

// The decay of the running sums, the norms' epsilon and BOS handling.
absl::Status ParseDecayAndNorms(const Config& config, SrmConfig& out) {
  // Upstream passes seq_len // 512, which is 0 (a division by zero) below 512.
  absl::StatusOr<int64_t> decay_constant =
      config.Int("decay_constant", 0, 1 << 24, out.seq_len / 512);
  if (!decay_constant.ok()) return decay_constant.status();
  if (*decay_constant == 0) {
    return config.Error(
        "decay_constant",
        config.Has("decay_constant")
            ? std::string("must be >= 1, got 0")
            : absl::StrCat("is missing and seq_len // 512 = 0 for seq_len ",
                           out.seq_len, "; state it explicitly (>= 1)"));
  }
  out.decay_constant = static_cast<int>(*decay_constant);
  absl::StatusOr<bool> decay = config.Bool("decay", true);
  if (!decay.ok()) return decay.status();
  out.decay = *decay;
  if (config.Has("decay_clip")) {
    absl::StatusOr<std::vector<double>> clip = config.FloatList("decay_clip");
    if (!clip.ok()) return clip.status();
    if (clip->size() != 2 ||
        !((*clip)[0] > 0.0 && (*clip)[0] <= (*clip)[1] && (*clip)[1] <= 1.0)) {
      return config.Error("decay_clip",
                          "must be [low, high] with 0 < low <= high <= 1");
    }
    out.decay_clip_low = (*clip)[0];
    out.decay_clip_high = (*clip)[1];
  }
  absl::StatusOr<double> eps = config.Float("layer_norm_eps", 1e-12, 1.0, 1e-5);
  if (!eps.ok()) return eps.status();
  out.layer_norm_eps = static_cast<float>(*eps);
  absl::StatusOr<bool> add_bos = config.Bool("add_bos_token", false);
  if (!add_bos.ok()) return add_bos.status();
  out.add_bos = *add_bos;
  if (out.add_bos && out.bos_id < 0) {
    return config.Error("add_bos_token", "is true but bos_token_id is not set");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SrmConfig::Validate() const {
  if (vocab_size < 1 || hidden_dim < 1 || num_blocks < 1 || seq_len < 1 ||
      expansion_factor < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SRM config: vocab_size, hidden_dim, num_blocks, seq_len and "
        "expansion_factor must be positive, got ",
        vocab_size, ", ", hidden_dim, ", ", num_blocks, ", ", seq_len, ", ",
        expansion_factor));
  }
  if (heads < 2 || heads % 2 != 0 || hidden_dim % heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("SRM config: heads must be even and divide hidden_dim ",
                     hidden_dim, ", got ", heads));
  }
  if (decay_constant < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SRM config: decay_constant must be >= 1, got ", decay_constant));
  }
  if (!(decay_clip_low > 0.0 && decay_clip_low <= decay_clip_high &&
        decay_clip_high <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SRM config: decay_clip must satisfy 0 < low <= high <= 1, got [",
        decay_clip_low, ", ", decay_clip_high, "]"));
  }
  if (!(layer_norm_eps > 0.0f)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SRM config: layer_norm_eps must be positive, got ", layer_norm_eps));
  }
  return absl::OkStatus();
}

absl::StatusOr<SrmConfig> ParseSrmConfig(const Config& config) {
  if (absl::Status s = CheckVariant(config); !s.ok()) return s;
  SrmConfig out;
  if (absl::Status s = ParseSizes(config, out); !s.ok()) return s;
  if (absl::Status s = ParseDecayAndNorms(config, out); !s.ok()) return s;
  if (absl::Status status = out.Validate(); !status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.path(), ": ", status.message()));
  }
  return out;
}

}  // namespace slabserve
