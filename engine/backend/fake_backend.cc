#include "engine/backend/fake_backend.h"

#include <string>
#include <utility>

#include "absl/base/internal/raw_logging.h"
#include "absl/strings/str_cat.h"

namespace slabserve {
namespace {

class FakeSnapshot : public SlotSnapshot {
 public:
  FakeSnapshot(std::vector<int32_t> history, bool logits, size_t bytes,
               StateSnapshot state)
      : history_(std::move(history)),
        logits_(logits),
        bytes_(bytes),
        state_(std::move(state)) {}
  size_t bytes() const override { return bytes_; }
  bool has_logits() const override { return logits_; }
  int blocks() const override {
    return static_cast<int>(state_.shared.blocks().size());
  }
  const std::vector<int32_t>& history() const { return history_; }
  const StateSnapshot& state() const { return state_; }

 private:
  std::vector<int32_t> history_;
  bool logits_;
  size_t bytes_;
  StateSnapshot state_;  // blocks shared
};

// Swapped-out slots: their bookkeeping and a full copy of their blocks.
template <typename Slot>
class FakeSwapped : public SwappedSlots {
 public:
  FakeSwapped(std::vector<Slot> slots, SlotGroupCopy state, size_t bytes)
      : slots_(std::move(slots)),
        state_(std::move(state)),
        bytes_(bytes + state_.token_bytes.size()) {}
  int slots() const override { return static_cast<int>(slots_.size()); }
  size_t bytes() const override { return bytes_; }
  int blocks() const override { return state_.blocks; }
  const std::vector<Slot>& slot_state() const { return slots_; }
  const SlotGroupCopy& state() const { return state_; }

 private:
  std::vector<Slot> slots_;
  SlotGroupCopy state_;
  size_t bytes_;
};

std::unique_ptr<StatePool> MakePool(const FakeBackendOptions& options) {
  TokenStateLayout tokens;
  if (options.block_tokens > 0) {
    tokens = {{{"fake.tokens", sizeof(int32_t)}}, options.block_tokens};
  }
  absl::StatusOr<std::unique_ptr<StatePool>> pool =
      StatePool::CreateWithCapacity({{"fake.slot", sizeof(int32_t)}},
                                    options.capacity, tokens, options.blocks);
  if (!pool.ok()) {
    ABSL_RAW_LOG(FATAL, "fake backend: %s",
                 std::string(pool.status().message()).c_str());
  }
  return *std::move(pool);
}

}  // namespace

FakeBackend::FakeBackend(const FakeBackendOptions& options)
    : options_(options),
      slots_(options.capacity),
      pool_(MakePool(options)),
      plan_checker_(options.capacity) {
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
  return pool_->used();
}

int FakeBackend::block_tokens() const {
  return options_.block_tokens > 0 ? options_.block_tokens : 0;
}

int FakeBackend::block_capacity() const {
  absl::MutexLock lock(&mu_);
  return pool_->block_capacity();
}

int FakeBackend::free_blocks() const {
  absl::MutexLock lock(&mu_);
  return pool_->free_blocks();
}

size_t FakeBackend::bytes_per_block() const {
  absl::MutexLock lock(&mu_);
  return pool_->bytes_per_block();
}

int FakeBackend::BlocksToGrow(int slot, int64_t tokens) const {
  absl::MutexLock lock(&mu_);
  CheckAllocated(slot, "BlocksToGrow for");
  return pool_->BlocksToGrow(slot, pool_->position(slot) + tokens);
}

void FakeBackend::CheckAllocated(int slot, const char* what) const {
  if (slot < 0 || slot >= options_.capacity || !slots_[slot].allocated) {
    ABSL_RAW_LOG(FATAL, "%s slot %d, which is not allocated", what, slot);
  }
}

int FakeBackend::Allocate(const SlotSampling& sampling) {
  absl::MutexLock lock(&mu_);
  const int slot = pool_->Allocate();
  if (slot < 0) return -1;
  slots_[slot] = Slot{true, {}, sampling.seed, sampling.top_logprobs, false};
  return slot;
}

void FakeBackend::Release(int slot) {
  absl::MutexLock lock(&mu_);
  CheckAllocated(slot, "Release of");
  pool_->Release(slot);
  slots_[slot] = Slot();
}

absl::Status FakeBackend::Restore(int slot, const SlotSnapshot& snapshot) {
  absl::MutexLock lock(&mu_);
  CheckAllocated(slot, "Restore into");
  const auto& fake = static_cast<const FakeSnapshot&>(snapshot);
  if (absl::Status status = pool_->Restore(slot, fake.state()); !status.ok()) {
    return status;
  }
  slots_[slot].history = fake.history();
  slots_[slot].has_logits = fake.has_logits();
  return absl::OkStatus();
}

std::unique_ptr<SwappedSlots> FakeBackend::SwapOut(
    const std::vector<int>& slots) {
  absl::MutexLock lock(&mu_);
  std::vector<Slot> saved;
  for (int slot : slots) {
    CheckAllocated(slot, "SwapOut of");
    saved.push_back(slots_[slot]);
    swapped_seeds_.push_back(slots_[slot].seed);
  }
  auto copy = std::make_unique<FakeSwapped<Slot>>(
      std::move(saved), pool_->SaveGroup(slots),
      options_.bytes_per_slot * slots.size());
  for (int slot : slots) {
    pool_->Release(slot);
    slots_[slot] = Slot();
  }
  return copy;
}

absl::StatusOr<std::vector<int>> FakeBackend::SwapIn(const SwappedSlots& copy) {
  absl::MutexLock lock(&mu_);
  const auto& fake = static_cast<const FakeSwapped<Slot>&>(copy);
  if (fake.slots() > pool_->free_slots()) {
    return absl::ResourceExhaustedError("too few free slots");
  }
  std::vector<int> slots;
  for (int i = 0; i < fake.slots(); ++i) slots.push_back(pool_->Allocate());
  if (absl::Status status = pool_->RestoreGroup(slots, fake.state());
      !status.ok()) {
    for (int slot : slots) pool_->Release(slot);
    return status;
  }
  for (int i = 0; i < fake.slots(); ++i) {
    slots_[slots[i]] = fake.slot_state()[i];
  }
  ++swaps_in_;
  return slots;
}

void FakeBackend::Submit(StepPlan plan) {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](bool* held) { return !*held; }, &held_));
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

