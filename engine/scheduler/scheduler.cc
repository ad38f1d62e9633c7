#include "engine/scheduler/scheduler.h"

#include <algorithm>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "engine/scheduler/preemption.h"
#include "engine/scheduler/prefix_cache.h"
#include "engine/scheduler/request_state.h"
#include "engine/scheduler/request_stream.h"
#include "engine/scheduler/request_validation.h"
#include "engine/scheduler/step_planner.h"

namespace slabserve {

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kDeadline:
      return "deadline";
  }
  return "unknown";
}

namespace {

// How long the step loop waits idle before it returns free slots' memory.
constexpr absl::Duration kIdleBeforeRelease = absl::Seconds(2);

}  // namespace

size_t WaitingBytes(const GenerationRequest& request) {
  return sizeof(Request) + sizeof(BufferedRequestStream) +
         request.n * (sizeof(Completion) + sizeof(StreamEvent)) +
         sizeof(int32_t) *
             (request.prompt.size() + request.stop_token_ids.size()) +
         request.id.size();
}

namespace {

class SchedulerImpl : public Scheduler {
 public:
  SchedulerImpl(std::unique_ptr<Backend> backend, SchedulerOptions options)
      : backend_(std::move(backend)),
        info_(backend_->info()),
        options_(std::move(options)),
        prefix_cache_(
            options_.prefix_cache_bytes > 0
                ? std::make_unique<PrefixCache>(options_.prefix_cache_bytes)
                : nullptr),
        wakeup_(std::make_shared<Wakeup>()),
        planner_(options_, prefix_cache_ != nullptr),
        blocks_(backend_.get(), prefix_cache_.get(), options_.max_swap_bytes) {
    stats_.slot_capacity = backend_->capacity();
    stats_.state_bytes_per_sequence = backend_->bytes_per_slot();
    stats_.block_tokens = backend_->block_tokens();
    stats_.block_capacity = backend_->block_capacity();
    stats_.state_bytes_per_block = backend_->bytes_per_block();
    stats_.state_bytes_capacity = backend_->bytes_capacity();
    thread_ = std::thread([this] { Loop(); });
  }

  ~SchedulerImpl() override {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    wakeup_->Notify();
    thread_.join();
  }

