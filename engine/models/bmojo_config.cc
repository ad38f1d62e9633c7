#include "engine/models/bmojo_config.h"

#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "spdlog/spdlog.h"

namespace slabserve {
namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();

#define BMOJO_ASSIGN(lhs, expr)                 \
  do {                                          \
    auto result_ = (expr);                      \
    if (!result_.ok()) return result_.status(); \
    lhs = std::move(*result_);                  \
  } while (0)

#define BMOJO_RETURN_IF_ERROR(expr)    \
  do {                                 \
    absl::Status status_ = (expr);     \
    if (!status_.ok()) return status_; \
  } while (0)

// Copies nested objects' members to dotted top-level keys
// ("mamba2_config.ssm_cfg.ngroups"), so that errors name the full key.
void Flatten(const nlohmann::json& object, const std::string& prefix,
             nlohmann::json& flat) {
  for (const auto& [key, value] : object.items()) {
    const std::string name = prefix.empty() ? key : prefix + "." + key;
    flat[name] = value;
    if (value.is_object()) Flatten(value, name, flat);
  }
}

// An error unless `key` (when present) equals `want`, the value of
// `source`.
absl::Status CheckEqual(const Config& config, const std::string& key,
                        int64_t want, const std::string& source) {
  if (!config.Has(key)) return absl::OkStatus();
  int64_t value;
  BMOJO_ASSIGN(value, config.Int(key, 0, kMaxInt));
  if (value != want) {
    return config.Error(key, absl::StrCat("is ", value, ", expected ", want,
                                          " (", source, ")"));
  }
  return absl::OkStatus();
}

// A special token id, or -1 when absent. An id past the vocabulary (a
// config copied from a larger model) is ignored with a warning: prompts are
// token ids, and such an id could never be produced.
absl::StatusOr<int> SpecialId(const Config& config, const std::string& key,
                              int64_t last_id) {
  int64_t id;
  BMOJO_ASSIGN(id, config.Int(key, 0, kMaxInt, -1));
  if (id > last_id) {
    spdlog::warn("{}: '{}' {} is outside the vocabulary [0, {}]; ignored",
                 config.path(), key, id, last_id);
    return -1;
  }
  return static_cast<int>(id);
}

absl::Status ParsePattern(const Config& config, BmojoConfig& c) {
  std::string pattern;
  BMOJO_ASSIGN(pattern, config.String("hybrid_override_pattern"));
  const std::vector<std::string> symbols = absl::StrSplit(pattern, '-');
  if (static_cast<int>(symbols.size()) != c.num_layers) {
    return config.Error(
        "hybrid_override_pattern",
        absl::StrCat("has ", symbols.size(), " layer symbols, expected ",
                     c.num_layers, " (num_hidden_layers)"));
  }
  for (size_t l = 0; l < symbols.size(); ++l) {
    if (symbols[l] == "*") {
      c.layers.push_back(BmojoLayerType::kAttention);
    } else if (symbols[l] == "BMF") {
      c.layers.push_back(BmojoLayerType::kBmojoF);
    } else {
      return config.Error(
          "hybrid_override_pattern",
          absl::StrCat("layer ", l, " has type \"", symbols[l],
                       "\", which is not supported (supported: *, BMF)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseAttention(const Config& config, BmojoConfig& c) {
  BMOJO_ASSIGN(c.num_heads, config.Int("num_attention_heads", 1, 1 << 16));
  BMOJO_ASSIGN(c.num_kv_heads,
               config.Int("num_key_value_heads", 1, c.num_heads, c.num_heads));
  if (c.num_heads % c.num_kv_heads != 0) {
    return config.Error(
        "num_key_value_heads",
        absl::StrCat("(", c.num_kv_heads, ") must divide num_attention_heads (",
                     c.num_heads, ")"));
  }
  const int64_t derived = c.hidden_size / c.num_heads;
  BMOJO_ASSIGN(c.head_dim, config.Int("head_dim", 2, 1 << 16, derived));
  if (c.head_dim % 2 != 0) {
    return config.Error("head_dim",
                        absl::StrCat("must be even (RoPE), got ", c.head_dim));
  }
  bool bias;
  BMOJO_ASSIGN(bias, config.Bool("attention_bias", false));
  if (bias) {
    return config.Error("attention_bias",
                        "is true; only bias-free attention is supported");
  }
  // RoPE: rope_parameters (new) or rope_theta / rope_scaling (legacy).
  std::string rope_type;
  BMOJO_ASSIGN(rope_type,
               config.String("rope_parameters.rope_type", "default"));
  if (config.Has("rope_scaling.rope_type") && rope_type == "default") {
    BMOJO_ASSIGN(rope_type, config.String("rope_scaling.rope_type"));
  }
  if (rope_type != "default") {
    return config.Error(
        "rope_parameters.rope_type",
        absl::StrCat("\"", rope_type, "\" is not supported (only default)"));
  }
  BMOJO_ASSIGN(c.rope_theta, config.Float("rope_theta", 1e-6, 1e30, 10000.0));
  BMOJO_ASSIGN(c.rope_theta, config.Float("rope_parameters.rope_theta", 1e-6,
                                          1e30, c.rope_theta));
  return absl::OkStatus();
}

// bmojo_config: the window, the SSM mixer, tied fading weights and a copy of
// the attention geometry that must agree with the top level.
absl::Status ParseBmojoBlock(const Config& config, BmojoConfig& c) {
  if (!config.Has("bmojo_config")) {
    return config.Error("bmojo_config", "is missing");
  }
  BMOJO_ASSIGN(c.window_size,
               config.Int("bmojo_config.window_size", 1, 1 << 24));
  c.window = EffectiveWindow(c.window_size);
  std::string mixer;
  BMOJO_ASSIGN(mixer, config.String("bmojo_config.ssm_mixer", "mamba2"));
  if (mixer != "mamba2") {
    return config.Error(
        "bmojo_config.ssm_mixer",
        absl::StrCat("\"", mixer, "\" is not supported (only mamba2)"));
  }
  bool tied;
  BMOJO_ASSIGN(tied, config.Bool("bmojo_config.tie_attn_weights", true));
  if (!tied) {
    return config.Error("bmojo_config.tie_attn_weights",
                        "is false; only tied fading-stream weights are "
                        "supported");
  }
  const std::string top = "top-level ";
  BMOJO_RETURN_IF_ERROR(CheckEqual(config, "bmojo_config.hidden_size",
                                   c.hidden_size, top + "hidden_size"));
  BMOJO_RETURN_IF_ERROR(CheckEqual(config, "bmojo_config.num_heads",
                                   c.num_heads, top + "num_attention_heads"));
  BMOJO_RETURN_IF_ERROR(CheckEqual(config, "bmojo_config.num_key_value_heads",
                                   c.num_kv_heads,
                                   top + "num_key_value_heads"));
  BMOJO_RETURN_IF_ERROR(CheckEqual(config, "bmojo_config.head_dim", c.head_dim,
                                   top + "head_dim"));
  if (config.Has("bmojo_config.rms_norm_eps")) {
    double eps;
    BMOJO_ASSIGN(eps, config.Float("bmojo_config.rms_norm_eps", 0.0, 1.0));
    if (static_cast<float>(eps) != c.rms_norm_eps) {
      return config.Error("bmojo_config.rms_norm_eps",
                          absl::StrCat("is ", eps, ", expected ",
                                       c.rms_norm_eps, " (rms_norm_eps)"));
    }
  }
  return absl::OkStatus();
}

// mamba2_config: pinned to the attention geometry (SSM heads = H, head size
// = state size = D; x and B in Hkv groups, C in H groups).
absl::Status ParseMambaBlock(const Config& config, BmojoConfig& c) {
  if (!config.Has("mamba2_config")) {
    return config.Error("mamba2_config", "is missing");
  }
  BMOJO_RETURN_IF_ERROR(CheckEqual(config, "mamba2_config.d_model",
                                   c.hidden_size, "hidden_size"));
  const std::string hd = "num_attention_heads × head_dim";
  BMOJO_RETURN_IF_ERROR(
      CheckEqual(config, "mamba2_config.d_inner", c.d_inner(), hd));
  BMOJO_RETURN_IF_ERROR(CheckEqual(config, "mamba2_config.d_xb", c.d_xb(),
                                   "num_key_value_heads × head_dim"));
  BMOJO_RETURN_IF_ERROR(CheckEqual(config, "mamba2_config.ssm_cfg.d_state",
                                   c.head_dim, "head_dim"));
  BMOJO_RETURN_IF_ERROR(CheckEqual(config, "mamba2_config.ssm_cfg.ngroups",
                                   c.num_heads, "num_attention_heads"));
  BMOJO_ASSIGN(c.conv_width, config.Int("mamba2_config.d_conv", 2, 64, 4));
  BMOJO_ASSIGN(c.bc_norm, config.Bool("mamba2_config.use_qk_norm", true));
  bool pos_emb;
  BMOJO_ASSIGN(pos_emb, config.Bool("mamba2_config.use_pos_emb", false));
  if (pos_emb) {
    return config.Error("mamba2_config.use_pos_emb",
                        "is true; RoPE inside the SSM is not supported");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status EideticConfig::Validate() const {
  if (capacity < 0 || capacity > (1 << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "eidetic_capacity must be in [0, 1048576], got ", capacity));
  }
  if (!(threshold >= 0.0 && threshold <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("eidetic_threshold must be in [0, 1], got ", threshold));
  }
  if (topk_per_window < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "eidetic_topk_per_window must be >= 0, got ", topk_per_window));
  }
  return absl::OkStatus();
}

int BmojoConfig::num_bmojo_layers() const {
  int n = 0;
  for (BmojoLayerType type : layers) n += type == BmojoLayerType::kBmojoF;
  return n;
}

int BmojoConfig::num_attention_layers() const {
  return static_cast<int>(layers.size()) - num_bmojo_layers();
}

int EffectiveWindow(int window_size) {
  return window_size % 2 == 0 ? window_size : window_size + 1;
}

absl::StatusOr<BmojoConfig> ParseBmojoConfig(const Config& original) {
  nlohmann::json flat = nlohmann::json::object();
  Flatten(original.json(), "", flat);
  // Some configs list several EOS ids; the first is the model's own.
  for (const char* key : {"bos_token_id", "eos_token_id", "pad_token_id"}) {
    if (flat.contains(key) && flat[key].is_array() && !flat[key].empty()) {
      flat[key] = nlohmann::json(flat[key][0]);
    }
  }
  std::unique_ptr<Config> parsed;
  BMOJO_ASSIGN(parsed, Config::Parse(flat.dump(), original.path()));
  const Config& config = *parsed;
  BmojoConfig c;
  BMOJO_ASSIGN(c.vocab_size, config.Int("vocab_size", 1, kMaxInt));
  BMOJO_ASSIGN(c.num_layers, config.Int("num_hidden_layers", 1, 100000));
  BMOJO_ASSIGN(c.hidden_size, config.Int("hidden_size", 1, 1 << 20));
  BMOJO_ASSIGN(c.intermediate_size,
               config.Int("intermediate_size", 1, 1 << 24));
  double eps;
  BMOJO_ASSIGN(eps, config.Float("rms_norm_eps", 0.0, 1.0, 1e-6));
  c.rms_norm_eps = static_cast<float>(eps);
  BMOJO_RETURN_IF_ERROR(ParseAttention(config, c));
  std::string activation;
  BMOJO_ASSIGN(activation, config.String("hidden_act", "silu"));
  if (activation != "silu") {
    return config.Error(
        "hidden_act",
        absl::StrCat("\"", activation, "\" is not supported (only silu)"));
  }
  BMOJO_ASSIGN(c.tie_word_embeddings,
               config.Bool("tie_word_embeddings", false));
  BMOJO_ASSIGN(c.max_positions,
               config.Int("max_position_embeddings", 1, kMaxInt));
  const int64_t last_id = c.vocab_size - 1;
  BMOJO_ASSIGN(c.bos_id, SpecialId(config, "bos_token_id", last_id));
  BMOJO_ASSIGN(c.eos_id, SpecialId(config, "eos_token_id", last_id));
  BMOJO_ASSIGN(c.pad_id, SpecialId(config, "pad_token_id", last_id));
  BMOJO_RETURN_IF_ERROR(ParsePattern(config, c));
  BMOJO_RETURN_IF_ERROR(ParseBmojoBlock(config, c));
  BMOJO_RETURN_IF_ERROR(ParseMambaBlock(config, c));
  if (c.window != c.window_size) {
    spdlog::info(
        "{}: bmojo_config.window_size {} is odd; serving W = {} (older "
        "configs store W - 1)",
        original.path(), c.window_size, c.window);
  } else {
    spdlog::info("{}: B'MOJO-F window W = {}", original.path(), c.window);
  }
  return c;
}

#undef BMOJO_ASSIGN
#undef BMOJO_RETURN_IF_ERROR

}  // namespace slabserve
