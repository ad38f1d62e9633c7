#include "engine/backend/cpu_backend.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/parallel.h"

namespace slabserve {
namespace {

// A host snapshot: the pool's copy of the slot's rows, its blocks shared by
// reference and, for a whole prompt, the logits of its last token.
class CpuSnapshot : public SlotSnapshot {
 public:
  CpuSnapshot(StateSnapshot state, std::vector<float> logits)
      : state_(std::move(state)), logits_(std::move(logits)) {}
  size_t bytes() const override {
    return state_.bytes.size() + state_.token_bytes.size() +
           logits_.size() * sizeof(float);
  }
  bool has_logits() const override { return !logits_.empty(); }
  int blocks() const override {
    return static_cast<int>(state_.shared.blocks().size());
  }
  const StateSnapshot& state() const { return state_; }
  const std::vector<float>& logits() const { return logits_; }

 private:
  StateSnapshot state_;
  std::vector<float> logits_;
};

// Swapped-out slots: a full copy of their state (blocks included), their
// samplers and any logits a restored snapshot left for a slot's next step.
class CpuSwapped : public SwappedSlots {
 public:
  struct Slot {
    Sampler sampler;
    int top_logprobs;
    std::vector<float> logits;
  };
  CpuSwapped(SlotGroupCopy state, std::vector<Slot> slots)
      : state_(std::move(state)), slots_(std::move(slots)) {}
  int slots() const override { return static_cast<int>(slots_.size()); }
  size_t bytes() const override {
    size_t total = sizeof(*this) + state_.bytes.size() +
                   state_.token_bytes.size() +
                   state_.positions.size() * sizeof(int32_t);
    for (const auto& table : state_.tables) {
      total += table.size() * sizeof(int32_t);
    }
    for (const Slot& slot : slots_) {
      total += slot.sampler.bytes() + slot.logits.size() * sizeof(float);
    }
    return total;
  }
  int blocks() const override { return state_.blocks; }
  const SlotGroupCopy& state() const { return state_; }
  const std::vector<Slot>& slot_state() const { return slots_; }