  absl::StatusOr<std::shared_ptr<RequestStream>> Submit(
      GenerationRequest spec) override {
    if (absl::Status status =
            ValidateGenerationRequest(spec, info_, backend_->capacity());
        !status.ok()) {
      return status;
    }
    if (absl::Status status = blocks_.CheckFits(spec); !status.ok()) {
      return status;
    }
    auto request = std::make_unique<Request>();
    request->arrival = absl::Now();
    request->stream = std::make_shared<BufferedRequestStream>(
        wakeup_, options_.stream_buffer_tokens, options_.stream_interval);
    request->completions.resize(spec.n);
    request->unfinished = spec.n;
    request->waiting_bytes = WaitingBytes(spec);
    request->pending.resize(spec.n);
    request->dirty.assign(spec.n, false);
    request->spec = std::move(spec);
    std::shared_ptr<RequestStream> stream = request->stream;
    {
      absl::MutexLock lock(&mu_);
      if (draining_ || stopping_) {
        return absl::UnavailableError("server is draining");
      }
      if (waiting_bytes_ + request->waiting_bytes >
          options_.max_waiting_bytes) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "waiting queue is full: ", waiting_.size(), " requests hold ",
            waiting_bytes_, " bytes, this one needs ", request->waiting_bytes,
            " more, max_waiting_bytes is ", options_.max_waiting_bytes));
      }
      waiting_bytes_ += request->waiting_bytes;
      const std::pair<int, uint64_t> key(-request->spec.priority,
                                         next_order_++);
      waiting_.emplace(key, std::move(request));
      ++in_flight_;
      PublishQueueStats();
    }
    wakeup_->Notify();
    return stream;
  }

  void Drain(absl::Duration grace) override {
    auto idle = [this]()
                    ABSL_SHARED_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
    absl::MutexLock lock(&mu_);
    draining_ = true;
    if (mu_.AwaitWithTimeout(absl::Condition(&idle), grace)) return;
    cancel_all_ = true;
    wakeup_->Notify();
    mu_.Await(absl::Condition(&idle));
  }

  SchedulerStats stats() const override {
    absl::MutexLock lock(&mu_);
    return stats_;
  }

  const ModelInfo& model_info() const override { return info_; }

 private:
  // Takes a request out of the waiting queue.
  std::unique_ptr<Request> Dequeue(
      std::map<std::pair<int, uint64_t>, std::unique_ptr<Request>>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::unique_ptr<Request> request = std::move(it->second);
    waiting_.erase(it);
    waiting_bytes_ -= request->waiting_bytes;
    PublishQueueStats();
    return request;
  }
  void PublishQueueStats() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    stats_.waiting = static_cast<int>(waiting_.size());
    stats_.waiting_bytes = waiting_bytes_;
  }

  // Step loop thread only, from here on.
  void Loop();
  // Ends queued and running requests that were cancelled or ran past their
  // deadline (all of them when `everything`).
  void Reap(absl::Time now, bool everything);
  // Moves queued requests into free slots, best priority first, then FCFS.
  // Returns whether any was admitted.
  bool Admit(absl::Time now);
  // Plans a step, runs it on the backend and commits what it sampled.
  // Returns whether it ran one.
  bool Step(absl::Time now);
  // Puts swapped requests back into slots, best first, while they fit;
  // returns whether every one is back.
  bool Resume();
  // A plan whose blocks fit (see BlockManager): cached prefixes are evicted
  // and requests preempted until it does or nothing more can be freed.
  PlannedStep PlanWithBlocks();
  // Ends requests whose chunks failed, caches snapshots, emits tokens.
  void Commit(const PlannedStep& step, StepResult result, absl::Time now);
  void PublishStep(const PlannedStep& step, absl::Duration step_time);
  void Emit(Request& request, int index, SampledToken token, absl::Time now);
  void FinishCompletion(Request& request, int index, FinishReason reason,
                        absl::Status error = absl::OkStatus());
  void FinishRequest(Request& request, FinishReason reason,
                     absl::Status error = absl::OkStatus());
  // Publishes stats, sends this step's events, and drops ended requests.
  void Flush(absl::Time now);

  const std::unique_ptr<Backend> backend_;
  const ModelInfo info_;
  const SchedulerOptions options_;
  // Before blocks_, which holds it; after backend_, whose blocks it pins.
  const std::unique_ptr<PrefixCache> prefix_cache_;  // null when off
  const std::shared_ptr<Wakeup> wakeup_;
  StepPlanner planner_;
  BlockManager blocks_;
  std::vector<std::unique_ptr<Request>> running_;  // in admission order
  std::vector<std::unique_ptr<Request>> ended_;    // left the queue ended
  uint64_t next_admission_ = 0;
  absl::Time last_busy_ = absl::InfinitePast();
  bool memory_released_ = true;  // nothing to release before any work

  mutable absl::Mutex mu_;
  // Key: (-priority, arrival number), so begin() is the next to admit.
  std::map<std::pair<int, uint64_t>, std::unique_ptr<Request>> waiting_
      ABSL_GUARDED_BY(mu_);
  size_t waiting_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // queued or running requests
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool cancel_all_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  SchedulerStats stats_ ABSL_GUARDED_BY(mu_);

  std::thread thread_;
};

void SchedulerImpl::Loop() {
  while (true) {
    bool stopping, cancel_all;
    int in_flight;
    {
      absl::MutexLock lock(&mu_);
      stopping = stopping_;
      cancel_all = cancel_all_;
      in_flight = in_flight_;
    }
    const absl::Time now = absl::Now();
    Reap(now, stopping || cancel_all);
    bool progress = false;
    if (!stopping) {
      progress = Admit(now);
      progress |= Step(now);
    }
    Flush(absl::Now());
    if (stopping) return;
    // Idle a while after work: the pages that a burst's slots touched go
    // back to the operating system, once.
    if (in_flight > 0 || progress) {
      last_busy_ = now;
      memory_released_ = false;
    } else if (!memory_released_ && now - last_busy_ > kIdleBeforeRelease) {
      backend_->ReleaseUnusedMemory();
      memory_released_ = true;
    }
    // Nothing could run: every request is paused by its reader, or none is
    // left. Readers, submits and cancels wake us; deadlines need a poll.
    if (!progress) {
      wakeup_->WaitFor(in_flight > 0 ? absl::Milliseconds(5)
                                     : absl::Milliseconds(100));
    }
  }
}

