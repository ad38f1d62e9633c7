// SRM hyperparameters, read from a model_type "srm" config.json that uses the
// upstream MLPMixer constructor names; every field range-checked.
#ifndef SLABSERVE_ENGINE_MODELS_SRM_CONFIG_H_
#define SLABSERVE_ENGINE_MODELS_SRM_CONFIG_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/io/config.h"

namespace slabserve {

struct SrmConfig {
  int vocab_size = 0;        // V
  int hidden_dim = 0;        // D
  int num_blocks = 0;        // L
  int heads = 0;             // H, even, divides D
  int seq_len = 0;           // N: positions 0..N-1 have mixer weights
  int expansion_factor = 4;  // MLP width = expansion_factor · D
  int decay_constant = 1;    // c in a = clip(d)^(1/c)
  bool decay = true;         // false: a = 1, no decay_value tensors
  double decay_clip_low = 0.9;
  double decay_clip_high = 1.0;
  float layer_norm_eps = 1e-5f;
  int bos_id = -1;  // -1: none
  int eos_id = -1;
  int pad_id = -1;
  bool add_bos = false;

  int head_dim() const { return hidden_dim / heads; }
  // Checks the shape fields (positive, heads even and dividing hidden_dim,
  // decay_constant >= 1, a valid clip range).
  absl::Status Validate() const;
};

// Reads a model_type "srm" config.json (upstream MLPMixer constructor names).
// Variants other than mixed column/row heads with per-head projections are
// rejected with an error naming the file and key.
absl::StatusOr<SrmConfig> ParseSrmConfig(const Config& config);

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_MODELS_SRM_CONFIG_H_