 private:
  SlotGroupCopy state_;
  std::vector<Slot> slots_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(
    Model* model, size_t state_budget_bytes, int block_tokens) {
  if (model == nullptr) return absl::InvalidArgumentError("model is null");
  if (block_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("block_tokens must not be negative, got ", block_tokens));
  }
  TokenStateLayout tokens = model->TokenLayout();
  if (block_tokens > 0) tokens.block_tokens = block_tokens;
  absl::StatusOr<std::unique_ptr<StatePool>> pool = StatePool::CreateWithBudget(
      model->StateLayout(), state_budget_bytes, std::move(tokens));
  if (!pool.ok()) return pool.status();
  return CreateWithPool(model, *std::move(pool));
}

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::CreateWithPool(
    Model* model, std::unique_ptr<StatePool> pool) {
  if (model == nullptr) return absl::InvalidArgumentError("model is null");
  if (pool == nullptr) return absl::InvalidArgumentError("pool is null");
  return std::unique_ptr<CpuBackend>(new CpuBackend(model, std::move(pool)));
}

CpuBackend::CpuBackend(Model* model, std::unique_ptr<StatePool> pool)
    : model_(model),
      pool_(std::move(pool)),
      plan_checker_(pool_->capacity()),
      samplers_(pool_->capacity()),
      slot_logits_(pool_->capacity(), nullptr),
      slot_failed_(pool_->capacity(), false) {}

int CpuBackend::Allocate(const SlotSampling& sampling) {
  const int slot = pool_->Allocate();
  if (slot < 0) return slot;
  samplers_[slot] = std::make_unique<SlotSampler>(SlotSampler{
      Sampler(sampling.params, sampling.seed), sampling.top_logprobs});
  samplers_[slot]->sampler.ObservePrompt(sampling.prompt);
  return slot;
}

void CpuBackend::Release(int slot) {
  pool_->Release(slot);
  samplers_[slot].reset();
  restored_logits_.erase(slot);
}

absl::Status CpuBackend::Restore(int slot, const SlotSnapshot& snapshot) {
  const auto& host = static_cast<const CpuSnapshot&>(snapshot);
  if (absl::Status status = pool_->Restore(slot, host.state()); !status.ok()) {
    return status;
  }
  if (host.has_logits()) {
    restored_logits_[slot] = host.logits();
  } else {
    restored_logits_.erase(slot);
  }
  return absl::OkStatus();
}

std::unique_ptr<SwappedSlots> CpuBackend::SwapOut(
    const std::vector<int>& slots) {
  std::vector<CpuSwapped::Slot> samplers;
  for (int slot : slots) {
    const SlotSampler& sampler = *samplers_[slot];
    std::vector<float> logits;
    if (auto restored = restored_logits_.find(slot);
        restored != restored_logits_.end()) {
      logits = restored->second;
    }
    samplers.push_back(
        {sampler.sampler, sampler.top_logprobs, std::move(logits)});
  }
  auto copy = std::make_unique<CpuSwapped>(pool_->SaveGroup(slots),
                                           std::move(samplers));
  for (int slot : slots) Release(slot);
  return copy;
}

absl::StatusOr<std::vector<int>> CpuBackend::SwapIn(const SwappedSlots& copy) {
  const auto& host = static_cast<const CpuSwapped&>(copy);
  if (host.slots() > pool_->free_slots()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "swapping in needs ", host.slots(), " slots; ", pool_->free_slots(),
        " of ", pool_->capacity(), " are free"));
  }
  std::vector<int> slots;
  for (int i = 0; i < host.slots(); ++i) slots.push_back(pool_->Allocate());
  if (absl::Status status = pool_->RestoreGroup(slots, host.state());
      !status.ok()) {
    for (int slot : slots) pool_->Release(slot);
    return status;
  }
  for (int i = 0; i < host.slots(); ++i) {
    const CpuSwapped::Slot& saved = host.slot_state()[i];
    samplers_[slots[i]] = std::make_unique<SlotSampler>(
        SlotSampler{saved.sampler, saved.top_logprobs});
    if (!saved.logits.empty()) restored_logits_[slots[i]] = saved.logits;
  }
  return slots;
}

void CpuBackend::Submit(StepPlan plan) { pending_ = RunStep(plan); }

StepResult CpuBackend::Wait() {
  StepResult result = *std::move(pending_);
  pending_.reset();
  return result;
}

StepResult CpuBackend::RunStep(const StepPlan& plan) {
  if (absl::Status status = plan_checker_.Check(
          plan, [&](int slot) { return pool_->IsAllocated(slot); });
      !status.ok()) {
    restored_logits_.clear();  // they served this step only
    return FailedStep(plan, status);
  }
  for (auto& [slot, logits] : restored_logits_) {
    slot_logits_[slot] = logits.data();
  }
  StepResult result;
  result.chunks = RunForward(plan, ReserveBlocks(plan));
  RunSnapshots(plan, result);
  RunForks(plan);
  RunSamples(plan, result);
  // The step's logits are gone once it ends; so are restored ones.
  for (const PlannedChunk& chunk : plan.chunks) {
    slot_logits_[chunk.slot] = nullptr;
    slot_failed_[chunk.slot] = false;
  }
  for (const PlannedFork& fork : plan.forks) {
    slot_logits_[fork.to] = nullptr;
    slot_failed_[fork.to] = false;
  }
  for (auto& [slot, logits] : restored_logits_) slot_logits_[slot] = nullptr;
  restored_logits_.clear();
  fork_rows_.clear();
  return result;
}

std::vector<absl::Status> CpuBackend::ReserveBlocks(const StepPlan& plan) {
  std::vector<absl::Status> errors(plan.chunks.size());
  if (!pool_->has_token_state()) return errors;
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    const PlannedChunk& chunk = plan.chunks[i];
    errors[i] = pool_->ReserveTokens(
        chunk.slot, pool_->position(chunk.slot) +
                        static_cast<int64_t>(chunk.tokens.size()));
  }
  return errors;
}

