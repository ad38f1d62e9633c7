#include "server/generate_call.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace slabserve::server {
namespace {

v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case FinishReason::kStop:
      return v1::FINISH_REASON_STOP;
    case FinishReason::kEos:
      return v1::FINISH_REASON_EOS;
    case FinishReason::kCancelled:
    case FinishReason::kDeadline:
      return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kNone:
      break;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

}  // namespace

absl::Time DeadlineOf(const grpc::ServerContextBase& context) {
  auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

bool GenerateCall::AnyUnfinished() const {
  for (const Completion& c : completions_) {
    if (!c.ended) return true;
  }
  return false;
}

bool GenerateCall::AllEnded() const {
  for (const Completion& c : completions_) {
    if (!c.ended && !c.stop_matcher.stopped()) return false;
  }
  return true;
}

absl::Status GenerateCall::AddText(Completion& completion, int32_t id,
                                   v1::GenerateChunk* chunk) {
  if (tokenizer_ == nullptr) return absl::OkStatus();
  absl::StatusOr<std::string> delta = completion.detokenizer.Add(id);
  if (!delta.ok()) return delta.status();
  chunk->mutable_text()->append(completion.stop_matcher.Feed(*delta));
  return absl::OkStatus();
}

void GenerateCall::FillUsage(const Completion& completion,
                             const RequestUsage& usage, v1::Usage* out) const {
  absl::Time now = absl::Now();
  out->set_prompt_tokens(prompt_tokens_);
  out->set_completion_tokens(completion.tokens_sent);
  // The scheduler fills its usage only on the request's last event.
  if (usage.prompt_tokens > 0) {
    out->set_queue_seconds(absl::ToDoubleSeconds(usage.queue_time));
    out->set_cached_prompt_tokens(usage.cached_prompt_tokens);
  }
  if (completion.tokens_sent > 0) {
    out->set_time_to_first_token_seconds(
        absl::ToDoubleSeconds(completion.first_token_time - arrival_));
  }
  out->set_total_seconds(absl::ToDoubleSeconds(now - arrival_));
}

absl::Status GenerateCall::AddEvent(const StreamEvent& event,
                                    v1::GenerateChunk* chunk) {
  Completion& completion = completions_[event.index];
  if (completion.ended) return absl::OkStatus();
  absl::Time now = absl::Now();
  // Tokens after a stop string are dropped; the completion ends when the
  // scheduler reports its finish.
  if (!completion.stop_matcher.stopped() && !event.tokens.empty()) {
    int new_tokens = 0;
    for (const SampledToken& token : event.tokens) {
      if (completion.stop_matcher.stopped()) break;
      chunk->add_token_ids(token.id);
      if (request_.logprobs()) {
        v1::Logprobs* logprobs = chunk->add_logprobs();
        logprobs->mutable_chosen()->set_id(token.id);
        logprobs->mutable_chosen()->set_logprob(token.logprob);
        for (const TokenLogprob& top : token.top) {
          v1::TokenLogprob* entry = logprobs->add_top();
          entry->set_id(top.id);
          entry->set_logprob(top.logprob);
        }
      }
      ++new_tokens;
      if (absl::Status s = AddText(completion, token.id, chunk); !s.ok()) {
        return s;
      }
    }
    if (completion.tokens_sent == 0) {
      completion.first_token_time = now;
      if (first_token_time_ == absl::InfinitePast()) {
        first_token_time_ = now;
        metrics_->time_to_first_token().Observe(
            absl::ToDoubleSeconds(now - arrival_));
      }
    } else {
      double gap = absl::ToDoubleSeconds(now - completion.last_token_time);
      for (int i = 0; i < new_tokens; ++i) {
        metrics_->inter_token_latency().Observe(gap / new_tokens);
      }
    }
    completion.last_token_time = now;
    completion.tokens_sent += new_tokens;
    metrics_->AddGeneratedTokens(new_tokens);
  }
  if (event.usage.prompt_tokens > 0 && !queue_time_observed_) {
    queue_time_observed_ = true;
    metrics_->queue_time().Observe(
        absl::ToDoubleSeconds(event.usage.queue_time));
  }
  if (!event.error.ok()) return event.error;
  if (event.finish == FinishReason::kNone) return absl::OkStatus();
  // The completion's last chunk.
  completion.ended = true;
  if (completion.stop_matcher.stopped()) {
    last_finish_ = FinishReason::kStop;
  } else {
    last_finish_ = event.finish;
    if (tokenizer_ != nullptr) {
      chunk->mutable_text()->append(
          completion.stop_matcher.Feed(completion.detokenizer.Flush()));
      chunk->mutable_text()->append(completion.stop_matcher.Flush());
    }
  }
  chunk->set_finish_reason(ToProto(last_finish_));
  FillUsage(completion, event.usage, chunk->mutable_usage());
  return absl::OkStatus();
}

void GenerateCall::AddEvents(const std::vector<StreamEvent>& events,
                             std::deque<v1::GenerateChunk>* chunks) {
  std::vector<v1::GenerateChunk> by_index(completions_.size());
  std::vector<bool> touched(completions_.size(), false);
  for (const StreamEvent& event : events) {
    if (event.index < 0 ||
        event.index >= static_cast<int>(completions_.size())) {
      error_ = absl::InternalError(
          absl::StrCat("scheduler sent completion index ", event.index));
      continue;
    }
    touched[event.index] = true;
    if (absl::Status s = AddEvent(event, &by_index[event.index]); !s.ok()) {
      if (error_.ok()) error_ = s;
    }
  }
  for (size_t i = 0; i < by_index.size(); ++i) {
    v1::GenerateChunk& chunk = by_index[i];
    if (!touched[i]) continue;
    if (chunk.token_ids_size() == 0 && chunk.text().empty() &&
        chunk.finish_reason() == v1::FINISH_REASON_UNSPECIFIED) {
      continue;
    }
    chunk.set_index(static_cast<int>(i));
    chunk.set_request_id(request_id_);
    chunks->push_back(std::move(chunk));
  }
}

bool GenerateCall::ShouldCancel(bool client_gone) const {
  return AnyUnfinished() && (client_gone || !error_.ok() || AllEnded());
}

grpc::Status GenerateCall::FinalStatus(bool client_gone, bool cancelled,
                                       absl::Time deadline) const {
  if (!error_.ok()) return ToGrpcStatus(error_);
  if (client_gone) {
    if (absl::Now() >= deadline) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                          absl::StrCat("deadline exceeded after ",
                                       completion_tokens(), " tokens"));
    }
    return grpc::Status(grpc::StatusCode::CANCELLED,
                        "request cancelled by the client");
  }
  if (last_finish_ == FinishReason::kDeadline) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        absl::StrCat("deadline exceeded after ",
                                     completion_tokens(), " tokens"));
  }
  for (const Completion& c : completions_) {
    if (!c.ended) {
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          "request ended without finishing every completion");
    }
  }
  if (last_finish_ == FinishReason::kCancelled && !cancelled) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "request cancelled: the server is shutting down");
  }
  return grpc::Status::OK;
}

