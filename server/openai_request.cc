#include "server/openai_request.h"

#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace slabserve::server {
namespace {

using Json = nlohmann::json;

absl::Status Invalid(const std::string& param, const std::string& message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kOpenAiParamPayload, absl::Cord(param));
  return status;
}

// The field's number, `fallback` when absent or null.
absl::StatusOr<double> NumberField(const Json& body, const char* name,
                                   double fallback) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_number())
    return Invalid(name, absl::StrCat(name, " must be a number"));
  return it->get<double>();
}

absl::StatusOr<int64_t> IntegerField(const Json& body, const char* name,
                                     int64_t fallback) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) {
    return Invalid(name, absl::StrCat(name, " must be an integer"));
  }
  return it->get<int64_t>();
}

absl::StatusOr<bool> BoolField(const Json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return false;
  if (!it->is_boolean()) {
    return Invalid(name, absl::StrCat(name, " must be true or false"));
  }
  return it->get<bool>();
}

absl::Status RejectUnsupported(const Json& body) {
  for (const char* name : {"tools", "functions", "tool_choice", "function_call",
                           "logit_bias", "suffix"}) {
    if (auto it = body.find(name); it != body.end() && !it->is_null()) {
      return Invalid(name, absl::StrCat(name, " is not supported"));
    }
  }
  if (auto echo = body.find("echo"); echo != body.end() && *echo == true) {
    return Invalid("echo", "echo is not supported");
  }
  if (auto best_of = body.find("best_of");
      best_of != body.end() && !best_of->is_null() && *best_of != 1) {
    return Invalid("best_of", "best_of is not supported");
  }
  return absl::OkStatus();
}

