// Structured Recurrent Mixer (SRM): an MLP-mixer whose token mixing is a set
// of per-head decayed running sums with per-position scalar weights. Each
// sequence keeps num_blocks × hidden_dim floats of state, whatever its length.
//
// Block: h += MLP(LN_c(h)); h += out_proj(concat_k mix_k(proj_k(LN_t(h)))).
// Heads 0..H/2-1 are column-repeat (S = p + a·S, y = w[t]·S + b[t]), heads
// H/2..H-1 row-repeat (R = w[t]·p + a·R, y = R + b[t]); a = clip(d)^(1/c).
#ifndef SLABSERVE_ENGINE_MODELS_SRM_H_
#define SLABSERVE_ENGINE_MODELS_SRM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/io/checkpoint.h"
#include "engine/models/model.h"
#include "engine/models/ragged_batch.h"
#include "engine/models/srm_config.h"
#include "engine/state/state_pool.h"
#include "kernels/cpu/matmul.h"

namespace slabserve {

// Parameters in the order the engine uses them; Linear weights are [out, in].
struct SrmBlockWeights {
  std::vector<float> channel_norm_weight, channel_norm_bias;  // [D]
  std::vector<float> mlp_in_weight, mlp_in_bias;              // [4D, D], [4D]
  std::vector<float> mlp_out_weight, mlp_out_bias;            // [D, 4D], [D]
  std::vector<float> token_norm_weight, token_norm_bias;      // [D]
  // The H per-head projections stacked: output channel k·e + i.
  std::vector<float> proj_weight, proj_bias;    // [D, D], [D]
  std::vector<float> out_weight, out_bias;      // [D, D], [D]
  std::vector<float> mixer_weight, mixer_bias;  // [H, N] each
  std::vector<float> decay_value;               // [H] raw (unclipped); empty
                                                // when config.decay is false
};

struct SrmWeights {
  std::vector<float> embedding;  // [V, D] input_layer.weight
  std::vector<SrmBlockWeights> blocks;
  std::vector<float> output;  // [V, D] output_layer.weight (no bias)
};

class SrmModel : public Model {
 public:
  // Checks every tensor size against `config`.
  static absl::StatusOr<std::unique_ptr<SrmModel>> Create(
      const SrmConfig& config, SrmWeights weights,
      const std::string& weights_dtype = "f32",
      cpu::WeightPrecision precision = cpu::WeightPrecision::kF32);
  // Seeded random weights of the given shape (benchmarks, tests): uniform
  // ±1/sqrt(fan_in) for Linear layers, decay values on both sides of the clip.
  static absl::StatusOr<std::unique_ptr<SrmModel>> CreateRandom(
      const SrmConfig& config, uint64_t seed,
      cpu::WeightPrecision precision = cpu::WeightPrecision::kF32);

  const ModelInfo& info() const override { return info_; }
  const SrmConfig& config() const { return config_; }
  // One slab per block of D floats (channel = head · head_dim + i).
  std::vector<StateSlabSpec> StateLayout() const override;
  absl::Status Forward(absl::Span<const SequenceChunk> batch, StatePool& pool,
                       float* logits) override;
  absl::StatusOr<std::vector<float>> RecurrentStateForEval(
      const StatePool& pool, int slot) const override;

  // Rows of a ragged batch processed together through every block. Bounds
  // the activations (rows × (3 + expansion_factor) · D floats) and keeps a
  // GEMM input of D = 1024 in the last-level cache; results do not depend on
  // it (every row is computed the same way in any tile).
  static constexpr int kDefaultTileRows = 512;
  int tile_rows() const { return tile_rows_; }
  void set_tile_rows(int rows) { tile_rows_ = rows > 0 ? rows : 1; }

 private:
  SrmModel(const SrmConfig& config, SrmWeights weights,
           const std::string& weights_dtype, cpu::WeightPrecision precision);

  // Activations of one tile, grown to the largest tile seen and reused.
  struct Scratch {
    std::vector<float> h, u, p, m;   // [rows, D] ×3, [rows, F]
    std::vector<int> segment_start;  // rows where a chunk's run begins
    // The next product's input rows, rounded in BF16 as they are written.
    cpu::Bf16Rows prepared;
  };
  // Runs rows [begin, end) of plan_ through every block, updating the slots'
  // state in place.
  void RunTile(int64_t begin, int64_t end, StatePool& pool,
               Scratch& scratch) const;
  // Block l's token mixer over the tile's projected rows p (from row
  // `begin` of plan_), in place: each chunk's run of rows in order through
  // its slot's state; each finished row is prepared for the out product.
  void MixTokens(int l, int64_t begin, StatePool& pool, Scratch& scratch) const;

  // A block's Linear weights, packed at load.
  struct PackedBlock {
    cpu::Projection mlp_in, mlp_out, proj, out;
  };

  SrmConfig config_;
  SrmWeights weights_;  // Linear weights moved into packed_ and output_
  std::vector<PackedBlock> packed_;
  cpu::Projection output_;
  std::vector<float> decay_;  // [L, H]: a = clip(d)^(1/c), computed at load
  ModelInfo info_;
  std::vector<StateSlabSpec> layout_;
  int tile_rows_ = kDefaultTileRows;
  // Forward's reused buffers: the model is not reentrant (one Forward at a
  // time, as the scheduler's step loop calls it).
  RaggedBatch plan_;
  Scratch scratch_;
};

// Loads an SRM from an opened checkpoint (upstream MLPMixer tensor names).
// Linear layers are packed in `precision`.
absl::StatusOr<std::unique_ptr<Model>> LoadSrm(
    Checkpoint& checkpoint,
    cpu::WeightPrecision precision = cpu::WeightPrecision::kF32);

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_MODELS_SRM_H_
