#include "server/openai_server.h"

#include <random>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "server/generate_call.h"
#include "server/openai_response.h"
#include "spdlog/spdlog.h"

namespace slabserve::server {
namespace {

using Json = nlohmann::json;

HttpResponse JsonResponse(int status, const Json& body) {
  return HttpResponse{
      status, "application/json",
      body.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"};
}

std::optional<absl::string_view> Header(const HttpRequest& request,
                                        const char* name) {
  auto it = request.headers.find(name);
  if (it == request.headers.end()) return std::nullopt;
  return absl::string_view(it->second);
}

}  // namespace

absl::StatusOr<std::unique_ptr<OpenAiServer>> OpenAiServer::Start(
    const std::string& host, int port, Scheduler* scheduler,
    const Tokenizer* tokenizer, ServerMetrics* metrics,
    OpenAiServerOptions options, std::function<bool()> draining) {
  HttpServerOptions http = options.http;
  http.thread_per_connection = true;  // handlers wait on the model
  std::unique_ptr<OpenAiServer> server(new OpenAiServer(
      scheduler, tokenizer, metrics, std::move(options), std::move(draining)));
  absl::StatusOr<std::unique_ptr<HttpServer>> started = HttpServer::Start(
      host, port, http, [raw = server.get()](const HttpRequest& request) {
        return raw->Handle(request);
      });
  if (!started.ok()) return started.status();
  server->http_ = *std::move(started);
  return server;
}

OpenAiServer::OpenAiServer(Scheduler* scheduler, const Tokenizer* tokenizer,
                           ServerMetrics* metrics, OpenAiServerOptions options,
                           std::function<bool()> draining)
    : scheduler_(scheduler),
      tokenizer_(tokenizer),
      metrics_(metrics),
      options_(std::move(options)),
      draining_(std::move(draining)),
      converter_(scheduler->model_info(), tokenizer, options_.request_limits),
      started_(absl::ToUnixSeconds(absl::Now())),
      id_prefix_(std::random_device{}()) {}

HttpResponse OpenAiServer::Handle(const HttpRequest& request) {
  const std::string& path = request.path;
  const bool generate =
      path == "/v1/completions" || path == "/v1/chat/completions";
  if (path == "/health") {
    if (request.method != "GET") {
      return OpenAiErrorResponse(405, "invalid_request_error",
                                 "use GET /health", std::nullopt,
                                 "method_not_allowed");
    }
    return draining_() ? JsonResponse(503, {{"status", "draining"}})
                       : JsonResponse(200, {{"status", "ok"}});
  }
  if (!generate && path != "/v1/models") {
    return OpenAiErrorResponse(
        404, "invalid_request_error",
        absl::StrCat("unknown path ", absl::CEscape(path),
                     "; this server has /v1/completions, "
                     "/v1/chat/completions, /v1/models and /health"),
        std::nullopt, "unknown_url");
  }
  if (request.method != (generate ? "POST" : "GET")) {
    return OpenAiErrorResponse(
        405, "invalid_request_error",
        absl::StrCat("use ", generate ? "POST " : "GET ", path), std::nullopt,
        "method_not_allowed");
  }
  if (absl::Status auth = Authenticate(request); !auth.ok()) {
    return OpenAiErrorResponse(auth);
  }
  if (!generate) return Models();
  return Generate(path == "/v1/completions" ? OpenAiEndpoint::kCompletions
                                            : OpenAiEndpoint::kChat,
                  request);
}

absl::Status OpenAiServer::Authenticate(const HttpRequest& request) const {
  if (options_.api_keys == nullptr) return absl::OkStatus();
  return options_.api_keys->CheckHeaders(Header(request, "authorization"),
                                         Header(request, "x-api-key"));
}

HttpResponse OpenAiServer::Models() const {
  Json model = {{"id", options_.model_name},
                {"object", "model"},
                {"created", started_},
                {"owned_by", "slabserve"}};
  return JsonResponse(200, {{"object", "list"}, {"data", {model}}});
}

std::string OpenAiServer::NewId(OpenAiEndpoint endpoint) {
  return absl::StrFormat(
      "%s-%08x-%d", endpoint == OpenAiEndpoint::kChat ? "chatcmpl" : "cmpl",
      id_prefix_, next_id_++);
}

HttpResponse OpenAiServer::Generate(OpenAiEndpoint endpoint,
                                    const HttpRequest& request) {
  const absl::Time arrival = absl::Now();
  const std::string id = NewId(endpoint);
  auto reject = [&](HttpResponse response) {
    metrics_->CountRequest(response.status == 429   ? "resource_exhausted"
                           : response.status == 503 ? "unavailable"
                                                    : "invalid_argument");
    spdlog::info("openai request id={} rejected: HTTP {}", id, response.status);
    return response;
  };
  if (request.body_too_large) {
    return reject(OpenAiErrorResponse(
        413, "invalid_request_error",
        absl::StrCat("the request body is larger than ",
                     options_.http.max_body_bytes, " bytes"),
        std::nullopt, "request_too_large"));
  }
  if (draining_()) {
    return reject(OpenAiErrorResponse(absl::UnavailableError(
        "server is shutting down; send the request to another replica")));
  }
  absl::StatusOr<OpenAiRequest> parsed =
      ParseOpenAiRequest(endpoint, request.body, options_.model_name,
                         options_.chat_template, options_.limits);
  if (!parsed.ok()) return reject(OpenAiErrorResponse(parsed.status()));
  parsed->generate.set_request_id(id);
  absl::StatusOr<GenerationRequest> generation =
      converter_.Convert(parsed->generate);
  if (!generation.ok()) return reject(OpenAiErrorResponse(generation.status()));
  generation->id = id;
  const int prompt_tokens = static_cast<int>(generation->prompt.size());
  absl::StatusOr<std::shared_ptr<RequestStream>> stream =
      scheduler_->Submit(*std::move(generation));
  if (!stream.ok()) return reject(OpenAiErrorResponse(stream.status()));
  metrics_->AddPromptTokens(prompt_tokens);

  auto run = std::make_unique<OpenAiGeneration>(
      std::make_unique<GenerateCall>(parsed->generate, id, prompt_tokens,
                                     arrival, tokenizer_, metrics_),
      *std::move(stream), request.client_gone, arrival, metrics_);
  OpenAiReplyContext context{endpoint,
                             id,
                             options_.model_name,
                             absl::ToUnixSeconds(arrival),
                             prompt_tokens,
                             parsed->include_usage,
                             tokenizer_};
  if (parsed->stream) return OpenAiStreamResponse(context, std::move(run));
  return OpenAiWholeResponse(context, *run);
}

}  // namespace slabserve::server
