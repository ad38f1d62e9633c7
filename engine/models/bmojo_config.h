// Hyperparameters of a hybrid Qwen3 model with B'MOJO-F layers
// (model_type "hybrid_qwen3"), read from its config.json with every
// consistency check of the checkpoint format: the layer pattern, the
// bmojo_config and mamba2_config blocks pinned to the attention geometry, the
// window rule and RoPE. Errors name the file and the key at fault.
#ifndef SLABSERVE_ENGINE_MODELS_BMOJO_CONFIG_H_
#define SLABSERVE_ENGINE_MODELS_BMOJO_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/io/config.h"

namespace slabserve {

enum class BmojoLayerType {
  kAttention,  // "*": Qwen3 full causal attention
  kBmojoF,     // "BMF": B'MOJO-F (Mamba2 fading mixer + two windows)
};

// The long-term eidetic memory (a slabserve extension, not part of B'MOJO-F
// checkpoints): tokens leaving the in-context window whose innovation score
// r is at least `threshold` are kept in a per-layer store of `capacity`
// entries and read as a third attention stream. capacity 0 disables it, and
// the model is then exactly B'MOJO-F.
struct EideticConfig {
  int capacity = 0;
  double threshold = 0.5;
  int topk_per_window = 0;  // most entries admitted per W positions; 0: any

  bool enabled() const { return capacity > 0; }
  // InvalidArgument naming the option at fault.
  absl::Status Validate() const;
};

struct BmojoConfig {
  int vocab_size = 0;
  int num_layers = 0;
  int hidden_size = 0;        // d
  int intermediate_size = 0;  // SwiGLU width
  int num_heads = 0;          // H: query heads and SSM heads
  int num_kv_heads = 0;       // Hkv, divides H
  int head_dim = 0;           // D: also the SSM head size P and state size N
  float rms_norm_eps = 0.0f;
  double rope_theta = 0.0;
  bool tie_word_embeddings = false;
  int max_positions = 0;  // max_position_embeddings
  int bos_id = -1, eos_id = -1, pad_id = -1;
  int window_size = 0;  // bmojo_config.window_size as written
  int window = 0;       // W in use: window_size rounded up to even
  int conv_width = 4;   // K: mamba2_config.d_conv
  bool bc_norm = true;  // mamba2_config.use_qk_norm: B/C RMSNorms
  std::vector<BmojoLayerType> layers;
  EideticConfig eidetic;

  int group() const { return num_heads / num_kv_heads; }  // G
  int d_inner() const { return num_heads * head_dim; }
  int d_xb() const { return num_kv_heads * head_dim; }
  int conv_channels() const { return 2 * d_xb() + d_inner(); }  // x|B|C
  int in_proj_rows() const { return 2 * d_inner() + 2 * d_xb() + num_heads; }
  int num_bmojo_layers() const;
  int num_attention_layers() const;
};

// The effective window for a configured window_size: the value itself when
// even, value + 1 when odd (older configs store W − 1).
int EffectiveWindow(int window_size);

// Parses and checks a hybrid_qwen3 config.json. The conv width is checked
// against the conv1d tensors by the loader; the eidetic memory is a load
// option, not a config key.
absl::StatusOr<BmojoConfig> ParseBmojoConfig(const Config& config);

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_MODELS_BMOJO_CONFIG_H_
