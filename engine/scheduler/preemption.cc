#include "engine/scheduler/preemption.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace slabserve {
namespace {

// Completions of requests other than `except` that hold slots.
int OthersRunning(const std::vector<std::unique_ptr<Request>>& running,
                  const Request* except) {
  int holding = 0;
  for (const std::unique_ptr<Request>& request : running) {
    if (request.get() == except || request->swapped) continue;
    for (const Completion& completion : request->completions) {
      holding += completion.slot >= 0;
    }
  }
  return holding;
}

}  // namespace

int BlockManager::watermark() const {
  return std::max(1, backend_->block_capacity() / 100);
}

absl::Status BlockManager::CheckFits(const GenerationRequest& spec) const {
  const int64_t tokens = static_cast<int64_t>(spec.prompt.size());
  const int blocks = backend_->BlocksFor(tokens);
  if (!enabled() || blocks <= backend_->block_capacity()) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "prompt of ", tokens, " tokens needs ", blocks, " state blocks of ",
      backend_->block_tokens(), " tokens; the state memory holds only ",
      backend_->block_capacity()));
}

bool BlockManager::CanAdmit(
    const GenerationRequest& spec,
    const std::vector<std::unique_ptr<Request>>& running) {
  if (!enabled()) return true;
  int prompt_blocks =
      backend_->BlocksFor(static_cast<int64_t>(spec.prompt.size()));
  if (cache_ != nullptr) {
    // A cached prefix's blocks are shared; the first write may copy its
    // last one.
    if (const CachedPrefix* hit = cache_->Lookup(spec.prompt)) {
      prompt_blocks = std::max(0, prompt_blocks - hit->snapshot->blocks() + 1);
    }
  }
  const int wanted = prompt_blocks + PromisedBlocks(running) +
                     (OthersRunning(running, nullptr) > 0 ? watermark() : 0);
  if (backend_->free_blocks() >= wanted) return true;
  // Evicting cached prefixes is worth it only when it can be enough.
  if (cache_ == nullptr ||
      backend_->free_blocks() + cache_->pinned_blocks() < wanted) {
    return false;
  }
  return EvictUntilFree(wanted);
}

int BlockManager::PromisedBlocks(
    const std::vector<std::unique_ptr<Request>>& running) const {
  int promised = 0;
  for (const std::unique_ptr<Request>& request : running) {
    if (request->prompt_done || request->swapped || request->unfinished == 0) {
      continue;
    }
    promised += std::max(0, backend_->BlocksFor(request->prompt_length()) -
                                backend_->BlocksFor(request->prefilled));
  }
  return promised;
}

int BlockManager::BlocksNeeded(const PlannedStep& step) const {
  if (!enabled()) return 0;
  int needed = 0;
  for (const PlannedChunk& chunk : step.plan.chunks) {
    needed += backend_->BlocksToGrow(chunk.slot,
                                     static_cast<int64_t>(chunk.tokens.size()));
  }
  return needed;
}

bool BlockManager::EvictUntilFree(int wanted) {
  while (backend_->free_blocks() < wanted) {
    if (cache_ == nullptr || !cache_->EvictOnePinningBlocks()) return false;
  }
  return true;
}

Request* BlockManager::PickVictim(
    const std::vector<std::unique_ptr<Request>>& running) const {
  Request* victim = nullptr;
  int holders = 0;
  for (const std::unique_ptr<Request>& request : running) {
    if (request->unfinished == 0 || request->swapped) continue;
    const bool holds = std::any_of(
        request->completions.begin(), request->completions.end(),
        [](const Completion& completion) { return completion.slot >= 0; });
    if (!holds) continue;
    ++holders;
    if (victim == nullptr || request->spec.priority < victim->spec.priority ||
        (request->spec.priority == victim->spec.priority &&
         request->admission > victim->admission)) {
      victim = request.get();
    }
  }
  return holders >= 2 ? victim : nullptr;
}

absl::Status BlockManager::SwapOut(Request& request) {
  std::vector<int> slots;
  for (int i = 0; i < request.spec.n; ++i) {
    Completion& completion = request.completions[i];
    if (completion.slot < 0) continue;
    slots.push_back(completion.slot);
    request.swapped_completions.push_back(i);
    completion.slot = -1;
  }
  std::unique_ptr<SwappedSlots> copy = backend_->SwapOut(slots);
  ++preemptions_;
  if (swap_bytes_ + copy->bytes() > max_swap_bytes_) {
    request.swapped_completions.clear();
    return absl::ResourceExhaustedError(absl::StrCat(
        "preempted for lack of state blocks, and its ", copy->bytes(),
        " bytes of state do not fit the host swap budget (", swap_bytes_,
        " of ", max_swap_bytes_, " bytes in use)"));
  }
  swap_bytes_ += copy->bytes();
  request.swapped = std::move(copy);
  return absl::OkStatus();
}

Request* BlockManager::NextToResume(
    const std::vector<std::unique_ptr<Request>>& running) const {
  Request* next = nullptr;
  for (const std::unique_ptr<Request>& request : running) {
    if (!request->swapped || request->unfinished == 0) continue;
    if (next == nullptr || request->spec.priority > next->spec.priority ||
        (request->spec.priority == next->spec.priority &&
         request->admission < next->admission)) {
      next = request.get();
    }
  }
  return next;
}

absl::StatusOr<bool> BlockManager::TryResume(
    Request& request, const std::vector<std::unique_ptr<Request>>& running) {
  const SwappedSlots& copy = *request.swapped;
  if (copy.slots() > backend_->free_slots()) return false;
  // Room for every running sequence's next block too, so that the next
  // step does not preempt it straight back.
  const int others = OthersRunning(running, &request);
  const int wanted =
      copy.blocks() + (others > 0 ? watermark() + others + copy.slots() : 0);
  if (backend_->free_blocks() < wanted &&
      (cache_ == nullptr ||
       backend_->free_blocks() + cache_->pinned_blocks() < wanted ||
       !EvictUntilFree(wanted))) {
    return false;
  }
  absl::StatusOr<std::vector<int>> slots = backend_->SwapIn(copy);
  if (!slots.ok()) return slots.status();
  for (size_t i = 0; i < slots->size(); ++i) {
    request.completions[request.swapped_completions[i]].slot = (*slots)[i];
  }
  Drop(request);
  return true;
}

void BlockManager::Drop(Request& request) {
  if (request.swapped == nullptr) return;
  swap_bytes_ -= request.swapped->bytes();
  request.swapped.reset();
  request.swapped_completions.clear();
}

}  // namespace slabserve
