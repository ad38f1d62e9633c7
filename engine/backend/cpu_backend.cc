#include "engine/backend/cpu_backend.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/parallel.h"

namespace slabserve {
namespace {

// A host snapshot: the pool's copy of the slot and, for a whole prompt, the
// logits of its last token.
class CpuSnapshot : public SlotSnapshot {
 public:
  CpuSnapshot(StateSnapshot state, std::vector<float> logits)
      : state_(std::move(state)), logits_(std::move(logits)) {}
  size_t bytes() const override {
    return state_.bytes.size() + logits_.size() * sizeof(float);
  }
  bool has_logits() const override { return !logits_.empty(); }
  const StateSnapshot& state() const { return state_; }
  const std::vector<float>& logits() const { return logits_; }

 private:
  StateSnapshot state_;
  std::vector<float> logits_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(
    Model* model, size_t state_budget_bytes) {
  if (model == nullptr) return absl::InvalidArgumentError("model is null");
  absl::StatusOr<std::unique_ptr<StatePool>> pool = StatePool::CreateWithBudget(
      model->StateLayout(), state_budget_bytes, model->TokenLayout());
  if (!pool.ok()) return pool.status();
  return std::unique_ptr<CpuBackend>(new CpuBackend(model, *std::move(pool)));
}

CpuBackend::CpuBackend(Model* model, std::unique_ptr<StatePool> pool)
    : model_(model),
      pool_(std::move(pool)),
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

void CpuBackend::Submit(StepPlan plan) { pending_ = RunStep(plan); }

StepResult CpuBackend::Wait() {
  StepResult result = *std::move(pending_);
  pending_.reset();
  return result;
}

StepResult CpuBackend::RunStep(const StepPlan& plan) {
  for (auto& [slot, logits] : restored_logits_) {
    slot_logits_[slot] = logits.data();
  }
  StepResult result;
  result.chunks = RunForward(plan);
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

std::vector<absl::Status> CpuBackend::RunForward(const StepPlan& plan) {
  const size_t vocab = info().vocab_size;
  std::vector<SequenceChunk> chunks;
  std::vector<float*> rows;  // by chunk; null: no logits kept
  size_t kept = 0;
  for (const PlannedChunk& chunk : plan.chunks) kept += chunk.keep_logits;
  logits_.resize(kept * vocab);
  kept = 0;
  for (const PlannedChunk& chunk : plan.chunks) {
    chunks.push_back({chunk.slot, chunk.tokens, chunk.keep_logits});
    rows.push_back(chunk.keep_logits ? &logits_[kept++ * vocab] : nullptr);
  }
  std::vector<absl::Status> errors(chunks.size());
  if (!chunks.empty()) {
    absl::Status status = model_->Forward(chunks, *pool_, logits_.data());
    if (!status.ok()) {
      // A failed pass changed no state, so each chunk can be retried alone
      // to find the culprits; the others go on as if nothing happened.
      errors.assign(chunks.size(), status);
      if (chunks.size() > 1) {
        for (size_t i = 0; i < chunks.size(); ++i) {
          errors[i] = model_->Forward(absl::MakeConstSpan(&chunks[i], 1),
                                      *pool_, rows[i]);
        }
      }
    }
  }
  for (size_t i = 0; i < chunks.size(); ++i) {
    const int slot = chunks[i].slot;
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
    result.snapshots.push_back(std::make_shared<CpuSnapshot>(
        pool_->Save(wanted.slot), std::move(kept)));
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
    pool_->Copy(fork.from, fork.to);
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
