#include "engine/backend/fake_backend.h"

#include <utility>

#include "absl/base/internal/raw_logging.h"
#include "absl/strings/str_cat.h"

namespace slabserve {
namespace {

class FakeSnapshot : public SlotSnapshot {
 public:
  FakeSnapshot(std::vector<int32_t> history, bool logits, size_t bytes)
      : history_(std::move(history)), logits_(logits), bytes_(bytes) {}
  size_t bytes() const override { return bytes_; }
  bool has_logits() const override { return logits_; }
  const std::vector<int32_t>& history() const { return history_; }

 private:
  std::vector<int32_t> history_;
  bool logits_;
  size_t bytes_;
};

}  // namespace

FakeBackend::FakeBackend(const FakeBackendOptions& options)
    : options_(options), slots_(options.capacity) {
  info_.architecture = "fake";
  info_.vocab_size = options.vocab_size;
  info_.eos_id = options.eos_id;
  info_.max_positions = options.max_positions;
}

int32_t FakeBackend::NextToken(absl::Span<const int32_t> history, uint64_t seed,
                               int vocab_size) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ seed;
  for (int32_t token : history) {
    h ^= static_cast<uint32_t>(token);
    h *= 0x100000001b3ull;
    h ^= h >> 31;
  }
  return 4 + static_cast<int32_t>(h % static_cast<uint64_t>(vocab_size - 4));
}

int FakeBackend::used() const {
  absl::MutexLock lock(&mu_);
  int used = 0;
  for (const Slot& slot : slots_) used += slot.allocated;
  return used;
}

int FakeBackend::Allocate(const SlotSampling& sampling) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].allocated) continue;
    slots_[i] = Slot{true, {}, sampling.seed, sampling.top_logprobs, false};
    return static_cast<int>(i);
  }
  return -1;
}

void FakeBackend::Release(int slot) {
  absl::MutexLock lock(&mu_);
  if (slot < 0 || slot >= options_.capacity || !slots_[slot].allocated) {
    ABSL_RAW_LOG(FATAL, "Release of slot %d, which is not allocated", slot);
  }
  slots_[slot] = Slot();
}

absl::Status FakeBackend::Restore(int slot, const SlotSnapshot& snapshot) {
  absl::MutexLock lock(&mu_);
  if (slot < 0 || slot >= options_.capacity || !slots_[slot].allocated) {
    ABSL_RAW_LOG(FATAL, "Restore into slot %d, which is not allocated", slot);
  }
  const auto& fake = static_cast<const FakeSnapshot&>(snapshot);
  slots_[slot].history = fake.history();
  slots_[slot].has_logits = fake.has_logits();
  return absl::OkStatus();
}

void FakeBackend::Submit(StepPlan plan) {
  absl::MutexLock lock(&mu_);
  if (pending_.has_value()) ABSL_RAW_LOG(FATAL, "Submit before Wait");
  pending_ = RunStep(plan);
}

StepResult FakeBackend::Wait() {
  absl::MutexLock lock(&mu_);
  if (!pending_.has_value()) ABSL_RAW_LOG(FATAL, "Wait without Submit");
  StepResult result = *std::move(pending_);
  pending_.reset();
  return result;
}

void FakeBackend::FailChunksWith(int32_t token) {
  absl::MutexLock lock(&mu_);
  poison_ = token;
}

void FakeBackend::FailNextStep(absl::Status error) {
  absl::MutexLock lock(&mu_);
  next_step_error_ = std::move(error);
}

int64_t FakeBackend::steps() const {
  absl::MutexLock lock(&mu_);
  return steps_;
}

int64_t FakeBackend::tokens_fed() const {
  absl::MutexLock lock(&mu_);
  return tokens_fed_;
}

int64_t FakeBackend::samples() const {
  absl::MutexLock lock(&mu_);
  return samples_;
}

int64_t FakeBackend::memory_releases() const {
  absl::MutexLock lock(&mu_);
  return memory_releases_;
}

size_t FakeBackend::ReleaseUnusedMemory() {
  absl::MutexLock lock(&mu_);
  ++memory_releases_;
  return 0;
}

StepResult FakeBackend::RunStep(const StepPlan& plan) {
  ++steps_;
  const absl::Status failure = std::exchange(next_step_error_, {});
  std::vector<bool> failed(slots_.size(), false);
  StepResult result;
  for (const PlannedChunk& chunk : plan.chunks) {
    result.chunks.push_back(RunChunk(chunk, failure));
    failed[chunk.slot] = !result.chunks.back().ok();
  }
  for (const PlannedSnapshot& wanted : plan.snapshots) {
    const Slot& slot = slots_[wanted.slot];
    const bool usable =
        !failed[wanted.slot] && (!wanted.with_logits || slot.has_logits);
    result.snapshots.push_back(
        usable ? std::make_shared<FakeSnapshot>(
                     slot.history, wanted.with_logits, options_.bytes_per_slot)
               : nullptr);
  }
  for (const PlannedFork& fork : plan.forks) {
    failed[fork.to] = failed[fork.from];
    if (failed[fork.from]) continue;
    slots_[fork.to].history = slots_[fork.from].history;
    slots_[fork.to].has_logits = slots_[fork.from].has_logits;
  }
  for (int slot : plan.samples) {
    result.samples.push_back(failed[slot]
                                 ? absl::AbortedError("the slot's chunk failed")
                                 : Sample(slot));
  }
  for (Slot& slot : slots_) slot.has_logits = false;
  return result;
}

absl::Status FakeBackend::RunChunk(const PlannedChunk& chunk,
                                   const absl::Status& failure) {
  if (chunk.slot < 0 || chunk.slot >= options_.capacity ||
      !slots_[chunk.slot].allocated) {
    ABSL_RAW_LOG(FATAL, "chunk for slot %d, which is not allocated",
                 chunk.slot);
  }
  if (!failure.ok()) return failure;
  for (int32_t token : chunk.tokens) {
    if (poison_.has_value() && token == *poison_) {
      return absl::InternalError(absl::StrCat("poisoned token ", token));
    }
  }
  Slot& slot = slots_[chunk.slot];
  if (options_.max_positions > 0 &&
      slot.history.size() + chunk.tokens.size() >
          static_cast<size_t>(options_.max_positions)) {
    return absl::InvalidArgumentError(absl::StrCat("slot ", chunk.slot,
                                                   " would pass max_positions ",
                                                   options_.max_positions));
  }
  slot.history.insert(slot.history.end(), chunk.tokens.begin(),
                      chunk.tokens.end());
  slot.has_logits = chunk.keep_logits;
  tokens_fed_ += static_cast<int64_t>(chunk.tokens.size());
  return absl::OkStatus();
}

absl::StatusOr<SampledToken> FakeBackend::Sample(int slot_index) {
  Slot& slot = slots_[slot_index];
  if (!slot.allocated || !slot.has_logits) {
    return absl::FailedPreconditionError(
        absl::StrCat("slot ", slot_index, " has no logits to sample from"));
  }
  ++samples_;
  SampledToken token;
  token.id = NextToken(slot.history, slot.seed, options_.vocab_size);
  if (slot.top_logprobs >= 0) token.logprob = -1.0f;
  for (int k = 0; k < slot.top_logprobs; ++k) {
    token.top.push_back({(token.id + k) % options_.vocab_size, -1.0f - k});
  }
  return token;
}

}  // namespace slabserve
