#include "engine/backend/plan_check.h"

#include "absl/strings/str_cat.h"

namespace slabserve {
namespace {

absl::Status NotAllocated(const char* what, size_t index, int slot) {
  return absl::InternalError(absl::StrCat("step plan: ", what, " ", index,
                                          " names slot ", slot,
                                          ", which is not allocated"));
}

}  // namespace

PlanChecker::PlanChecker(int capacity)
    : chunk_marks_(capacity, 0), sample_marks_(capacity, 0) {}

bool PlanChecker::SeenBefore(std::vector<uint64_t>& marks, int slot) const {
  const bool seen = marks[slot] == check_;
  marks[slot] = check_;
  return seen;
}

absl::Status PlanChecker::Check(const StepPlan& plan,
                                absl::FunctionRef<bool(int)> is_allocated) {
  const int capacity = static_cast<int>(chunk_marks_.size());
  auto allocated = [&](int slot) {
    return slot >= 0 && slot < capacity && is_allocated(slot);
  };
  ++check_;
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    const PlannedChunk& chunk = plan.chunks[i];
    if (!allocated(chunk.slot)) return NotAllocated("chunk", i, chunk.slot);
    if (chunk.tokens.empty()) {
      return absl::InternalError(absl::StrCat("step plan: chunk ", i, " (slot ",
                                              chunk.slot, ") has no tokens"));
    }
    if (SeenBefore(chunk_marks_, chunk.slot)) {
      return absl::InternalError(absl::StrCat("step plan: slot ", chunk.slot,
                                              " has more than one chunk"));
    }
  }
  for (size_t i = 0; i < plan.snapshots.size(); ++i) {
    const int slot = plan.snapshots[i].slot;
    if (!allocated(slot)) return NotAllocated("snapshot", i, slot);
  }
  for (size_t i = 0; i < plan.forks.size(); ++i) {
    const PlannedFork& fork = plan.forks[i];
    if (!allocated(fork.from)) return NotAllocated("fork", i, fork.from);
    if (!allocated(fork.to)) return NotAllocated("fork", i, fork.to);
    if (fork.from == fork.to) {
      return absl::InternalError(absl::StrCat(
          "step plan: fork ", i, " copies slot ", fork.to, " onto itself"));
    }
  }
  for (size_t i = 0; i < plan.samples.size(); ++i) {
    const int slot = plan.samples[i];
    if (!allocated(slot)) return NotAllocated("sample", i, slot);
    if (SeenBefore(sample_marks_, slot)) {
      return absl::InternalError(
          absl::StrCat("step plan: slot ", slot, " samples more than once"));
    }
  }
  return absl::OkStatus();
}

StepResult FailedStep(const StepPlan& plan, const absl::Status& status) {
  StepResult result;
  result.chunks.assign(plan.chunks.size(), status);
  result.snapshots.assign(plan.snapshots.size(), nullptr);
  result.samples.assign(plan.samples.size(), status);
  return result;
}

}  // namespace slabserve
