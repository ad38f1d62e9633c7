// The OpenAI-compatible HTTP front end: POST /v1/completions and
// /v1/chat/completions (whole answers, or server-sent events), GET
// /v1/models and GET /health, on the same scheduler as the gRPC service.
// Requests become v1::GenerateRequests checked by RequestConverter, and
// GenerateCall turns the scheduler's events into text, so both front ends
// answer alike. Each connection has its own thread, which blocks on its
// request; a client that goes away cancels its request.
#ifndef SLABSERVE_SERVER_OPENAI_SERVER_H_
#define SLABSERVE_SERVER_OPENAI_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/io/tokenizer.h"
#include "engine/scheduler/scheduler.h"
#include "server/api_keys.h"
#include "server/chat_template.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/openai_request.h"
#include "server/request_conversion.h"

namespace slabserve::server {

struct OpenAiServerOptions {
  std::string model_name;
  RequestLimits request_limits;
  OpenAiLimits limits;
  ChatTemplate chat_template = ChatTemplate::Default();
  // When set, every /v1 request must present one of these keys (not owned).
  const ApiKeys* api_keys = nullptr;
  // Bodies past max_body_bytes get 413; connections are capped.
  HttpServerOptions http;
};

class OpenAiServer {
 public:
  // `tokenizer` may be null (token-id prompts only); `draining` true turns
  // new requests away with 503. Nothing is owned; all must outlive this.
  static absl::StatusOr<std::unique_ptr<OpenAiServer>> Start(
      const std::string& host, int port, Scheduler* scheduler,
      const Tokenizer* tokenizer, ServerMetrics* metrics,
      OpenAiServerOptions options, std::function<bool()> draining);

  int port() const { return http_->port(); }

 private:
  OpenAiServer(Scheduler* scheduler, const Tokenizer* tokenizer,
               ServerMetrics* metrics, OpenAiServerOptions options,
               std::function<bool()> draining);

  HttpResponse Handle(const HttpRequest& request);
  HttpResponse Models() const;
  HttpResponse Generate(OpenAiEndpoint endpoint, const HttpRequest& request);
  absl::Status Authenticate(const HttpRequest& request) const;
  std::string NewId(OpenAiEndpoint endpoint);

  Scheduler* const scheduler_;
  const Tokenizer* const tokenizer_;
  ServerMetrics* const metrics_;
  const OpenAiServerOptions options_;
  const std::function<bool()> draining_;
  const RequestConverter converter_;
  const int64_t started_;  // unix seconds, the models' "created"
  const uint32_t id_prefix_;
  std::atomic<uint64_t> next_id_{1};
  std::unique_ptr<HttpServer> http_;  // last: stops before the rest goes
};

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_OPENAI_SERVER_H_
