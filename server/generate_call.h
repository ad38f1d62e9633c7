// One Generate call's stream: reads the scheduler's events for a request,
// turns them into chunks (token ids, UTF-8-safe text with stop strings cut,
// logprobs, the final finish reason and usage) and writes them to the client.
#ifndef SLABSERVE_SERVER_GENERATE_CALL_H_
#define SLABSERVE_SERVER_GENERATE_CALL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "engine/io/tokenizer.h"
#include "engine/scheduler/scheduler.h"
#include "grpcpp/grpcpp.h"
#include "server/metrics.h"
#include "server/stop_matcher.h"
#include "slabserve/v1/slabserve.grpc.pb.h"

namespace slabserve::server {

// The call's deadline; InfiniteFuture when the client set none.
absl::Time DeadlineOf(const grpc::ServerContext& context);

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

// chunks and writes them, until every completion has ended.
class GenerateCall {
 public:
  GenerateCall(grpc::ServerContext* context,
               grpc::ServerWriter<v1::GenerateChunk>* writer,
               const v1::GenerateRequest& request, std::string request_id,
               int prompt_tokens, absl::Time arrival,
               const Tokenizer* tokenizer, ServerMetrics* metrics)
      : context_(context),
        writer_(writer),
        request_(request),
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

  // Streams until every completion has ended; cancels the request when the
  // client goes away or every completion hit a stop string.
  grpc::Status Run(RequestStream& stream);

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

  grpc::ServerContext* const context_;
  grpc::ServerWriter<v1::GenerateChunk>* const writer_;
  const v1::GenerateRequest& request_;
  const std::string request_id_;
  const int prompt_tokens_;
  const absl::Time arrival_;
  const Tokenizer* const tokenizer_;
  ServerMetrics* const metrics_;
  std::vector<Completion> completions_;
  FinishReason last_finish_ = FinishReason::kNone;
  absl::Time first_token_time_ = absl::InfinitePast();
  bool queue_time_observed_ = false;
};

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_GENERATE_CALL_H_
