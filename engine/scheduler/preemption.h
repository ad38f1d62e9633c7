// Per-token state blocks on the scheduler's side: admission by blocks,
// making room for a step (evicting cached prefixes that pin blocks, then
// preempting running requests by swapping them to host memory), and resuming
// swapped requests. Policy:
//   - A request is admitted when its n slots are free and the free blocks
//     cover its prompt's blocks (less those a cached prefix shares), the
//     blocks already promised to prompts still prefilling, and a watermark
//     (1% of the pool, at least one block) kept for running sequences to
//     grow into. With nothing else running the watermark is waived, so a
//     request that fits the pool always starts.
//   - A preempted request's slots are swapped out together: the blocks its
//     forked completions share are copied once and shared again on resume.
//   - Before each step, a plan whose chunks need more blocks than are free
//     first evicts prefix-cache entries that pin blocks (least recently used
//     first), then preempts the running request of lowest priority, most
//     recently admitted first, swapping all its slots out, and is planned
//     again. A request running alone is never preempted: its chunk fails
//     with RESOURCE_EXHAUSTED (it needs more blocks than the pool holds).
//   - A victim whose copies would pass the host swap budget ends with
//     RESOURCE_EXHAUSTED instead.
//   - Swapped requests resume (best priority, earliest admitted first)
//     before any new admission, once their slots and blocks are free with
//     the watermark and one block more for every sequence that would then
//     run (so that the next step does not preempt them straight back).
#ifndef SLABSERVE_ENGINE_SCHEDULER_PREEMPTION_H_
#define SLABSERVE_ENGINE_SCHEDULER_PREEMPTION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "engine/backend/backend.h"
#include "engine/scheduler/prefix_cache.h"
#include "engine/scheduler/request_state.h"

namespace slabserve {

class BlockManager {
 public:
  // `cache` may be null (no prefix cache); both must outlive this.
  BlockManager(Backend* backend, PrefixCache* cache, size_t max_swap_bytes)
      : backend_(backend), cache_(cache), max_swap_bytes_(max_swap_bytes) {}

  // Whether the model keeps per-token state (else every count is zero).
  bool enabled() const { return backend_->block_capacity() > 0; }
  int watermark() const;

  // INVALID_ARGUMENT when the prompt needs more blocks than the pool holds.
  absl::Status CheckFits(const GenerationRequest& spec) const;
  // Whether `spec` may be admitted beside `running` (see the policy above);
  // evicts cached prefixes when that makes room.
  bool CanAdmit(const GenerationRequest& spec,
                const std::vector<std::unique_ptr<Request>>& running);

  // Free blocks the step's chunks take.
  int BlocksNeeded(const PlannedStep& step) const;
  // Evicts least recently used cached prefixes that pin blocks until
  // `wanted` blocks are free; whether they are.
  bool EvictUntilFree(int wanted);
  // The request to preempt, or null when fewer than two hold slots.
  Request* PickVictim(
      const std::vector<std::unique_ptr<Request>>& running) const;
  // Copies every slot of `request` to host memory and frees them. Past the
  // swap budget the copies are dropped and RESOURCE_EXHAUSTED says so (the
  // slots are freed either way).
  absl::Status SwapOut(Request& request);

  // The swapped request to resume first, or null.
  Request* NextToResume(
      const std::vector<std::unique_ptr<Request>>& running) const;
  // Puts `request` back into slots when they and its blocks are free
  // (evicting cached prefixes if that helps); whether it did. An error when
  // the backend refused a copy it had room for (the request must end).
  absl::StatusOr<bool> TryResume(
      Request& request, const std::vector<std::unique_ptr<Request>>& running);
  // Drops a request's copy (it ended, or is back in slots).
  void Drop(Request& request);

  int64_t preemptions() const { return preemptions_; }
  size_t swap_bytes() const { return swap_bytes_; }

 private:
  // Blocks that prompts still prefilling will take.
  int PromisedBlocks(
      const std::vector<std::unique_ptr<Request>>& running) const;

  Backend* const backend_;
  PrefixCache* const cache_;
  const size_t max_swap_bytes_;
  int64_t preemptions_ = 0;
  size_t swap_bytes_ = 0;  // held by swapped copies
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_SCHEDULER_PREEMPTION_H_
