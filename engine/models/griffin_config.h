// Griffin/Hawk (RecurrentGemma) hyperparameters, read from a Hugging Face
// `recurrent_gemma` config.json with every field range-checked.
#ifndef SLABSERVE_ENGINE_MODELS_GRIFFIN_CONFIG_H_
#define SLABSERVE_ENGINE_MODELS_GRIFFIN_CONFIG_H_

#include <vector>

#include "absl/status/statusor.h"
#include "engine/io/config.h"

namespace slabserve {

enum class GriffinBlock { kRecurrent, kAttention };

struct GriffinConfig {
  int vocab_size = 0;
  int num_layers = 0;
  int hidden_size = 0;       // D
  int lru_width = 0;         // R
  int num_heads = 0;         // H: attention heads and RG-LRU gate blocks
  int head_dim = 0;          // D / H
  int num_kv_heads = 0;      // divides H
  int mlp_width = 0;         // intermediate_size / 2
  int attention_window = 0;  // W: keys a query sees, itself included
  int conv_width = 0;        // K
  int rotary_dims = 0;       // even, <= head_dim
  double rope_theta = 0.0;
  float rms_norm_eps = 0.0f;
  float logits_soft_cap = 0.0f;  // 0: none
  float embedding_scale = 1.0f;  // bf16(sqrt(D)), or 1 when disabled
  bool attention_bias = false;   // q/k/v biases
  int bos_id = 2;
  int eos_id = 1;
  int pad_id = 0;
  std::vector<GriffinBlock> layers;  // the block pattern, cycled to L

  int num_attention_layers() const;
};

// Errors name the config file and the key at fault.
absl::StatusOr<GriffinConfig> ParseGriffinConfig(const Config& config);

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_MODELS_GRIFFIN_CONFIG_H_