void FakeBackend::HoldSteps() {
  absl::MutexLock lock(&mu_);
  held_ = true;
}

void FakeBackend::ReleaseSteps() {
  absl::MutexLock lock(&mu_);
  held_ = false;
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

std::vector<uint64_t> FakeBackend::swapped_seeds() const {
  absl::MutexLock lock(&mu_);
  return swapped_seeds_;
}

int64_t FakeBackend::swaps_in() const {
  absl::MutexLock lock(&mu_);
  return swaps_in_;
}

size_t FakeBackend::ReleaseUnusedMemory() {
  absl::MutexLock lock(&mu_);
  ++memory_releases_;
  return 0;
}

StepResult FakeBackend::RunStep(const StepPlan& plan) {
  // A real backend fails such a step; in tests it is the scheduler's bug.
  if (absl::Status status = plan_checker_.Check(
          plan, [&](int slot) { return slots_[slot].allocated; });
      !status.ok()) {
    ABSL_RAW_LOG(FATAL, "fake backend: %s",
                 std::string(status.message()).c_str());
  }
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
    result.snapshots.push_back(usable ? std::make_shared<FakeSnapshot>(
                                            slot.history, wanted.with_logits,
                                            options_.bytes_per_slot,
                                            pool_->Share(wanted.slot))
                                      : nullptr);
  }
  for (const PlannedFork& fork : plan.forks) {
    failed[fork.to] = failed[fork.from];
    if (failed[fork.from]) continue;
    pool_->Copy(fork.from, fork.to);
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
  if (absl::Status status = StoreTokens(chunk); !status.ok()) return status;
  slot.history.insert(slot.history.end(), chunk.tokens.begin(),
                      chunk.tokens.end());
  slot.has_logits = chunk.keep_logits;
  tokens_fed_ += static_cast<int64_t>(chunk.tokens.size());
  return absl::OkStatus();
}

absl::Status FakeBackend::StoreTokens(const PlannedChunk& chunk) {
  const int64_t begin = pool_->position(chunk.slot);
  const int64_t end = begin + static_cast<int64_t>(chunk.tokens.size());
  if (absl::Status status = pool_->ReserveTokens(chunk.slot, end);
      !status.ok()) {
    return status;
  }
  if (pool_->has_token_state()) {
    for (int64_t p = begin; p < end; ++p) {
      *pool_->TokenRow<int32_t>(0, chunk.slot, p) = chunk.tokens[p - begin];
    }
  }
  pool_->set_position(chunk.slot, static_cast<int32_t>(end));
  return absl::OkStatus();
}

bool FakeBackend::BlocksHoldHistory(int slot) const {
  const std::vector<int32_t>& history = slots_[slot].history;
  if (pool_->position(slot) != static_cast<int32_t>(history.size())) {
    return false;
  }
  if (!pool_->has_token_state()) return true;
  for (size_t p = 0; p < history.size(); ++p) {
    if (*pool_->TokenRow<int32_t>(0, slot, p) != history[p]) return false;
  }
  return true;
}

absl::StatusOr<SampledToken> FakeBackend::Sample(int slot_index) {
  Slot& slot = slots_[slot_index];
  if (!slot.has_logits) {  // the plan check saw to `allocated`
    return absl::FailedPreconditionError(
        absl::StrCat("slot ", slot_index, " has no logits to sample from"));
  }
  if (!BlocksHoldHistory(slot_index)) {
    return absl::InternalError(absl::StrCat(
        "slot ", slot_index, "'s state blocks do not hold its history"));
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
