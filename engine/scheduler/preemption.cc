#include "engine/scheduler/preemption.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace slabserve {
namespace {

// Whether a request other than `except` holds slots (runs, not swapped).
bool OthersRun(const std::vector<std::unique_ptr<Request>>& running,
               const Request* except) {
  for (const std::unique_ptr<Request>& request : running) {
    if (request.get() != except && request->unfinished > 0 &&
        !request->swapped) {
      return true;
    }
  }
  return false;
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
  const int wanted =
      backend_->BlocksFor(static_cast<int64_t>(spec.prompt.size())) +
      PromisedBlocks(running) + (OthersRun(running, nullptr) ? watermark() : 0);
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
  size_t bytes = 0;
  for (Completion& completion : request.completions) {
    if (completion.slot < 0) continue;
    completion.swapped = backend_->SwapOut(completion.slot);
    completion.slot = -1;
    bytes += completion.swapped->bytes();
  }
  ++preemptions_;
  if (swap_bytes_ + bytes > max_swap_bytes_) {
    for (Completion& completion : request.completions) {
      completion.swapped.reset();
    }
    return absl::ResourceExhaustedError(
        absl::StrCat("preempted for lack of state blocks, and its ", bytes,
                     " bytes of state do not fit the host swap budget (",
                     swap_bytes_, " of ", max_swap_bytes_, " bytes in use)"));
  }
  swap_bytes_ += bytes;
  request.swapped = true;
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
  int slots = 0;
  int blocks = 0;
  for (const Completion& completion : request.completions) {
    if (completion.swapped == nullptr) continue;
    ++slots;
    blocks += completion.swapped->blocks();
  }
  if (slots > backend_->free_slots()) return false;
  const int wanted = blocks + (OthersRun(running, &request) ? watermark() : 0);
  if (backend_->free_blocks() < wanted &&
      (cache_ == nullptr ||
       backend_->free_blocks() + cache_->pinned_blocks() < wanted ||
       !EvictUntilFree(wanted))) {
    return false;
  }
  for (Completion& completion : request.completions) {
    if (completion.swapped == nullptr) continue;
    absl::StatusOr<int> slot = backend_->SwapIn(*completion.swapped);
    if (!slot.ok()) return slot.status();
    completion.slot = *slot;
    Drop(completion);
  }
  request.swapped = false;
  return true;
}

void BlockManager::Drop(Completion& completion) {
  if (completion.swapped == nullptr) return;
  swap_bytes_ -= completion.swapped->bytes();
  completion.swapped.reset();
}

}  // namespace slabserve