void SchedulerImpl::Reap(absl::Time now, bool everything) {
  auto reason_to_end = [&](const Request& request) {
    if (everything || request.stream->cancelled()) {
      return FinishReason::kCancelled;
    }
    if (now >= request.spec.deadline) return FinishReason::kDeadline;
    return FinishReason::kNone;
  };
  {
    absl::MutexLock lock(&mu_);
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      const FinishReason reason = reason_to_end(*it->second);
      if (reason == FinishReason::kNone) {
        ++it;
        continue;
      }
      FinishRequest(*it->second, reason);
      ended_.push_back(Dequeue(it++));
    }
  }
  for (const std::unique_ptr<Request>& request : running_) {
    if (request->unfinished == 0) continue;
    const FinishReason reason = reason_to_end(*request);
    if (reason != FinishReason::kNone) FinishRequest(*request, reason);
  }
}

bool SchedulerImpl::Resume() {
  while (Request* request = blocks_.NextToResume(running_)) {
    absl::StatusOr<bool> resumed = blocks_.TryResume(*request, running_);
    if (!resumed.ok()) {
      FinishRequest(*request, FinishReason::kNone, resumed.status());
    } else if (!*resumed) {
      return false;
    }
  }
  return true;
}

bool SchedulerImpl::Admit(absl::Time now) {
  // Preempted requests come back before anything new is admitted.
  if (!Resume()) return false;
  bool admitted = false;
  while (true) {
    std::unique_ptr<Request> request;
    {
      absl::MutexLock lock(&mu_);
      // Strict order: a request needing more slots (or blocks) than are
      // free waits, and so does everything behind it (no starvation of
      // large n or long prompts).
      if (waiting_.empty() ||
          waiting_.begin()->second->spec.n > backend_->free_slots() ||
          !blocks_.CanAdmit(waiting_.begin()->second->spec, running_)) {
        break;
      }
      request = Dequeue(waiting_.begin());
    }
    admitted = true;
    request->admission = next_admission_++;
    const GenerationRequest& spec = request->spec;
    for (int i = 0; i < spec.n; ++i) {
      request->completions[i].slot =
          backend_->Allocate({spec.sampling, spec.sampling.seed + i,
                              spec.top_logprobs, spec.prompt});
    }
    if (prefix_cache_ != nullptr) {
      const CachedPrefix* hit = prefix_cache_->Lookup(spec.prompt);
      // A whole-prompt hit restores its logits too: the next step samples
      // the first tokens without a forward pass. A hit whose per-token
      // state does not fit now is a miss.
      if (hit != nullptr &&
          backend_->Restore(request->completions[0].slot, *hit->snapshot)
              .ok()) {
        request->prefilled = request->cached =
            static_cast<int>(hit->tokens.size());
        if (request->prefilled == request->prompt_length()) {
          request->started = true;
          request->prefill_start = now;
        }
      }
    }
    running_.push_back(std::move(request));
  }
  return admitted;
}

PlannedStep SchedulerImpl::PlanWithBlocks() {
  PlannedStep step = planner_.Plan(running_);
  while (blocks_.enabled()) {
    if (blocks_.EvictUntilFree(blocks_.BlocksNeeded(step))) break;
    Request* victim = blocks_.PickVictim(running_);
    // Alone, a request that outgrew the pool fails its chunk in the backend.
    if (victim == nullptr) break;
    if (absl::Status status = blocks_.SwapOut(*victim); !status.ok()) {
      FinishRequest(*victim, FinishReason::kNone, std::move(status));
    } else {
      victim->stream->Release();
    }
    step = planner_.Plan(running_);
  }
  return step;
}