absl::Status ParseStop(const Json& body, const OpenAiLimits& limits,
                       v1::GenerateRequest* out) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  std::vector<Json> stops;
  if (it->is_string()) {
    stops.push_back(*it);
  } else if (it->is_array()) {
    stops.assign(it->begin(), it->end());
  } else {
    return Invalid("stop", "stop must be a string or an array of strings");
  }
  if (static_cast<int>(stops.size()) > limits.max_stop) {
    return Invalid("stop", absl::StrCat("at most ", limits.max_stop,
                                        " stop strings are allowed"));
  }
  for (const Json& stop : stops) {
    if (!stop.is_string() || stop.get<std::string>().empty() ||
        stop.get<std::string>().size() > limits.max_stop_bytes) {
      return Invalid("stop",
                     absl::StrCat("each stop string must be a non-empty "
                                  "string of at most ",
                                  limits.max_stop_bytes, " bytes"));
    }
    out->add_stop(stop.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status ParsePrompt(const Json& body, v1::GenerateRequest* out) {
  auto it = body.find("prompt");
  if (it == body.end()) return Invalid("prompt", "prompt is required");
  if (it->is_string()) {
    out->set_text(it->get<std::string>());
    return absl::OkStatus();
  }
  if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
    out->set_text((*it)[0].get<std::string>());
    return absl::OkStatus();
  }
  if (it->is_array() && !it->empty()) {
    for (const Json& id : *it) {
      if (!id.is_number_integer()) {
        return Invalid("prompt",
                       "prompt must be a string, one string in an array, or "
                       "an array of token ids");
      }
      out->mutable_token_ids()->add_ids(id.get<int32_t>());
    }
    return absl::OkStatus();
  }
  return Invalid("prompt", "prompt must be a string or an array of token ids");
}

// A message's content: a string, or an array of {"type":"text"} parts.
absl::StatusOr<std::string> MessageContent(const Json& content) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) {
    return Invalid("messages", "message content must be a string or an array");
  }
  std::string text;
  for (const Json& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" ||
        !part.contains("text") || !part["text"].is_string()) {
      return Invalid("messages", "only text content parts are supported");
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

absl::Status ParseMessages(const Json& body, const ChatTemplate& chat_template,
                           const OpenAiLimits& limits,
                           v1::GenerateRequest* out) {
  auto it = body.find("messages");
  if (it == body.end() || !it->is_array() || it->empty()) {
    return Invalid("messages", "messages must be a non-empty array");
  }
  if (static_cast<int>(it->size()) > limits.max_messages) {
    return Invalid("messages", absl::StrCat("at most ", limits.max_messages,
                                            " messages are allowed"));
  }
  std::vector<ChatMessage> messages;
  for (const Json& message : *it) {
    if (!message.is_object() || !message.contains("role") ||
        !message["role"].is_string() || !message.contains("content")) {
      return Invalid("messages", "each message needs a role and a content");
    }
    const std::string role = message["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" &&
        role != "developer") {
      return Invalid("messages", absl::StrCat("unsupported role '", role, "'"));
    }
    absl::StatusOr<std::string> content = MessageContent(message["content"]);
    if (!content.ok()) return content.status();
    messages.push_back({role, *std::move(content)});
  }
  out->set_text(chat_template.Render(messages));
  return absl::OkStatus();
}

// logprobs: an integer (top alternatives) for completions, a bool plus
// top_logprobs for chat.
absl::Status ParseLogprobs(const Json& body, OpenAiEndpoint endpoint,
                           v1::GenerateRequest* out) {
  if (endpoint == OpenAiEndpoint::kCompletions) {
    absl::StatusOr<int64_t> top = IntegerField(body, "logprobs", -1);
    if (!top.ok()) return top.status();
    if (*top < -1 || *top > 20) {
      return Invalid("logprobs", "logprobs must be between 0 and 20");
    }
    out->set_logprobs(*top >= 0);
    out->set_top_logprobs(static_cast<int>(std::max<int64_t>(*top, 0)));
    return absl::OkStatus();
  }
  absl::StatusOr<bool> wanted = BoolField(body, "logprobs");
  if (!wanted.ok()) return wanted.status();
  absl::StatusOr<int64_t> top = IntegerField(body, "top_logprobs", 0);
  if (!top.ok()) return top.status();
  if (*top < 0 || *top > 20 || (*top > 0 && !*wanted)) {
    return Invalid("top_logprobs",
                   "top_logprobs must be between 0 and 20, with logprobs");
  }
  out->set_logprobs(*wanted);
  out->set_top_logprobs(static_cast<int>(*top));
  return absl::OkStatus();
}

absl::Status ParseSampling(const Json& body, v1::GenerateRequest* out) {
  v1::SamplingParams* sampling = out->mutable_sampling();
  struct Real {
    const char* name;
    double fallback, low, high;
    void (v1::SamplingParams::*set)(float);
  };
  for (const Real& field : {
           Real{"temperature", 1, 0, 2, &v1::SamplingParams::set_temperature},
           Real{"top_p", 1, 0, 1, &v1::SamplingParams::set_top_p},
           Real{"presence_penalty", 0, -2, 2,
                &v1::SamplingParams::set_presence_penalty},
           Real{"frequency_penalty", 0, -2, 2,
                &v1::SamplingParams::set_frequency_penalty},
       }) {
    absl::StatusOr<double> value =
        NumberField(body, field.name, field.fallback);
    if (!value.ok()) return value.status();
    if (!(*value >= field.low && *value <= field.high)) {
      return Invalid(field.name, absl::StrCat(field.name, " must be between ",
                                              field.low, " and ", field.high));
    }
    (sampling->*field.set)(static_cast<float>(*value));
  }
  absl::StatusOr<int64_t> seed = IntegerField(body, "seed", 0);
  if (!seed.ok()) return seed.status();
  if (*seed < 0) return Invalid("seed", "seed must not be negative");
  sampling->set_seed(static_cast<uint64_t>(*seed));
  return absl::OkStatus();
}

absl::Status ParseCounts(const Json& body, OpenAiEndpoint endpoint,
                         const OpenAiLimits& limits, v1::GenerateRequest* out) {
  const char* max_name = endpoint == OpenAiEndpoint::kChat &&
                                 body.contains("max_completion_tokens")
                             ? "max_completion_tokens"
                             : "max_tokens";
  absl::StatusOr<int64_t> max_tokens =
      IntegerField(body, max_name, limits.default_max_tokens);
  if (!max_tokens.ok()) return max_tokens.status();
  if (*max_tokens < 1 || *max_tokens > (int64_t{1} << 30)) {
    return Invalid(max_name, absl::StrCat(max_name, " must be at least 1"));
  }
  out->set_max_tokens(static_cast<int32_t>(*max_tokens));
  // vLLM's extension: keep going past EOS (benchmarks, tests).
  absl::StatusOr<bool> ignore_eos = BoolField(body, "ignore_eos");
  if (!ignore_eos.ok()) return ignore_eos.status();
  out->set_ignore_eos(*ignore_eos);
  absl::StatusOr<int64_t> n = IntegerField(body, "n", 1);
  if (!n.ok()) return n.status();
  if (*n < 1 || *n > 1024) return Invalid("n", "n must be at least 1");
  out->set_n(static_cast<int32_t>(*n));
  return absl::OkStatus();
}

absl::Status ParseStreaming(const Json& body, OpenAiRequest* out) {
  absl::StatusOr<bool> stream = BoolField(body, "stream");
  if (!stream.ok()) return stream.status();
  out->stream = *stream;
  auto options = body.find("stream_options");
  if (options == body.end() || options->is_null()) return absl::OkStatus();
  if (!options->is_object() || !out->stream) {
    return Invalid("stream_options",
                   "stream_options must be an object, and needs stream");
  }
  absl::StatusOr<bool> usage = BoolField(*options, "include_usage");
  if (!usage.ok())
    return Invalid("stream_options", "include_usage must be a bool");
  out->include_usage = *usage;
  return absl::OkStatus();
}

}  // namespace

std::optional<std::string> OpenAiParamOf(const absl::Status& status) {
  auto param = status.GetPayload(kOpenAiParamPayload);
  if (!param.has_value()) return std::nullopt;
  return std::string(*param);
}

absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(
    OpenAiEndpoint endpoint, const std::string& body_text,
    const std::string& model_name, const ChatTemplate& chat_template,
    const OpenAiLimits& limits) {
  Json body = Json::parse(body_text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return Invalid("", "the request body must be a JSON object");
  }
  auto model = body.find("model");
  if (model == body.end() || !model->is_string()) {
    return Invalid("model", "model is required");
  }
  if (model->get<std::string>() != model_name) {
    return Invalid("model", absl::StrCat("model '", model->get<std::string>(),
                                         "' does not exist; this server "
                                         "serves '",
                                         model_name, "'"));
  }
  OpenAiRequest request;
  request.endpoint = endpoint;
  v1::GenerateRequest* generate = &request.generate;
  for (absl::Status status : {
           RejectUnsupported(body),
           endpoint == OpenAiEndpoint::kChat
               ? ParseMessages(body, chat_template, limits, generate)
               : ParsePrompt(body, generate),
           ParseCounts(body, endpoint, limits, generate),
           ParseSampling(body, generate),
           ParseStop(body, limits, generate),
           ParseLogprobs(body, endpoint, generate),
           ParseStreaming(body, &request),
       }) {
    if (!status.ok()) return status;
  }
  return request;
}

}  // namespace slabserve::server
