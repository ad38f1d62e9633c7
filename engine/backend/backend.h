// The seam between the scheduler and the machine that runs a model. The
// scheduler decides what runs (it plans a step: chunks of tokens per slot,
// which slots to snapshot, fork and sample); a backend owns everything the
// step touches: the model weights, the state slabs (one slot per sequence),
// the logits and the per-slot samplers. It returns sampled token ids, never
// logits, so the scheduler works the same whether the state lives in host or
// device memory.
//
// Overlap: Submit hands over a whole step and Wait collects its result, so a
// device backend can run step N while the scheduler plans step N+1 (admits
// requests, restores cached prefixes into new slots, plans prefill chunks).
// One step is in flight at a time. Between Submit and Wait the scheduler may
// Allocate and Restore slots that the in-flight plan does not name, but must
// not Release, Restore, swap or Submit anything else. A synchronous backend
// (the CPU one) runs the step inside Submit.
//
// Per-token state (a full-attention layer's keys and values) lives in
// fixed-size blocks of one shared pool. The scheduler admits and plans by
// the block counts below; a sequence that cannot get blocks can be swapped
// out to host memory (SwapOut) and back into a slot later (SwapIn), bitwise.
#ifndef SLABSERVE_ENGINE_BACKEND_BACKEND_H_
#define SLABSERVE_ENGINE_BACKEND_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/models/model.h"
#include "engine/sampling/sampler.h"

namespace slabserve {

// How a slot's sequence samples; fixed for the life of the slot.
struct SlotSampling {
  SamplingParams params;
  uint64_t seed = 0;
  int top_logprobs = -1;  // -1: none; 0: chosen token only; k: plus top k
  // Counted by the repetition penalty; the backend keeps this history (and
  // the generated tokens) per slot, so plans never carry it.
  absl::Span<const int32_t> prompt;
};

// An opaque copy of one slot taken during a step: the state after the
// step's forward pass and, when asked for, the logits of the slot's last
// token there. Restoring one with logits lets a slot sample its next token
// with no forward pass (the prefix cache's whole-prompt hit). Only the
// backend that made it can restore it.
class SlotSnapshot {
 public:
  virtual ~SlotSnapshot() = default;
  // Memory it holds itself, for cache accounting. Blocks it shares with
  // slots or other snapshots are not counted here: they stay in the block
  // pool, counted by blocks_in_use(), and go back when the last holder lets
  // go of them.
  virtual size_t bytes() const = 0;
  virtual bool has_logits() const = 0;
  // Per-token state blocks it holds references to (dropping the snapshot
  // frees those no slot or other snapshot holds).
  virtual int blocks() const { return 0; }
};

// An opaque host copy of swapped-out slots (one sequence's completions):
// their state (slab rows, block contents and positions, the blocks they
// share copied once) and their samplers (RNG, penalty counts, generated
// tokens). Only the backend that made it can swap it in.
class SwappedSlots {
 public:
  virtual ~SwappedSlots() = default;
  virtual int slots() const = 0;
  // Host memory it holds.
  virtual size_t bytes() const = 0;
  // Blocks SwapIn takes.
  virtual int blocks() const = 0;
};

// Consecutive tokens of one sequence to feed this step.
struct PlannedChunk {
  int slot = -1;
  // Not empty. Owned, so the scheduler's bookkeeping may change while the
  // step runs.
  std::vector<int32_t> tokens;
  // Keep the last token's logits for the step's snapshots, forks and
  // samples of this slot.
  bool keep_logits = false;
};

struct PlannedSnapshot {
  int slot = -1;
  bool with_logits = false;  // the slot's logits of this step
};

// `to` becomes a copy of `from` (state, position and this step's logits).
struct PlannedFork {
  int from = -1;
  int to = -1;
};

// One step. The backend runs, in this order: every chunk as one batch, then
// the snapshots, then the forks, then the samples (each slot with its own
// sampler, from its logits of this step or from a restored snapshot's).
struct StepPlan {
  std::vector<PlannedChunk> chunks;  // distinct slots
  std::vector<PlannedSnapshot> snapshots;
  std::vector<PlannedFork> forks;
  std::vector<int> samples;  // slots

