// A small deterministic model for tests, with per-token state in blocks and
// no weights: each fed token writes a key (its embedding, rotated by its
// position, plus a running mix of the sequence) to the slot's blocks, and a
// chunk's last logits attend over every key the slot holds. So the logits
// depend on every past token through the blocks (and on the mix through the
// slab row): a stale, lost or reused block changes them. Rows are computed
// in a fixed order whatever the batch, so results are batch invariant.
#ifndef SLABSERVE_ENGINE_BACKEND_TOKEN_TEST_MODEL_H_
#define SLABSERVE_ENGINE_BACKEND_TOKEN_TEST_MODEL_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/models/model.h"
#include "engine/state/state_pool.h"

namespace slabserve {

class TokenTestModel : public Model {
 public:
  static constexpr int kWidth = 8;

  explicit TokenTestModel(int block_tokens = 4, int vocab_size = 512);

  const ModelInfo& info() const override { return info_; }
  std::vector<StateSlabSpec> StateLayout() const override;
  TokenStateLayout TokenLayout() const override;
  // Reserves each chunk's blocks first; an invalid batch, or one whose
  // blocks do not fit, changes no state (blocks already taken stay in the
  // tables, which is no change to what a slot holds).
  absl::Status Forward(absl::Span<const SequenceChunk> batch, StatePool& pool,
                       float* logits) override;

 private:
  absl::Status Check(absl::Span<const SequenceChunk> batch,
                     const StatePool& pool) const;
  // Feeds the chunk's tokens into the slot's mix and blocks.
  void Feed(const SequenceChunk& chunk, StatePool& pool) const;
  // Attention of the slot's mix over every key it holds.
  void Logits(int slot, const StatePool& pool, float* out) const;

  ModelInfo info_;
  int block_tokens_;
  std::vector<float> embeddings_;  // [vocab][kWidth], inputs and outputs
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_BACKEND_TOKEN_TEST_MODEL_H_