std::vector<absl::Status> CpuBackend::RunForward(
    const StepPlan& plan, std::vector<absl::Status> errors) {
  const size_t vocab = info().vocab_size;
  std::vector<SequenceChunk> chunks;
  std::vector<size_t> planned;  // by batched chunk: its index in the plan
  std::vector<float*> rows(plan.chunks.size(), nullptr);  // null: no logits
  size_t kept = 0;
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    kept += errors[i].ok() && plan.chunks[i].keep_logits;
  }
  logits_.resize(kept * vocab);
  kept = 0;
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    const PlannedChunk& chunk = plan.chunks[i];
    if (!errors[i].ok()) continue;
    chunks.push_back({chunk.slot, chunk.tokens, chunk.keep_logits});
    planned.push_back(i);
    if (chunk.keep_logits) rows[i] = &logits_[kept++ * vocab];
  }
  if (!chunks.empty()) {
    absl::Status status = model_->Forward(chunks, *pool_, logits_.data());
    if (!status.ok()) {
      // A failed pass changed no state, so each chunk can be retried alone
      // to find the culprits; the others go on as if nothing happened.
      for (size_t k = 0; k < chunks.size(); ++k) {
        errors[planned[k]] =
            chunks.size() == 1
                ? status
                : model_->Forward(absl::MakeConstSpan(&chunks[k], 1), *pool_,
                                  rows[planned[k]]);
      }
    }
  }
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    const int slot = plan.chunks[i].slot;
    slot_failed_[slot] = !errors[i].ok();
    slot_logits_[slot] = errors[i].ok() ? rows[i] : nullptr;
  }
  return errors;
}

void CpuBackend::RunSnapshots(const StepPlan& plan, StepResult& result) {
  const size_t vocab = info().vocab_size;
  for (const PlannedSnapshot& wanted : plan.snapshots) {
    const float* logits = slot_logits_[wanted.slot];
    if (slot_failed_[wanted.slot] || (wanted.with_logits && !logits)) {
      result.snapshots.push_back(nullptr);
      continue;
    }
    std::vector<float> kept;
    if (wanted.with_logits) kept.assign(logits, logits + vocab);
    // Blocks by reference: caching a long prefix copies no per-token state.
    result.snapshots.push_back(std::make_shared<CpuSnapshot>(
        pool_->Share(wanted.slot), std::move(kept)));
  }
}

void CpuBackend::RunForks(const StepPlan& plan) {
  const size_t vocab = info().vocab_size;
  // Sampling penalizes its row in place, so every fork samples from a
  // private copy, taken before any sample runs.
  fork_rows_.reserve(plan.forks.size());
  for (const PlannedFork& fork : plan.forks) {
    slot_failed_[fork.to] = slot_failed_[fork.from];
    slot_logits_[fork.to] = nullptr;
    if (slot_failed_[fork.from]) continue;
    pool_->Copy(fork.from, fork.to);  // shares blocks: copies no KV
    if (const float* logits = slot_logits_[fork.from]; logits != nullptr) {
      fork_rows_.emplace_back(logits, logits + vocab);
      slot_logits_[fork.to] = fork_rows_.back().data();
    }
  }
}

void CpuBackend::RunSamples(const StepPlan& plan, StepResult& result) {
  const int vocab = info().vocab_size;
  result.samples.assign(plan.samples.size(),
                        absl::FailedPreconditionError("not sampled"));
  // Samplers are per slot, so slots sample in parallel.
  cpu::ParallelFor(plan.samples.size(), 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int slot = plan.samples[i];
      float* logits = slot_logits_[slot];
      if (slot_failed_[slot] || logits == nullptr) {
        result.samples[i] = absl::FailedPreconditionError(
            absl::StrCat("slot ", slot, " has no logits to sample from"));
        continue;
      }
      SlotSampler& sampler = *samplers_[slot];
      result.samples[i] = sampler.sampler.Sample(absl::MakeSpan(logits, vocab),
                                                 sampler.top_logprobs);
    }
  });
}

}  // namespace slabserve
