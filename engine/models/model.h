// The interface every architecture implements. A model declares the state it
// keeps per sequence (as slabs, one row per slot) and steps a ragged batch of
// sequences, each continuing from its slot's state. It knows nothing of
// requests, queues or gRPC.
#ifndef SLABSERVE_ENGINE_MODELS_MODEL_H_
#define SLABSERVE_ENGINE_MODELS_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/state/state_pool.h"
#include "kernels/cpu/projection.h"

namespace slabserve {

struct ModelInfo {
  std::string architecture;  // "griffin", "hawk", "srm", "bmojo"
  int vocab_size = 0;
  int num_layers = 0;
  int hidden_size = 0;
  int attention_window = 0;  // 0: no attention layers
  // Most tokens a sequence can be fed (positions 0..max_positions-1); the
  // logits of the last fed position still yield one more emitted token.
  // 0: unbounded.
  int max_positions = 0;
  int bos_id = -1;  // -1: none
  int eos_id = -1;
  int pad_id = -1;
  bool add_bos = false;       // prepend BOS to text prompts
  std::string weights_dtype;  // as stored: "f32", "bf16", "f16", or "mixed"
};

// Consecutive tokens of one sequence, stepped together with other sequences.
// A decode step is a chunk of one token; a prefill is a chunk of many.
struct SequenceChunk {
  int slot = -1;
  absl::Span<const int32_t> tokens;  // not empty
  bool want_logits = true;           // logits of the chunk's last token
};

// The arithmetic one forward pass costs, from the model's shapes, for
// throughput benchmarks (GFLOP/s) and for timing the matmul kernel alone on
// the same products.
struct ComputeProfile {
  struct MatMul {
    int n = 0;  // outputs
    int k = 0;  // inputs
  };
  std::vector<MatMul> per_token;  // packed products every token passes
  MatMul lm_head;                 // per row that wants logits
  // Of the per-token products and the LM head.
  cpu::WeightPrecision precision = cpu::WeightPrecision::kF32;
  int64_t other_flops_per_token = 0;  // products outside the packed kernel
  // Attention: per layer, query and key, 4·width FLOPs (score and value).
  int attention_layers = 0;
  int attention_width = 0;  // query heads × head_dim
  int attention_window = 0;
};

class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelInfo& info() const = 0;

  // The per-sequence state, one slab per entry; constant size per slot.
  virtual std::vector<StateSlabSpec> StateLayout() const = 0;
  // State that grows with the sequence (full-attention keys and values), in
  // blocks of the pool's block table; none by default.
  virtual TokenStateLayout TokenLayout() const { return {}; }

  // Runs every chunk of `batch` as one batch. Each chunk continues its slot
  // from pool.position(slot) (0 = a fresh sequence) and advances it by its
  // length. For each chunk with want_logits, in batch order, writes
  // vocab_size logits to `logits`. Slots must be distinct and allocated.
  // Errors (unknown token id, position past max_positions, ...) leave every
  // slot's state unchanged. Not reentrant: models reuse their activation
  // buffers, so one Forward at a time (the scheduler's step loop).
  virtual absl::Status Forward(absl::Span<const SequenceChunk> batch,
                               StatePool& pool, float* logits) = 0;

  // The recurrent state of `slot` as [layers][width] floats, for comparing
  // against reference states in evaluation tools. UNIMPLEMENTED by default.
  virtual absl::StatusOr<std::vector<float>> RecurrentStateForEval(
      const StatePool& pool, int slot) const;

  // The products of one forward pass (empty by default).
  virtual ComputeProfile Profile() const { return {}; }

  // One chunk of a prompt for one sequence; logits of its last token.
  absl::Status Prefill(int slot, absl::Span<const int32_t> tokens,
                       StatePool& pool, float* logits);

  // One token for each of `slots`; logits row i belongs to slots[i].
  absl::Status Decode(absl::Span<const int> slots,
                      absl::Span<const int32_t> tokens, StatePool& pool,
                      float* logits);
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_MODELS_MODEL_H_
