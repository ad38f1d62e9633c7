#include "server/openai_response.h"

#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace slabserve::server {
namespace {

using Json = nlohmann::json;

bool IsChat(const OpenAiReplyContext& context) {
  return context.endpoint == OpenAiEndpoint::kChat;
}

Json FinishReasonJson(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_LENGTH:
      return "length";
    case v1::FINISH_REASON_STOP:
    case v1::FINISH_REASON_EOS:
      return "stop";
    default:
      return nullptr;
  }
}

std::string TokenText(const OpenAiReplyContext& context, int32_t id) {
  if (context.tokenizer == nullptr) return absl::StrCat("<", id, ">");
  absl::StatusOr<std::string> text = context.tokenizer->Decode({id});
  return text.ok() ? *text : absl::StrCat("<", id, ">");
}

// Adds `chunk`'s logprobs to `out` in the endpoint's shape: chat's
// {"content": [{token, logprob, top_logprobs}]}, or the completions'
// parallel arrays {tokens, token_logprobs, top_logprobs}.
void AppendLogprobs(const OpenAiReplyContext& context,
                    const v1::GenerateChunk& chunk, Json* out) {
  for (const v1::Logprobs& logprobs : chunk.logprobs()) {
    const std::string token = TokenText(context, logprobs.chosen().id());
    if (IsChat(context)) {
      Json top = Json::array();
      for (const v1::TokenLogprob& entry : logprobs.top()) {
        top.push_back({{"token", TokenText(context, entry.id())},
                       {"logprob", entry.logprob()}});
      }
      (*out)["content"].push_back({{"token", token},
                                   {"logprob", logprobs.chosen().logprob()},
                                   {"top_logprobs", std::move(top)}});
      continue;
    }
    Json top = Json::object();
    for (const v1::TokenLogprob& entry : logprobs.top()) {
      top[TokenText(context, entry.id())] = entry.logprob();
    }
    (*out)["tokens"].push_back(token);
    (*out)["token_logprobs"].push_back(logprobs.chosen().logprob());
    (*out)["top_logprobs"].push_back(std::move(top));
  }
}

Json UsageJson(int prompt_tokens, int completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

Json Envelope(const OpenAiReplyContext& context, const char* object) {
  return {{"id", context.id},
          {"object", object},
          {"created", context.created},
          {"model", context.model}};
}

// One choice of a streamed chunk.
Json StreamChoice(const OpenAiReplyContext& context,
                  const v1::GenerateChunk& chunk, bool first) {
  Json choice = {{"index", chunk.index()},
                 {"finish_reason", FinishReasonJson(chunk.finish_reason())},
                 {"logprobs", nullptr}};
  if (IsChat(context)) {
    Json delta = Json::object();
    if (first) delta["role"] = "assistant";
    if (!chunk.text().empty() || first) delta["content"] = chunk.text();
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = chunk.text();
  }
  if (chunk.logprobs_size() > 0) {
    choice["logprobs"] = Json::object();
    AppendLogprobs(context, chunk, &choice["logprobs"]);
  }
  return choice;
}

std::string Event(const Json& data) {
  return absl::StrCat(
      "data: ", data.dump(-1, ' ', false, Json::error_handler_t::replace),
      "\n\n");
}

// Server-sent events for one request: a chunk per GenerateChunk, then the
// usage (when asked for) and "[DONE]".
class EventStream : public HttpBodyStream {
 public:
  EventStream(OpenAiReplyContext context,
              std::unique_ptr<OpenAiGeneration> generation)
      : context_(std::move(context)), generation_(std::move(generation)) {}

  bool Next(std::string* out) override {
    if (done_) return false;
    std::deque<v1::GenerateChunk> chunks;
    if (generation_->Next(&chunks)) {
      for (const v1::GenerateChunk& chunk : chunks) {
        completion_tokens_ += chunk.usage().completion_tokens();
        // Tokens ending mid-character have no text to show yet.
        if (chunk.text().empty() && chunk.logprobs_size() == 0 &&
            chunk.finish_reason() == v1::FINISH_REASON_UNSPECIFIED) {
          continue;
        }
        const bool first = started_.insert(chunk.index()).second;
        Json data =
            Envelope(context_, IsChat(context_) ? "chat.completion.chunk"
                                                : "text_completion");
        data["choices"] = Json::array({StreamChoice(context_, chunk, first)});
        out->append(Event(data));
      }
      return true;
    }
    done_ = true;
    if (absl::Status status = generation_->FinalStatus(); !status.ok()) {
      out->append(Event(Json::parse(OpenAiErrorResponse(status).body)));
    } else if (context_.include_usage) {
      Json data = Envelope(context_, IsChat(context_) ? "chat.completion.chunk"
                                                      : "text_completion");
      data["choices"] = Json::array();
      data["usage"] = UsageJson(context_.prompt_tokens, completion_tokens_);
      out->append(Event(data));
    }
    out->append("data: [DONE]\n\n");
    return true;
  }

 private:
  const OpenAiReplyContext context_;
  const std::unique_ptr<OpenAiGeneration> generation_;
  std::set<int> started_;  // choices that had their first chunk
  int completion_tokens_ = 0;
  bool done_ = false;
};

}  // namespace

