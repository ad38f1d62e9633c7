#include "engine/scheduler/step_planner.h"

#include <algorithm>
#include <utility>

#include "engine/scheduler/prefill_shares.h"
#include "engine/scheduler/prefix_cache.h"

namespace slabserve {

PlannedStep StepPlanner::Plan(
    const std::vector<std::unique_ptr<Request>>& running) const {
  PlannedStep step;
  PlanDecodes(running, step);
  PlanPrompts(running, step);
  return step;
}

void StepPlanner::Apply(const PlannedStep& step, absl::Time now) {
  for (Request* request : step.prompts_done) request->prompt_done = true;
  for (Request* request : step.prefilling) {
    if (!request->started) {
      request->started = true;
      request->prefill_start = now;
    }
  }
  if (step.decode_cursor.has_value()) decode_cursor_ = *step.decode_cursor;
}

void StepPlanner::PlanDecodes(
    const std::vector<std::unique_ptr<Request>>& running,
    PlannedStep& step) const {
  std::vector<std::pair<Request*, int>> ready;
  for (const std::unique_ptr<Request>& request : running) {
    if (!request->prompt_done || request->unfinished == 0) continue;
    if (request->swapped || request->stream->full()) continue;
    for (int i = 0; i < request->spec.n; ++i) {
      if (!request->completions[i].finished)
        ready.emplace_back(request.get(), i);
    }
  }
  const size_t max_batch = static_cast<size_t>(options_.max_batch);
  const size_t decodes = std::min(ready.size(), max_batch);
  const bool turns = ready.size() > max_batch;
  const size_t cursor = turns ? decode_cursor_ % ready.size() : 0;
  for (size_t k = 0; k < decodes; ++k) {
    const size_t pick = turns ? (cursor + k) % ready.size() : k;
    auto [request, index] = ready[pick];
    const Completion& completion = request->completions[index];
    step.plan.chunks.push_back(
        {completion.slot, {completion.next_token}, /*keep_logits=*/true});
    step.chunk_owners.push_back({request, index});
    step.plan.samples.push_back(completion.slot);
    step.sample_owners.push_back({request, index});
  }
  if (turns) step.decode_cursor = cursor + decodes;
  step.decode_tokens = static_cast<int>(decodes);
}

void StepPlanner::PlanPrompts(
    const std::vector<std::unique_ptr<Request>>& running,
    PlannedStep& step) const {
  // A floor keeps prompts moving when decodes alone exceed the budget.
  const int budget = options_.step_token_budget;
  const int prefill_budget =
      std::max(budget - step.decode_tokens, std::max(1, budget / 4));
  const size_t max_batch = static_cast<size_t>(options_.max_batch);
  std::vector<Request*> prefilling;
  std::vector<int> remaining;
  for (const std::unique_ptr<Request>& request : running) {
    if (request->prompt_done || request->unfinished == 0) continue;
    if (request->swapped) continue;
    if (request->prefilled == request->prompt_length()) {
      PlanFirstTokens(*request, step);  // restored whole from the cache
      continue;
    }
    prefilling.push_back(request.get());
    remaining.push_back(request->prompt_length() - request->prefilled);
  }
  const std::vector<int> shares = FairPrefillShares(remaining, prefill_budget);
  for (size_t i = 0; i < prefilling.size(); ++i) {
    Request* request = prefilling[i];
    if (shares[i] == 0 || step.plan.chunks.size() >= max_batch) continue;
    int length = shares[i];
    if (prefix_cache_ && length < remaining[i]) {
      // Stop on a block boundary so the state there can be cached.
      const int end = (request->prefilled + length) / kPrefixCacheBlockTokens *
                      kPrefixCacheBlockTokens;
      if (end > request->prefilled) length = end - request->prefilled;
    }
    const bool last = length == remaining[i];
    const int slot = request->completions[0].slot;
    const int end = request->prefilled + length;
    const auto begin = request->spec.prompt.begin();
    step.plan.chunks.push_back(
        {slot, std::vector<int32_t>(begin + request->prefilled, begin + end),
         last});
    step.chunk_owners.push_back({request, -1, length});
    if (prefix_cache_ && (last || end % kPrefixCacheBlockTokens == 0)) {
      step.plan.snapshots.push_back({slot, /*with_logits=*/last});
      step.snapshot_owners.push_back({request, end});
    }
    if (last) PlanFirstTokens(*request, step);
    step.prefilling.push_back(request);
    step.prefill_tokens += length;
  }
}

void StepPlanner::PlanFirstTokens(Request& request, PlannedStep& step) {
  step.prompts_done.push_back(&request);
  const int first_slot = request.completions[0].slot;
  for (int i = 1; i < request.spec.n; ++i) {
    step.plan.forks.push_back({first_slot, request.completions[i].slot});
  }
  for (int i = 0; i < request.spec.n; ++i) {
    step.plan.samples.push_back(request.completions[i].slot);
    step.sample_owners.push_back({&request, i});
  }
}

}  // namespace slabserve
