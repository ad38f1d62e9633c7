// Answers for the OpenAI-compatible front end: runs one submitted request
// to its end on the calling thread (GenerateCall does the text, stop
// strings, logprobs and usage) and writes OpenAI's JSON shapes: a whole
// completion, or server-sent event chunks ending in "data: [DONE]".
#ifndef SLABSERVE_SERVER_OPENAI_RESPONSE_H_
#define SLABSERVE_SERVER_OPENAI_RESPONSE_H_

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "engine/io/tokenizer.h"
#include "engine/scheduler/scheduler.h"
#include "server/generate_call.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/openai_request.h"

namespace slabserve::server {

// An OpenAI-style error body {"error": {message, type, param, code}} with
// its HTTP status.
HttpResponse OpenAiErrorResponse(int http_status, const std::string& type,
                                 const std::string& message,
                                 std::optional<std::string> param,
                                 const std::string& code);
// The same for a Status: INVALID_ARGUMENT 400, UNAUTHENTICATED 401,
// RESOURCE_EXHAUSTED 429, UNAVAILABLE 503, anything else 500.
HttpResponse OpenAiErrorResponse(const absl::Status& status);

// What every answer to one request shares.
struct OpenAiReplyContext {
  OpenAiEndpoint endpoint;
  std::string id;
  std::string model;
  int64_t created = 0;  // unix seconds
  int prompt_tokens = 0;
  bool include_usage = false;
  const Tokenizer* tokenizer = nullptr;  // for logprobs' token strings
};

// One submitted request, read on the caller's thread. Cancels the request
// when destroyed unfinished, or once `client_gone` says so; counts and logs
// it when destroyed.
class OpenAiGeneration {
 public:
  OpenAiGeneration(std::unique_ptr<GenerateCall> call,
                   std::shared_ptr<RequestStream> stream,
                   std::function<bool()> client_gone, absl::Time arrival,
                   ServerMetrics* metrics);
  ~OpenAiGeneration();

  // Blocks until chunks are ready (true) or the request has ended (false).
  bool Next(std::deque<v1::GenerateChunk>* chunks);
  // Once Next returned false.
  absl::Status FinalStatus() const;

 private:
  const std::unique_ptr<GenerateCall> call_;
  const std::shared_ptr<RequestStream> stream_;
  const std::function<bool()> client_gone_;
  const absl::Time arrival_;
  ServerMetrics* const metrics_;
  bool client_left_ = false;
  bool cancelled_ = false;
  bool ended_ = false;
};

// Reads the whole request and answers with one JSON body.
HttpResponse OpenAiWholeResponse(const OpenAiReplyContext& context,
                                 OpenAiGeneration& generation);
// Answers with a body of server-sent events, produced as the request runs.
HttpResponse OpenAiStreamResponse(OpenAiReplyContext context,
                                  std::unique_ptr<OpenAiGeneration> generation);

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_OPENAI_RESPONSE_H_