HttpResponse OpenAiErrorResponse(int http_status, const std::string& type,
                                 const std::string& message,
                                 std::optional<std::string> param,
                                 const std::string& code) {
  Json error = {{"message", message},
                {"type", type},
                {"param", param.has_value() && !param->empty() ? Json(*param)
                                                               : Json(nullptr)},
                {"code", code.empty() ? Json(nullptr) : Json(code)}};
  return HttpResponse{http_status, "application/json",
                      Json{{"error", std::move(error)}}.dump(
                          -1, ' ', false, Json::error_handler_t::replace) +
                          "\n"};
}

HttpResponse OpenAiErrorResponse(const absl::Status& status) {
  const std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
      return OpenAiErrorResponse(400, "invalid_request_error", message,
                                 OpenAiParamOf(status), "");
    case absl::StatusCode::kUnauthenticated:
      return OpenAiErrorResponse(401, "invalid_request_error", message,
                                 std::nullopt, "invalid_api_key");
    case absl::StatusCode::kResourceExhausted:
      return OpenAiErrorResponse(429, "rate_limit_error", message, std::nullopt,
                                 "queue_full");
    case absl::StatusCode::kUnavailable:
      return OpenAiErrorResponse(503, "server_error", message, std::nullopt,
                                 "unavailable");
    default:
      return OpenAiErrorResponse(500, "server_error", message, std::nullopt,
                                 "");
  }
}

OpenAiGeneration::OpenAiGeneration(std::unique_ptr<GenerateCall> call,
                                   std::shared_ptr<RequestStream> stream,
                                   std::function<bool()> client_gone,
                                   absl::Time arrival, ServerMetrics* metrics)
    : call_(std::move(call)),
      stream_(std::move(stream)),
      client_gone_(std::move(client_gone)),
      arrival_(arrival),
      metrics_(metrics) {}

OpenAiGeneration::~OpenAiGeneration() {
  // Unfinished: the connection went away mid-stream.
  if (!ended_) {
    client_left_ = true;
    stream_->Cancel();
  }
  const absl::Status status = FinalStatus();
  const std::string label =
      absl::AsciiStrToLower(absl::StatusCodeToString(status.code()));
  metrics_->CountRequest(label);
  metrics_->e2e_latency().Observe(
      absl::ToDoubleSeconds(absl::Now() - arrival_));
  spdlog::info(
      "openai request id={} status={} completion_tokens={} finish={} "
      "total_ms={:.1f}{}{}",
      call_->request_id(), label, call_->completion_tokens(),
      FinishReasonName(call_->last_finish()),
      absl::ToDoubleMilliseconds(absl::Now() - arrival_),
      status.ok() ? "" : " error=", std::string(status.message()));
}

bool OpenAiGeneration::Next(std::deque<v1::GenerateChunk>* chunks) {
  std::vector<StreamEvent> events;
  while (!ended_) {
    // Short waits, so a client that hangs up is noticed between tokens.
    events.clear();
    ended_ = !stream_->Read(&events, absl::Milliseconds(100));
    if (!client_left_ && client_gone_ != nullptr && client_gone_()) {
      client_left_ = true;
    }
    if (!client_left_) call_->AddEvents(events, chunks);
    if (!cancelled_ && call_->ShouldCancel(client_left_)) {
      stream_->Cancel();
      cancelled_ = true;
    }
    if (!chunks->empty()) return true;
  }
  return false;
}

absl::Status OpenAiGeneration::FinalStatus() const {
  grpc::Status status =
      call_->FinalStatus(client_left_, cancelled_, absl::InfiniteFuture());
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

HttpResponse OpenAiWholeResponse(const OpenAiReplyContext& context,
                                 OpenAiGeneration& generation) {
  Json choices = Json::array();
  int completion_tokens = 0;
  std::deque<v1::GenerateChunk> chunks;
  while (generation.Next(&chunks)) {
    for (const v1::GenerateChunk& chunk : chunks) {
      while (static_cast<int>(choices.size()) <= chunk.index()) {
        choices.push_back({{"index", choices.size()},
                           {"text", ""},
                           {"logprobs", nullptr},
                           {"finish_reason", nullptr}});
      }
      Json& choice = choices[chunk.index()];
      choice["text"] = choice["text"].get<std::string>() + chunk.text();
      if (chunk.logprobs_size() > 0) {
        AppendLogprobs(context, chunk, &choice["logprobs"]);
      }
      if (chunk.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
        choice["finish_reason"] = FinishReasonJson(chunk.finish_reason());
        completion_tokens += chunk.usage().completion_tokens();
      }
    }
    chunks.clear();
  }
  if (absl::Status status = generation.FinalStatus(); !status.ok()) {
    return OpenAiErrorResponse(status);
  }
  if (IsChat(context)) {
    for (Json& choice : choices) {
      choice["message"] = {{"role", "assistant"}, {"content", choice["text"]}};
      choice.erase("text");
    }
  }
  Json body = Envelope(context,
                       IsChat(context) ? "chat.completion" : "text_completion");
  body["choices"] = std::move(choices);
  body["usage"] = UsageJson(context.prompt_tokens, completion_tokens);
  return HttpResponse{
      200, "application/json",
      body.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"};
}

HttpResponse OpenAiStreamResponse(
    OpenAiReplyContext context, std::unique_ptr<OpenAiGeneration> generation) {
  HttpResponse response;
  response.content_type = "text/event-stream";
  response.stream =
      std::make_unique<EventStream>(std::move(context), std::move(generation));
  return response;
}

}  // namespace slabserve::server
