#include "engine/models/griffin_config.h"

#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/cpu/ops.h"

namespace slabserve {
namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();

}  // namespace

// Assigns the value of a StatusOr expression or returns its error.
#define GRIFFIN_ASSIGN(lhs, expr)               \
  do {                                          \
    auto result_ = (expr);                      \
    if (!result_.ok()) return result_.status(); \
    lhs = *result_;                             \
  } while (0)

int GriffinConfig::num_attention_layers() const {
  int n = 0;
  for (GriffinBlock block : layers) n += block == GriffinBlock::kAttention;
  return n;
}

namespace {

// Widths, heads and window.
absl::Status ParseSizes(const Config& config, GriffinConfig& c) {
  GRIFFIN_ASSIGN(c.vocab_size, config.Int("vocab_size", 1, kMaxInt));
  GRIFFIN_ASSIGN(c.num_layers, config.Int("num_hidden_layers", 1, 100000));
  GRIFFIN_ASSIGN(c.hidden_size, config.Int("hidden_size", 1, 1 << 20));
  GRIFFIN_ASSIGN(c.lru_width,
                 config.Int("lru_width", 1, 1 << 20, c.hidden_size));
  GRIFFIN_ASSIGN(c.num_heads, config.Int("num_attention_heads", 1, 1 << 16));
  if (c.hidden_size % c.num_heads != 0) {
    return config.Error(
        "num_attention_heads",
        absl::StrCat("(", c.num_heads, ") must divide hidden_size (",
                     c.hidden_size, ")"));
  }
  if (c.lru_width % c.num_heads != 0) {
    return config.Error(
        "num_attention_heads",
        absl::StrCat("(", c.num_heads, ") must divide lru_width (", c.lru_width,
                     ")"));
  }
  // Like the reference code, head_dim is derived; the JSON value is ignored.
  c.head_dim = c.hidden_size / c.num_heads;
  GRIFFIN_ASSIGN(c.num_kv_heads,
                 config.Int("num_key_value_heads", 1, c.num_heads, 1));
  if (c.num_heads % c.num_kv_heads != 0) {
    return config.Error(
        "num_key_value_heads",
        absl::StrCat("(", c.num_kv_heads, ") must divide num_attention_heads (",
                     c.num_heads, ")"));
  }
  int64_t intermediate;
  GRIFFIN_ASSIGN(intermediate, config.Int("intermediate_size", 2, 1 << 24));
  if (intermediate % 2 != 0) {
    return config.Error("intermediate_size",
                        absl::StrCat("must be even (the MLP width is half of "
                                     "it), got ",
                                     intermediate));
  }
  c.mlp_width = static_cast<int>(intermediate / 2);
  GRIFFIN_ASSIGN(c.attention_window,
                 config.Int("attention_window_size", 1, 1 << 24));
  GRIFFIN_ASSIGN(c.conv_width, config.Int("conv1d_width", 1, 64));
  return absl::OkStatus();
}

// The block pattern, repeated over the layers.
absl::Status ParseBlocks(const Config& config, GriffinConfig& c) {
  std::string block_key = "block_types";
  if (!config.Has(block_key)) block_key = "_block_types";
  if (!config.Has(block_key)) {
    return config.Error("block_types",
                        "is missing (nor is '_block_types' set)");
  }
  std::vector<std::string> pattern;
  GRIFFIN_ASSIGN(pattern, config.StringList(block_key));
  if (pattern.empty()) return config.Error(block_key, "must not be empty");
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string& type = pattern[i % pattern.size()];
    if (type == "recurrent") {
      c.layers.push_back(GriffinBlock::kRecurrent);
    } else if (type == "attention") {
      c.layers.push_back(GriffinBlock::kAttention);
    } else {
      return config.Error(block_key,
                          absl::StrCat("has unknown block type \"", type,
                                       "\" (supported: recurrent, attention)"));
    }
  }
  return absl::OkStatus();
}

// Activation, rotary embedding, norms, soft cap, embedding scale, tokens.
absl::Status ParseNumerics(const Config& config, GriffinConfig& c) {
  std::string activation;
  GRIFFIN_ASSIGN(activation,
                 config.String("hidden_activation", "gelu_pytorch_tanh"));
  if (activation != "gelu_pytorch_tanh" && activation != "gelu_tanh") {
    return config.Error("hidden_activation",
                        absl::StrCat("\"", activation,
                                     "\" is not supported (only "
                                     "gelu_pytorch_tanh)"));
  }
  double rotary_fraction;
  GRIFFIN_ASSIGN(rotary_fraction,
                 config.Float("partial_rotary_factor", 0.0, 1.0, 0.5));
  c.rotary_dims = static_cast<int>(c.head_dim * rotary_fraction);
  if (c.rotary_dims % 2 != 0) {
    return config.Error(
        "partial_rotary_factor",
        absl::StrCat("gives an odd rotary width ", c.rotary_dims,
                     " for head_dim ", c.head_dim));
  }
  GRIFFIN_ASSIGN(c.rope_theta, config.Float("rope_theta", 1e-6, 1e30, 10000.0));
  double eps;
  GRIFFIN_ASSIGN(eps, config.Float("rms_norm_eps", 0.0, 1.0, 1e-6));
  c.rms_norm_eps = static_cast<float>(eps);
  // Absent: the HF default 30; explicit null or 0: no cap.
  double cap = 30.0;
  if (config.json().contains("logits_soft_cap")) {
    GRIFFIN_ASSIGN(cap, config.Float("logits_soft_cap", 0.0, 1e30, 0.0));
  }
  c.logits_soft_cap = static_cast<float>(cap);
  bool scale_embeddings;
  GRIFFIN_ASSIGN(scale_embeddings,
                 config.Bool("embeddings_scale_by_sqrt_dim", true));
  // The references round sqrt(D) to bfloat16 "to match training".
  c.embedding_scale =
      scale_embeddings
          ? cpu::RoundToBf16(std::sqrt(static_cast<float>(c.hidden_size)))
          : 1.0f;
  GRIFFIN_ASSIGN(c.attention_bias, config.Bool("attention_bias", false));
  const int64_t last_id = c.vocab_size - 1;
  GRIFFIN_ASSIGN(c.bos_id, config.Int("bos_token_id", 0, last_id, 2));
  GRIFFIN_ASSIGN(c.eos_id, config.Int("eos_token_id", 0, last_id, 1));
  GRIFFIN_ASSIGN(c.pad_id, config.Int("pad_token_id", 0, last_id, 0));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<GriffinConfig> ParseGriffinConfig(const Config& config) {
  GriffinConfig c;
  if (absl::Status s = ParseSizes(config, c); !s.ok()) return s;
  if (absl::Status s = ParseBlocks(config, c); !s.ok()) return s;
  if (absl::Status s = ParseNumerics(config, c); !s.ok()) return s;
  return c;
}

#undef GRIFFIN_ASSIGN

}  // namespace slabserve
