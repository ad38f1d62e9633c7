// A backend without model math, for testing the scheduler's own logic. A
// slot's state is the list of tokens it has been fed, and the token it
// samples is a fixed function of that history and the slot's seed
// (FakeBackend::NextToken), so a test knows every output in advance. It
// checks the seam's contract as it goes (every plan keeps PlanChecker's
// rules, or the process dies naming the rule; logits present where a sample
// needs them) and can fail chunks on demand.
//
// With `block_tokens` > 0 it also simulates per-token state: each fed token
// is written to a block of a real StatePool (blocks taken as a slot grows,
// shared by snapshots and forks, copied on write, copied out and back by
// swap), and every sample first checks that the slot's blocks still hold
// its history, so a lost, stale or reused block fails the sample.
#ifndef SLABSERVE_ENGINE_BACKEND_FAKE_BACKEND_H_
#define SLABSERVE_ENGINE_BACKEND_FAKE_BACKEND_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "engine/backend/backend.h"
#include "engine/backend/plan_check.h"
#include "engine/state/state_pool.h"

namespace slabserve {

struct FakeBackendOptions {
  int capacity = 16;
  size_t bytes_per_slot = 1024;  // reported state size of one sequence
  int vocab_size = 512;
  int eos_id = -1;
  int max_positions = 0;  // 0: unbounded
  int block_tokens = 0;   // tokens per simulated block; 0: no blocks
  int blocks = 0;         // blocks in the pool (with block_tokens)
};

class FakeBackend : public Backend {
 public:
  explicit FakeBackend(const FakeBackendOptions& options);

  // The token a slot with `seed` samples after being fed `history`; every
  // sample is in [4, vocab_size), so the low ids (BOS, EOS, ...) appear only
  // when a test puts them in.
  static int32_t NextToken(absl::Span<const int32_t> history, uint64_t seed,
                           int vocab_size);

  const ModelInfo& info() const override { return info_; }
  const char* name() const override { return "fake"; }
  int capacity() const override { return options_.capacity; }
  int used() const override;
  size_t bytes_per_slot() const override { return options_.bytes_per_slot; }
  int block_tokens() const override;
  int block_capacity() const override;
  int free_blocks() const override;
  size_t bytes_per_block() const override;
  int BlocksToGrow(int slot, int64_t tokens) const override;

  int Allocate(const SlotSampling& sampling) override;
  void Release(int slot) override;
  absl::Status Restore(int slot, const SlotSnapshot& snapshot) override;
  std::unique_ptr<SwappedSlots> SwapOut(const std::vector<int>& slots) override;
  absl::StatusOr<std::vector<int>> SwapIn(const SwappedSlots& copy) override;
  // Holds no memory per free slot: counts the calls, releases nothing.
  size_t ReleaseUnusedMemory() override;
  void Submit(StepPlan plan) override;
  StepResult Wait() override;

  // Every chunk that holds `token` fails with INTERNAL, as a model fails on
  // input it cannot run; the other chunks of the step go on.
  void FailChunksWith(int32_t token);
  // Every chunk of the next step fails with `error`.
  void FailNextStep(absl::Status error);
  // While held, Submit waits: requests submitted meanwhile queue up and are
  // admitted together once the held step goes on.
  void HoldSteps();
  void ReleaseSteps();

  // Counters for tests.
  int64_t steps() const;
  int64_t tokens_fed() const;
  int64_t samples() const;
  int64_t memory_releases() const;
  int64_t swaps_in() const;  // SwapIn calls (one per resumed request)
  // The seed of every slot swapped out, in order (tells which sequences
  // were preempted).
  std::vector<uint64_t> swapped_seeds() const;

 private:
  struct Slot {
    bool allocated = false;
    std::vector<int32_t> history;  // every token fed
    uint64_t seed = 0;
    int top_logprobs = -1;
    bool has_logits = false;  // may sample in the current step
  };

  void CheckAllocated(int slot, const char* what) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  StepResult RunStep(const StepPlan& plan) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the chunk's tokens into the slot's blocks (taken first).
  absl::Status StoreTokens(const PlannedChunk& chunk)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the slot's blocks hold its history.
  bool BlocksHoldHistory(int slot) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RunChunk(const PlannedChunk& chunk, const absl::Status& failure)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<SampledToken> Sample(int slot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const FakeBackendOptions options_;
  ModelInfo info_;
  mutable absl::Mutex mu_;
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  // Hands out the slots; holds the simulated blocks.
  std::unique_ptr<StatePool> pool_ ABSL_GUARDED_BY(mu_);
  PlanChecker plan_checker_ ABSL_GUARDED_BY(mu_);
  std::optional<int32_t> poison_ ABSL_GUARDED_BY(mu_);
  absl::Status next_step_error_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<StepResult> pending_ ABSL_GUARDED_BY(mu_);
  int64_t steps_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t tokens_fed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t samples_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t memory_releases_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t swaps_in_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<uint64_t> swapped_seeds_ ABSL_GUARDED_BY(mu_);
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_BACKEND_FAKE_BACKEND_H_