  bool empty() const { return chunks.empty() && samples.empty(); }
};

// Parallel to the plan's lists. A chunk that fails changes no state; its
// slot's snapshots, forks and samples fail with it, and every other chunk
// runs as if it had been alone. A chunk whose slot cannot get the blocks it
// grows into fails with RESOURCE_EXHAUSTED before the forward pass.
struct StepResult {
  std::vector<absl::Status> chunks;
  std::vector<std::shared_ptr<const SlotSnapshot>> snapshots;  // null: failed
  std::vector<absl::StatusOr<SampledToken>> samples;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const ModelInfo& info() const = 0;
  // "cpu", "fake", ...: for logs.
  virtual const char* name() const = 0;

  // Slots. Capacity comes from the state memory budget at creation.
  virtual int capacity() const = 0;
  virtual int used() const = 0;
  int free_slots() const { return capacity() - used(); }
  // State bytes one sequence costs (every slab row plus the position).
  virtual size_t bytes_per_slot() const = 0;

  // Per-token state blocks; all zero for a model without per-token state.
  virtual int block_tokens() const { return 0; }  // tokens per block
  virtual int block_capacity() const { return 0; }
  virtual int free_blocks() const { return 0; }
  virtual size_t bytes_per_block() const { return 0; }
  int blocks_in_use() const { return block_capacity() - free_blocks(); }
  // Blocks that hold `tokens` tokens.
  int BlocksFor(int64_t tokens) const {
    const int per_block = block_tokens();
    if (per_block <= 0 || tokens <= 0) return 0;
    return static_cast<int>((tokens + per_block - 1) / per_block);
  }
  // Free blocks an allocated slot takes to be fed `tokens` more tokens:
  // new ones past its table and copies of shared ones it would write into.
  virtual int BlocksToGrow(int slot, int64_t tokens) const { return 0; }

  // State memory held by slots and blocks, and all there is.
  size_t bytes_in_use() const {
    return bytes_per_slot() * used() + bytes_per_block() * blocks_in_use();
  }
  size_t bytes_capacity() const {
    return bytes_per_slot() * capacity() + bytes_per_block() * block_capacity();
  }

  // A zeroed slot at position 0 that samples with `sampling`, or -1 when
  // every slot is in use.
  virtual int Allocate(const SlotSampling& sampling) = 0;
  // Frees an allocated slot with its sampler.
  virtual void Release(int slot) = 0;
  // Makes an allocated slot the snapshot's copy (the sampler stays); a
  // snapshot's logits serve the slot's next step only. RESOURCE_EXHAUSTED,
  // with the slot unchanged, when its per-token state does not fit.
  virtual absl::Status Restore(int slot, const SlotSnapshot& snapshot) = 0;

  // Copies allocated slots' state and samplers to host memory (blocks they
  // share once), then releases the slots and their blocks.
  virtual std::unique_ptr<SwappedSlots> SwapOut(
      const std::vector<int>& slots) = 0;
  // New slots, in the order they were swapped out, holding exactly what
  // `copy` held (blocks shared as they were; the next step continues as if
  // they had never left); RESOURCE_EXHAUSTED, with nothing taken, when too
  // few slots or blocks are free. `copy` may be dropped after.
  virtual absl::StatusOr<std::vector<int>> SwapIn(const SwappedSlots& copy) = 0;

  // Returns the memory that only free slots hold to the operating system
  // (called when the server has gone idle); the bytes released.
  virtual size_t ReleaseUnusedMemory() = 0;

  // Starts a step; at most one is in flight.
  virtual void Submit(StepPlan plan) = 0;
  // Waits for the submitted step and returns its result.
  virtual StepResult Wait() = 0;
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_BACKEND_BACKEND_H_