bool SchedulerImpl::Step(absl::Time now) {
  PlannedStep step = PlanWithBlocks();
  if (step.plan.empty()) return false;
  planner_.Apply(step, now);
  const absl::Time start = absl::Now();
  backend_->Submit(std::move(step.plan));
  StepResult result = backend_->Wait();
  const absl::Time sampled_at = absl::Now();
  Commit(step, std::move(result), sampled_at);
  PublishStep(step, absl::Now() - start);
  return true;
}

void SchedulerImpl::Commit(const PlannedStep& step, StepResult result,
                           absl::Time now) {
  for (size_t i = 0; i < result.chunks.size(); ++i) {
    const PlannedStep::Owner& owner = step.chunk_owners[i];
    Request& request = *owner.request;
    if (request.unfinished == 0) continue;
    if (!result.chunks[i].ok()) {
      FinishRequest(request, FinishReason::kNone, std::move(result.chunks[i]));
    } else if (owner.completion < 0) {
      request.prefilled += owner.length;
    }
  }
  for (size_t i = 0; i < result.snapshots.size(); ++i) {
    const PlannedStep::SnapshotOwner& owner = step.snapshot_owners[i];
    if (result.snapshots[i] == nullptr || owner.request->unfinished == 0) {
      continue;
    }
    prefix_cache_->Insert(absl::MakeConstSpan(owner.request->spec.prompt)
                              .subspan(0, owner.prefix_length),
                          std::move(result.snapshots[i]));
  }
  for (size_t i = 0; i < result.samples.size(); ++i) {
    const PlannedStep::Owner& owner = step.sample_owners[i];
    Request& request = *owner.request;
    if (request.unfinished == 0 ||
        request.completions[owner.completion].finished) {
      continue;
    }
    if (!result.samples[i].ok()) {
      FinishRequest(request, FinishReason::kNone, result.samples[i].status());
      continue;
    }
    Emit(request, owner.completion, *std::move(result.samples[i]), now);
  }
}

void SchedulerImpl::PublishStep(const PlannedStep& step,
                                absl::Duration step_time) {
  StepMetrics metrics;
  metrics.batch_size = static_cast<int>(step.chunk_owners.size());
  metrics.prefill_tokens = step.prefill_tokens;
  metrics.decode_tokens = step.decode_tokens;
  metrics.step_time = step_time;
  metrics.slots_in_use = backend_->used();
  {
    absl::MutexLock lock(&mu_);
    ++stats_.steps;
    stats_.last_batch_size = metrics.batch_size;
    stats_.last_step_time = metrics.step_time;
    metrics.waiting = static_cast<int>(waiting_.size());
  }
  metrics.running = static_cast<int>(
      std::count_if(running_.begin(), running_.end(),
                    [](const auto& request) { return !request->swapped; }));
  if (options_.on_step) options_.on_step(metrics);
}

void SchedulerImpl::Emit(Request& request, int index, SampledToken token,
                         absl::Time now) {
  Completion& completion = request.completions[index];
  const int32_t id = token.id;
  ++completion.generated;
  ++request.completion_tokens;
  completion.next_token = id;
  if (!request.has_first_token) {
    request.has_first_token = true;
    request.first_token = now;
  }
  StreamEvent& event = request.pending[index];
  event.index = index;
  event.tokens.push_back(std::move(token));
  request.dirty[index] = true;

  const std::vector<int32_t>& stops = request.spec.stop_token_ids;
  FinishReason reason = FinishReason::kNone;
  if (std::find(stops.begin(), stops.end(), id) != stops.end()) {
    reason = FinishReason::kStop;
  } else if (!request.spec.ignore_eos && info_.eos_id >= 0 &&
             id == info_.eos_id) {
    reason = FinishReason::kEos;
  } else if (completion.generated >= request.spec.max_new_tokens) {
    reason = FinishReason::kLength;
  } else if (info_.max_positions > 0 &&
             request.prompt_length() + completion.generated - 1 >=
                 info_.max_positions) {
    // The token was sampled from the last position the model can feed (the
    // slot has consumed the prompt and every generated token but this one).
    reason = FinishReason::kLength;
  }
  if (reason != FinishReason::kNone) FinishCompletion(request, index, reason);
}

