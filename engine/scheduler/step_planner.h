// Plans one step over the running requests: every decoding sequence whose
// reader keeps up feeds its last token (up to max_batch, round robin beyond)
// and prompt chunks fill the rest of the token budget, fairly shared.
// Planning changes no request, so a plan that cannot get its per-token
// blocks can be dropped and made again after a preemption.
#ifndef SLABSERVE_ENGINE_SCHEDULER_STEP_PLANNER_H_
#define SLABSERVE_ENGINE_SCHEDULER_STEP_PLANNER_H_

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "engine/scheduler/request_state.h"
#include "engine/scheduler/scheduler.h"

namespace slabserve {

class StepPlanner {
 public:
  // `prefix_cache`: whether prompts are cached (chunks then stop on cache
  // boundaries and snapshot there).
  StepPlanner(const SchedulerOptions& options, bool prefix_cache)
      : options_(options), prefix_cache_(prefix_cache) {}

  // The next step over `running` (in admission order); swapped-out and
  // finished requests sit out.
  PlannedStep Plan(const std::vector<std::unique_ptr<Request>>& running) const;
  // Marks what `step` starts, once it is sure to run: prompts whose first
  // tokens it samples, prefills it starts at `now`, the round robin turn.
  void Apply(const PlannedStep& step, absl::Time now);

 private:
  void PlanDecodes(const std::vector<std::unique_ptr<Request>>& running,
                   PlannedStep& step) const;
  void PlanPrompts(const std::vector<std::unique_ptr<Request>>& running,
                   PlannedStep& step) const;
  // The prompt is in the first slot: fork the other completions from it and
  // sample every completion's first token.
  static void PlanFirstTokens(Request& request, PlannedStep& step);

  const SchedulerOptions& options_;
  const bool prefix_cache_;
  size_t decode_cursor_ = 0;  // round robin when more than max_batch wait
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_SCHEDULER_STEP_PLANNER_H_