EventPump::EventPump(absl::Duration watch_interval)
    : watch_interval_(watch_interval), thread_([this] { Loop(); }) {}

EventPump::~EventPump() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void EventPump::Post(std::function<void()> work) {
  absl::MutexLock lock(&mu_);
  if (!stopping_) queue_.push_back(std::move(work));
}

void EventPump::Watch(Check check) {
  absl::MutexLock lock(&mu_);
  if (!stopping_) checks_.push_back(std::move(check));
}

void EventPump::Loop() {
  std::deque<std::function<void()>> batch;
  absl::Time next_checks = absl::Now() + watch_interval_;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stopping_;
      };
      mu_.AwaitWithDeadline(absl::Condition(&ready), next_checks);
      if (stopping_ && queue_.empty()) return;
      batch.swap(queue_);
    }
    for (std::function<void()>& work : batch) work();
    batch.clear();
    if (const absl::Time now = absl::Now(); now >= next_checks) {
      RunChecks(now);
      next_checks = now + watch_interval_;
    }
  }
}

void EventPump::RunChecks(absl::Time now) {
  std::vector<Check> checks;
  {
    absl::MutexLock lock(&mu_);
    checks.swap(checks_);
  }
  // Run unlocked: a check may take a call's lock, under which Watch and Post
  // may be called.
  checks.erase(std::remove_if(checks.begin(), checks.end(),
                              [now](Check& check) { return !check(now); }),
               checks.end());
  absl::MutexLock lock(&mu_);
  checks_.insert(checks_.end(), std::make_move_iterator(checks.begin()),
                 std::make_move_iterator(checks.end()));
}

