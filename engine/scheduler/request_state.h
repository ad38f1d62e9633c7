// The step loop's own record of a request and of a planned step; shared by
// the scheduler, the step planner and the block manager.
#ifndef SLABSERVE_ENGINE_SCHEDULER_REQUEST_STATE_H_
#define SLABSERVE_ENGINE_SCHEDULER_REQUEST_STATE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "engine/backend/backend.h"
#include "engine/scheduler/request_stream.h"
#include "engine/scheduler/scheduler.h"

namespace slabserve {

// One of a request's n completions; its sampler lives in the backend, with
// its slot (or in the request's swapped copy while it is preempted).
struct Completion {
  int slot = -1;  // reserved at admission, released when finished
  int generated = 0;
  int32_t next_token = 0;  // sampled, fed in the next step
  bool finished = false;
};

struct Request {
  GenerationRequest spec;
  std::shared_ptr<BufferedRequestStream> stream;
  absl::Time arrival;
  uint64_t admission = 0;  // order of admission; kept across preemption
  bool started = false;    // a prefill step ran (or the cache answered)
  absl::Time prefill_start;
  bool has_first_token = false;
  absl::Time first_token;
  int prefilled = 0;  // prompt tokens in the first completion's slot
  int cached = 0;     // of those, restored from the prefix cache
  bool prompt_done = false;
  // Set while preempted: the slots of `swapped_completions` (in order) in
  // host memory.
  std::unique_ptr<SwappedSlots> swapped;
  std::vector<int> swapped_completions;
  std::vector<Completion> completions;
  int unfinished = 0;
  int completion_tokens = 0;
  // This step's events, by completion index, until Flush sends them.
  std::vector<StreamEvent> pending;
  std::vector<bool> dirty;

  int prompt_length() const { return static_cast<int>(spec.prompt.size()); }
  size_t waiting_bytes = 0;  // counted against max_waiting_bytes while queued
};

// A step for the backend and, for each of its entries, whom it serves.
// Planning changes no request; StepPlanner::Apply marks what a step that
// will run starts.
struct PlannedStep {
  struct Owner {
    Request* request;
    int completion;  // chunks: -1 for a prompt chunk
    int length = 1;  // chunks: tokens fed
  };
  struct SnapshotOwner {
    Request* request;
    int prefix_length;  // prompt tokens in the snapshot
  };
  StepPlan plan;
  std::vector<Owner> chunk_owners;             // parallel to plan.chunks
  std::vector<SnapshotOwner> snapshot_owners;  // parallel to plan.snapshots
  std::vector<Owner> sample_owners;            // parallel to plan.samples
  std::vector<Request*> prompts_done;          // sample their first tokens
  std::vector<Request*> prefilling;            // feed a prompt chunk
  std::optional<size_t> decode_cursor;         // round robin's next start
  int decode_tokens = 0;
  int prefill_tokens = 0;
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_SCHEDULER_REQUEST_STATE_H_
