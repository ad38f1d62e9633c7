// OpenAI-style JSON request bodies (/v1/completions, /v1/chat/completions)
// to slabserve's GenerateRequest, which RequestConverter then checks
// against the model and the server's limits like any gRPC request. Errors
// are INVALID_ARGUMENT with the offending field as the "param" payload.
#ifndef SLABSERVE_SERVER_OPENAI_REQUEST_H_
#define SLABSERVE_SERVER_OPENAI_REQUEST_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/chat_template.h"
#include "slabserve/v1/slabserve.pb.h"

namespace slabserve::server {

enum class OpenAiEndpoint { kCompletions, kChat };

// Sizes a client controls beyond what RequestConverter bounds.
struct OpenAiLimits {
  int max_messages = 256;
  int max_stop = 4;  // stop strings, as OpenAI allows
  size_t max_stop_bytes = 256;
  int default_max_tokens = 16;  // when a request sets none
};

struct OpenAiRequest {
  OpenAiEndpoint endpoint = OpenAiEndpoint::kCompletions;
  v1::GenerateRequest generate;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// Status payload key holding the name of the field an error is about.
inline constexpr char kOpenAiParamPayload[] = "slabserve/openai-param";
std::optional<std::string> OpenAiParamOf(const absl::Status& status);

// `model_name`: the one model served; any other is an error.
absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(
    OpenAiEndpoint endpoint, const std::string& body,
    const std::string& model_name, const ChatTemplate& chat_template,
    const OpenAiLimits& limits);

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_OPENAI_REQUEST_H_
