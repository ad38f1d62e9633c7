// One Generate call's stream: reads the scheduler's events for a request,
// turns them into chunks (token ids, UTF-8-safe text with stop strings cut,
// logprobs, the final finish reason and usage) and writes them to the client
// without blocking a thread.
#ifndef SLABSERVE_SERVER_GENERATE_CALL_H_
#define SLABSERVE_SERVER_GENERATE_CALL_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/io/tokenizer.h"
#include "engine/scheduler/scheduler.h"
#include "grpcpp/grpcpp.h"
#include "server/metrics.h"
#include "server/stop_matcher.h"
#include "slabserve/v1/slabserve.grpc.pb.h"

namespace slabserve::server {

// The call's deadline; InfiniteFuture when the client set none.
absl::Time DeadlineOf(const grpc::ServerContextBase& context);

// absl and gRPC share their status codes.
grpc::Status ToGrpcStatus(const absl::Status& status);

// One of the n completions of a request, as the client sees it.
struct Completion {
  explicit Completion(const Tokenizer* tokenizer,
                      const std::vector<std::string>& stops)
      : detokenizer(tokenizer), stop_matcher(stops) {}
  IncrementalDetokenizer detokenizer;
  StopMatcher stop_matcher;
  int tokens_sent = 0;
  absl::Time first_token_time = absl::InfinitePast();
  absl::Time last_token_time = absl::InfinitePast();
  bool ended = false;  // its final chunk was sent
};

// Turns a request's scheduler events into the chunks the client sees and
// decides the call's final status. Not thread-safe: one caller at a time.
class GenerateCall {
 public:
  GenerateCall(const v1::GenerateRequest& request, std::string request_id,
               int prompt_tokens, absl::Time arrival,
               const Tokenizer* tokenizer, ServerMetrics* metrics)
      : request_(request),
        request_id_(std::move(request_id)),
        prompt_tokens_(prompt_tokens),
        arrival_(arrival),
        tokenizer_(tokenizer),
        metrics_(metrics) {
    std::vector<std::string> stops(request.stop().begin(),
                                   request.stop().end());
    int n = request.n() == 0 ? 1 : request.n();
    for (int i = 0; i < n; ++i) completions_.emplace_back(tokenizer, stops);
  }

  // Appends at most one chunk per completion, in completion order, for
  // `events` (one read's worth); chunks with nothing to say are left out.
  void AddEvents(const std::vector<StreamEvent>& events,
                 std::deque<v1::GenerateChunk>* chunks);
  // Whether the request should be cancelled: the client went away, an error
  // occurred, or every completion hit a stop string before it ended.
  bool ShouldCancel(bool client_gone) const;
  // The status once the request has finished and every chunk was handled.
  // `cancelled`: the request was cancelled through ShouldCancel.
  grpc::Status FinalStatus(bool client_gone, bool cancelled,
                           absl::Time deadline) const;

  const std::string& request_id() const { return request_id_; }
  int completion_tokens() const {
    int total = 0;
    for (const Completion& c : completions_) total += c.tokens_sent;
    return total;
  }
  FinishReason last_finish() const { return last_finish_; }
  absl::Time first_token_time() const { return first_token_time_; }

 private:
  // Adds `event`'s tokens (and, when it ends the completion, its final
  // fields) to `chunk`.
  absl::Status AddEvent(const StreamEvent& event, v1::GenerateChunk* chunk);
  // Appends the text `id` completes, minus any stop string.
  absl::Status AddText(Completion& completion, int32_t id,
                       v1::GenerateChunk* chunk);
  void FillUsage(const Completion& completion, const RequestUsage& usage,
                 v1::Usage* out) const;
  // Every completion has ended or hit a stop string.
  bool AllEnded() const;
  // Some completion has not had its final chunk yet.
  bool AnyUnfinished() const;

