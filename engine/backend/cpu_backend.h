// The host backend: a Model's Forward over a host StatePool, and one Sampler
// per slot. Runs each step synchronously inside Submit. Before the forward
// pass it reserves every chunk's per-token blocks (a chunk that cannot get
// them fails alone with RESOURCE_EXHAUSTED); snapshots for the prefix cache
// and forks share blocks by reference (copy on write); swapping out copies
// slab rows, block contents and the sampler to host memory.
#ifndef SLABSERVE_ENGINE_BACKEND_CPU_BACKEND_H_
#define SLABSERVE_ENGINE_BACKEND_CPU_BACKEND_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/backend/backend.h"
#include "engine/backend/plan_check.h"
#include "engine/models/model.h"
#include "engine/sampling/sampler.h"
#include "engine/state/state_pool.h"

namespace slabserve {

class CpuBackend : public Backend {
 public:
  // A pool of as many slots as `state_budget_bytes` holds for the model's
  // state layout. `block_tokens` > 0 overrides the model's tokens per block
  // of per-token state (ignored without it). `model` is not owned and must
  // outlive the backend.
  static absl::StatusOr<std::unique_ptr<CpuBackend>> Create(
      Model* model, size_t state_budget_bytes, int block_tokens = 0);
  // Over `pool`, made for the model's layouts (for exact slot and block
  // counts).
  static absl::StatusOr<std::unique_ptr<CpuBackend>> CreateWithPool(
      Model* model, std::unique_ptr<StatePool> pool);

  const ModelInfo& info() const override { return model_->info(); }
  const char* name() const override { return "cpu"; }
  int capacity() const override { return pool_->capacity(); }
  int used() const override { return pool_->used(); }
  size_t bytes_per_slot() const override { return pool_->bytes_per_slot(); }
  int block_tokens() const override {
    return pool_->has_token_state() ? pool_->block_tokens() : 0;
  }
  int block_capacity() const override { return pool_->block_capacity(); }
  int free_blocks() const override { return pool_->free_blocks(); }
  size_t bytes_per_block() const override { return pool_->bytes_per_block(); }
  int BlocksToGrow(int slot, int64_t tokens) const override {
    return pool_->BlocksToGrow(slot, pool_->position(slot) + tokens);
  }

  int Allocate(const SlotSampling& sampling) override;
  void Release(int slot) override;
  absl::Status Restore(int slot, const SlotSnapshot& snapshot) override;
  std::unique_ptr<SwappedSlots> SwapOut(const std::vector<int>& slots) override;
  absl::StatusOr<std::vector<int>> SwapIn(const SwappedSlots& copy) override;
  size_t ReleaseUnusedMemory() override { return pool_->ReleaseUnusedMemory(); }

  void Submit(StepPlan plan) override;
  StepResult Wait() override;

 private:
  struct SlotSampler {
    Sampler sampler;
    int top_logprobs;
  };

  CpuBackend(Model* model, std::unique_ptr<StatePool> pool);

  StepResult RunStep(const StepPlan& plan);
  // Takes the blocks each chunk grows into; RESOURCE_EXHAUSTED for a chunk
  // whose slot cannot get them (the others still can).
  std::vector<absl::Status> ReserveBlocks(const StepPlan& plan);
  // Runs the chunks as one batch into logits_; on failure retries each chunk
  // alone to find the culprits. Returns the status of every chunk.
  // Chunks that already failed (`errors`) are left out.
  std::vector<absl::Status> RunForward(const StepPlan& plan,
                                       std::vector<absl::Status> errors);
  void RunSnapshots(const StepPlan& plan, StepResult& result);
  void RunForks(const StepPlan& plan);
  void RunSamples(const StepPlan& plan, StepResult& result);

  Model* const model_;
  const std::unique_ptr<StatePool> pool_;
  PlanChecker plan_checker_;
  // By slot; held only while the slot is allocated: a sampler's generator
  // is kilobytes, and pools hold hundreds of thousands of slots.
  std::vector<std::unique_ptr<SlotSampler>> samplers_;
  // Logits restored with a snapshot, for the slot's next step only.
  absl::flat_hash_map<int, std::vector<float>> restored_logits_;

  // Step scratch, by slot: the row of logits this step gave it (null: none)
  // and whether its chunk failed.
  std::vector<float*> slot_logits_;
  std::vector<bool> slot_failed_;
  std::vector<float> logits_;                  // one row per kept chunk
  std::vector<std::vector<float>> fork_rows_;  // a private row per fork
  std::optional<StepResult> pending_;
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_BACKEND_CPU_BACKEND_H_
