// The slabserve.v1.Slabserve gRPC service: validates requests, turns them
// into scheduler requests, and streams the scheduler's events back as text
// and token ids. Knows requests and statuses, no model math.
#ifndef SLABSERVE_SERVER_SERVICE_H_
#define SLABSERVE_SERVER_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/io/tokenizer.h"
#include "engine/scheduler/scheduler.h"
#include "grpcpp/grpcpp.h"
#include "server/api_keys.h"
#include "server/generate_call.h"
#include "server/metrics.h"
#include "server/request_conversion.h"
#include "slabserve/v1/slabserve.grpc.pb.h"

namespace slabserve::server {

struct ServiceOptions {
  std::string model_name;  // reported by GetModelInfo
  RequestLimits limits;    // for every front end's requests
  // A stream whose client leaves a reply unread this long is cancelled.
  absl::Duration stream_stall_timeout = absl::Seconds(60);
  // When set, every call must present one of these keys (not owned).
  const ApiKeys* api_keys = nullptr;
};

// Every method uses gRPC's callback API, so no thread waits on a stream,
// and is registered raw: the service parses the request bytes itself, so a
// malformed message (or a string that is not UTF-8) gets INVALID_ARGUMENT
// with a reason instead of gRPC's bare INTERNAL or UNIMPLEMENTED.
class SlabserveService final
    : public v1::Slabserve::WithRawCallbackMethod_Generate<
          v1::Slabserve::WithRawCallbackMethod_Tokenize<
              v1::Slabserve::WithRawCallbackMethod_Detokenize<
                  v1::Slabserve::WithRawCallbackMethod_GetModelInfo<
                      v1::Slabserve::Service>>>> {
 public:
  // `tokenizer` may be null (token-id prompts only). Nothing is owned.
  SlabserveService(Scheduler* scheduler, const Tokenizer* tokenizer,
                   ServerMetrics* metrics, ServiceOptions options);

  // From now on new requests get UNAVAILABLE; streams already running go on.
  void StartDrain() { draining_ = true; }
  bool draining() const { return draining_; }

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Generate(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override;

 private:
  // OK, or UNAUTHENTICATED when keys are required and this call has none
  // of them.
  absl::Status Authenticate(const grpc::ServerContextBase& context) const;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* StartGenerate(
      grpc::CallbackServerContext* context, v1::GenerateRequest request,
      absl::Status parse_status);
  grpc::Status TokenizeImpl(const v1::TokenizeRequest& request,
                            v1::TokenizeResponse* response);
  grpc::Status DetokenizeImpl(const v1::DetokenizeRequest& request,
                              v1::DetokenizeResponse* response);
  grpc::Status GetModelInfoImpl(v1::ModelInfo* response);
  std::string NewRequestId();
  // Counts the request and logs its one line, as it finishes.
  void LogFinished(const grpc::Status& status, const std::string& request_id,
                   absl::Time arrival, int prompt_tokens, int completion_tokens,
                   FinishReason reason, absl::Time first_token);

  Scheduler* const scheduler_;
  const Tokenizer* const tokenizer_;
  ServerMetrics* const metrics_;
  const ServiceOptions options_;
  const RequestConverter converter_;
  std::atomic<bool> draining_{false};
  std::atomic<uint64_t> next_request_number_{1};
  const uint64_t id_prefix_;  // random per process, so ids differ across runs
  EventPump event_pump_;      // runs the Generate streams' notifications
};

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_SERVICE_H_