GenerateReactor* GenerateReactor::Start(grpc::CallbackServerContext* context,
                                        std::unique_ptr<GenerateCall> call,
                                        std::shared_ptr<RequestStream> stream,
                                        absl::Time deadline,
                                        absl::Duration stall_timeout,
                                        EventPump* pump, OnFinish on_finish) {
  auto* reactor =
      new GenerateReactor(context, std::move(call), std::move(stream), deadline,
                          stall_timeout, std::move(on_finish));
  {
    absl::MutexLock lock(&reactor->link_->mu);
    reactor->link_->reactor = reactor;
  }
  if (stall_timeout > absl::ZeroDuration()) {
    pump->Watch([link = reactor->link_](absl::Time now) {
      absl::MutexLock lock(&link->mu);
      if (link->reactor == nullptr) return false;
      link->reactor->CancelIfStalled(now);
      return true;
    });
  }
  // Holds the link, never the reactor: gRPC may delete the reactor first.
  reactor->stream_->SetOnEvents([link = reactor->link_, pump] {
    if (link->queued.exchange(true)) return;
    pump->Post([link] {
      // Cleared first, so events pushed during this run queue another.
      link->queued.store(false);
      absl::MutexLock lock(&link->mu);
      if (link->reactor != nullptr) link->reactor->Pump();
    });
  });
  return reactor;
}

GenerateReactor::GenerateReactor(grpc::CallbackServerContext* context,
                                 std::unique_ptr<GenerateCall> call,
                                 std::shared_ptr<RequestStream> stream,
                                 absl::Time deadline,
                                 absl::Duration stall_timeout,
                                 OnFinish on_finish)
    : link_(std::make_shared<Link>()),
      context_(context),
      call_(std::move(call)),
      stream_(std::move(stream)),
      deadline_(deadline),
      stall_timeout_(stall_timeout),
      on_finish_(std::move(on_finish)) {}

void GenerateReactor::CancelIfStalled(absl::Time now) {
  if (!write_in_flight_ || stalled_ || finishing_ ||
      now - write_started_ < stall_timeout_) {
    return;
  }
  stalled_ = true;
  spdlog::warn(
      "request id={} stalled: the client read nothing for {:.0f} s; "
      "cancelling it to free its slot",
      call_->request_id(), absl::ToDoubleSeconds(now - write_started_));
  client_gone_ = true;
  context_->TryCancel();
  Pump();
}

void GenerateReactor::OnWriteDone(bool ok) {
  absl::MutexLock lock(&link_->mu);
  write_in_flight_ = false;
  if (!ok) client_gone_ = true;
  Pump();
}

void GenerateReactor::OnCancel() {
  absl::MutexLock lock(&link_->mu);
  client_gone_ = true;
  Pump();
}

void GenerateReactor::OnDone() {
  {
    absl::MutexLock lock(&link_->mu);
    link_->reactor = nullptr;
  }
  delete this;
}

void GenerateReactor::Pump() {
  while (true) {
    // Before waiting on a write: a gone client frees its slot at once.
    if (!cancelled_ && call_->ShouldCancel(client_gone_)) {
      stream_->Cancel();
      cancelled_ = true;
    }
    if (finishing_ || write_in_flight_) return;
    if (client_gone_) ready_.clear();  // only draining until the request ends
    if (!ready_.empty()) {
      bool own_buffer;
      writing_.Clear();  // the serializer wants an empty buffer
      grpc::SerializationTraits<v1::GenerateChunk>::Serialize(
          ready_.front(), &writing_, &own_buffer);
      ready_.pop_front();
      write_in_flight_ = true;
      write_started_ = absl::Now();
      StartWrite(&writing_);
      return;
    }
    if (stream_ended_) {
      finishing_ = true;
      grpc::Status status =
          call_->FinalStatus(client_gone_, cancelled_, deadline_);
      on_finish_(status, *call_);
      Finish(status);
      return;
    }
    events_.clear();
    stream_ended_ = !stream_->Read(&events_, absl::ZeroDuration());
    if (events_.empty() && !stream_ended_) return;  // until notified
    if (!client_gone_) call_->AddEvents(events_, &ready_);
  }
}

}  // namespace slabserve::server