  const v1::GenerateRequest request_;  // a copy: the call outlives the buffer
  const std::string request_id_;
  const int prompt_tokens_;
  const absl::Time arrival_;
  const Tokenizer* const tokenizer_;
  ServerMetrics* const metrics_;
  std::vector<Completion> completions_;
  absl::Status error_;  // the first error; the request is cancelled on it
  FinishReason last_finish_ = FinishReason::kNone;
  absl::Time first_token_time_ = absl::InfinitePast();
  bool queue_time_observed_ = false;
};

// The thread that turns scheduler notifications into reactor work, so the
// step loop only queues a pointer and never converts, writes or waits on a
// call's lock. It also runs periodic checks (stalled clients) about once per
// `watch_interval`.
class EventPump {
 public:
  // Returns false once there is nothing left to watch; it is then dropped.
  using Check = std::function<bool(absl::Time now)>;

  explicit EventPump(absl::Duration watch_interval = absl::Seconds(1));
  // Runs what is queued, then stops; later Post calls are dropped.
  ~EventPump();
  EventPump(const EventPump&) = delete;
  EventPump& operator=(const EventPump&) = delete;

  void Post(std::function<void()> work);
  void Watch(Check check);

 private:
  void Loop();
  void RunChecks(absl::Time now);

  const absl::Duration watch_interval_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<Check> checks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// Streams one Generate call with gRPC's callback API: no thread waits on the
// request. The scheduler's event notification and gRPC's write completions
// drive it: each drains the ready events into chunks and writes them one at
// a time; once the request has finished and everything is written, it
// finishes the call. Deletes itself when gRPC is done with the call.
// Chunks are serialized here (the method is registered raw, so that
// malformed requests get a clear INVALID_ARGUMENT rather than gRPC's own).
class GenerateReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  // Runs right before the call finishes, for logs and metrics.
  using OnFinish =
      std::function<void(const grpc::Status& status, const GenerateCall& call)>;

  // The stream's notifications run on `pump`, which must outlive the
  // stream's last event. A write that the client leaves unread for
  // `stall_timeout` (ZeroDuration: never) cancels the call: the client has
  // stopped reading, and its slot goes to others.
  static GenerateReactor* Start(grpc::CallbackServerContext* context,
                                std::unique_ptr<GenerateCall> call,
                                std::shared_ptr<RequestStream> stream,
                                absl::Time deadline,
                                absl::Duration stall_timeout, EventPump* pump,
                                OnFinish on_finish);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // What the stream's notification holds instead of the reactor, so a
  // notification after OnDone finds no reactor and does nothing. Its mutex
  // serializes everything the reactor does.
  struct Link {
    absl::Mutex mu;
    GenerateReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
    // A pump run is queued and has not started: further notifications
    // need none of their own.
    std::atomic<bool> queued{false};
  };

  GenerateReactor(grpc::CallbackServerContext* context,
                  std::unique_ptr<GenerateCall> call,
                  std::shared_ptr<RequestStream> stream, absl::Time deadline,
                  absl::Duration stall_timeout, OnFinish on_finish);
  // Cancels when due, then writes the next chunk, reads more events, or
  // finishes the call, until it has to wait. Called with link_->mu held.
  void Pump();
  // Cancels the call if a write has waited on the client too long. Called
  // with link_->mu held.
  void CancelIfStalled(absl::Time now);

  const std::shared_ptr<Link> link_;
  grpc::CallbackServerContext* const context_;
  const std::unique_ptr<GenerateCall> call_;
  const std::shared_ptr<RequestStream> stream_;
  const absl::Time deadline_;
  const absl::Duration stall_timeout_;
  const OnFinish on_finish_;
  // The rest is guarded by link_->mu.
  std::deque<v1::GenerateChunk> ready_;
  grpc::ByteBuffer writing_;  // gRPC reads it until OnWriteDone
  std::vector<StreamEvent> events_;
  bool write_in_flight_ = false;
  absl::Time write_started_;
  bool stalled_ = false;  // cancelled because the client stopped reading
  bool client_gone_ = false;
  bool cancelled_ = false;  // by us: client gone, error, or stop strings
  bool stream_ended_ = false;
  bool finishing_ = false;
};

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_GENERATE_CALL_H_