void SchedulerImpl::FinishCompletion(Request& request, int index,
                                     FinishReason reason, absl::Status error) {
  Completion& completion = request.completions[index];
  if (completion.finished) return;
  completion.finished = true;
  if (completion.slot >= 0) backend_->Release(completion.slot);
  completion.slot = -1;
  StreamEvent& event = request.pending[index];
  event.index = index;
  event.finish = reason;
  event.error = std::move(error);
  request.dirty[index] = true;
  if (--request.unfinished == 0) blocks_.Drop(request);
}

void SchedulerImpl::FinishRequest(Request& request, FinishReason reason,
                                  absl::Status error) {
  for (int i = 0; i < request.spec.n; ++i) {
    FinishCompletion(request, i, reason, error);
  }
}

void SchedulerImpl::Flush(absl::Time now) {
  for (auto& request : running_) {
    if (request->unfinished == 0) ended_.push_back(std::move(request));
  }
  running_.erase(std::remove(running_.begin(), running_.end(), nullptr),
                 running_.end());
  // Stats first: a reader who sees a request's last event also sees its
  // slots returned.
  {
    absl::MutexLock lock(&mu_);
    stats_.slots_in_use = backend_->used();
    stats_.blocks_in_use = backend_->blocks_in_use();
    stats_.state_bytes_in_use = backend_->bytes_in_use();
    stats_.swapped = static_cast<int>(std::count_if(
        running_.begin(), running_.end(),
        [](const auto& request) { return request->swapped != nullptr; }));
    stats_.running = static_cast<int>(running_.size()) - stats_.swapped;
    stats_.swap_bytes = blocks_.swap_bytes();
    stats_.preemptions = blocks_.preemptions();
    PublishQueueStats();
  }
  auto send = [&](Request& request, bool last) {
    std::vector<StreamEvent> events;
    for (int i = 0; i < request.spec.n; ++i) {
      if (!request.dirty[i]) continue;
      events.push_back(std::move(request.pending[i]));
      request.pending[i] = StreamEvent();
      request.dirty[i] = false;
    }
    if (last && !events.empty()) {
      RequestUsage& usage = events.back().usage;
      usage.prompt_tokens = request.prompt_length();
      usage.completion_tokens = request.completion_tokens;
      usage.cached_prompt_tokens = request.cached;
      usage.queue_time =
          (request.started ? request.prefill_start : now) - request.arrival;
      usage.time_to_first_token = request.has_first_token
                                      ? request.first_token - request.arrival
                                      : absl::ZeroDuration();
      usage.total_time = now - request.arrival;
    }
    if (!events.empty() || last) request.stream->Push(std::move(events), last);
  };
  for (auto& request : running_) send(*request, false);
  for (auto& request : ended_) send(*request, true);
  if (ended_.empty()) return;
  absl::MutexLock lock(&mu_);
  in_flight_ -= static_cast<int>(ended_.size());
  ended_.clear();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(
    std::unique_ptr<Backend> backend, const SchedulerOptions& options) {
  if (backend == nullptr) return absl::InvalidArgumentError("backend is null");
  if (options.max_waiting_bytes < 1 || options.step_token_budget < 1 ||
      options.max_batch < 1 || options.stream_buffer_tokens < 1 ||
      options.stream_interval < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scheduler options must be positive: max_waiting_bytes ",
        options.max_waiting_bytes, ", step_token_budget ",
        options.step_token_budget, ", max_batch ", options.max_batch,
        ", stream_buffer_tokens ", options.stream_buffer_tokens,
        ", stream_interval ", options.stream_interval));
  }
  return std::unique_ptr<Scheduler>(
      new SchedulerImpl(std::move(backend), options));
}

}  // namespace slabserve
