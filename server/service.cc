#include "server/service.h"

#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/sampling/sampler.h"
#include "server/generate_call.h"
#include "spdlog/spdlog.h"

namespace slabserve::server {
namespace {

std::string StatusLabel(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "ok";
    case grpc::StatusCode::CANCELLED:
      return "cancelled";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "invalid_argument";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "deadline_exceeded";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "resource_exhausted";
    case grpc::StatusCode::UNAVAILABLE:
      return "unavailable";
    case grpc::StatusCode::INTERNAL:
      return "internal";
    default:
      return absl::StrCat("code_", static_cast<int>(code));
  }
}

// A Generate call refused before it reached the scheduler.
class RejectedGenerate : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  void OnDone() override { delete this; }
};

// The request's bytes as a `Message`, or INVALID_ARGUMENT saying why not.
template <typename Message>
absl::Status ParseRequest(const grpc::ByteBuffer* bytes, Message* message) {
  grpc::ByteBuffer copy(*bytes);  // Deserialize consumes its buffer
  if (!grpc::SerializationTraits<Message>::Deserialize(&copy, message).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request is not a valid ", Message::descriptor()->full_name(),
        ": malformed protobuf bytes, or a string field that is not UTF-8"));
  }
  return absl::OkStatus();
}

// Unless `auth` refused the call, parses the request, runs `impl` and
// serializes its response.
template <typename Request, typename Response, typename Impl>
grpc::ServerUnaryReactor* ServeUnary(grpc::CallbackServerContext* context,
                                     const absl::Status& auth,
                                     const grpc::ByteBuffer* request_bytes,
                                     grpc::ByteBuffer* response_bytes,
                                     const Impl& impl) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Request request;
  absl::Status parsed =
      auth.ok() ? ParseRequest(request_bytes, &request) : auth;
  if (!parsed.ok()) {
    reactor->Finish(ToGrpcStatus(parsed));
    return reactor;
  }
  Response response;
  grpc::Status status = impl(request, &response);
  bool own_buffer;
  if (status.ok()) {
    status = grpc::SerializationTraits<Response>::Serialize(
        response, response_bytes, &own_buffer);
  }
  reactor->Finish(status);
  return reactor;
}

}  // namespace

SlabserveService::SlabserveService(Scheduler* scheduler,
                                   const Tokenizer* tokenizer,
                                   ServerMetrics* metrics,
                                   ServiceOptions options)
    : scheduler_(scheduler),
      tokenizer_(tokenizer),
      metrics_(metrics),
      options_(std::move(options)),
      converter_(scheduler->model_info(), tokenizer, options_.limits),
      id_prefix_(std::random_device{}()) {}

std::string SlabserveService::NewRequestId() {
  return absl::StrFormat("req-%08x-%d", id_prefix_ & 0xffffffff,
                         next_request_number_++);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* SlabserveService::Generate(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  v1::GenerateRequest parsed;
  absl::Status status = Authenticate(*context);
  if (status.ok()) status = ParseRequest(request, &parsed);
  return StartGenerate(context, std::move(parsed), std::move(status));
}

absl::Status SlabserveService::Authenticate(
    const grpc::ServerContextBase& context) const {
  if (options_.api_keys == nullptr) return absl::OkStatus();
  return options_.api_keys->Check(context);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* SlabserveService::StartGenerate(
    grpc::CallbackServerContext* context, v1::GenerateRequest request,
    absl::Status parse_status) {
  absl::Time arrival = absl::Now();
  const absl::Status id_status = parse_status.ok()
                                     ? ValidateRequestId(request.request_id())
                                     : parse_status;
  // A rejected id is never logged: the rejection gets an id of our own.
  std::string request_id = request.request_id().empty() || !id_status.ok()
                               ? NewRequestId()
                               : request.request_id();
  auto reject = [&](const absl::Status& status) {
    grpc::Status grpc_status = ToGrpcStatus(status);
    LogFinished(grpc_status, request_id, arrival, 0, 0, FinishReason::kNone,
                absl::InfinitePast());
    auto* reactor = new RejectedGenerate();
    reactor->Finish(grpc_status);
    return reactor;
  };
  if (draining_) {
    return reject(absl::UnavailableError(
        "server is shutting down; send the request to another replica"));
  }
  if (!id_status.ok()) return reject(id_status);
  absl::StatusOr<GenerationRequest> generation = converter_.Convert(request);
  if (!generation.ok()) return reject(generation.status());
  const int prompt_tokens = static_cast<int>(generation->prompt.size());
  absl::Time deadline = DeadlineOf(*context);
  generation->id = request_id;
  generation->deadline = deadline;
  absl::StatusOr<std::shared_ptr<RequestStream>> stream =
      scheduler_->Submit(*std::move(generation));
  if (!stream.ok()) return reject(stream.status());
  metrics_->AddPromptTokens(prompt_tokens);

  auto call = std::make_unique<GenerateCall>(request, request_id, prompt_tokens,
                                             arrival, tokenizer_, metrics_);
  return GenerateReactor::Start(
      context, std::move(call), *std::move(stream), deadline,
      options_.stream_stall_timeout, &event_pump_,
      [this, arrival, prompt_tokens](const grpc::Status& status,
                                     const GenerateCall& call) {
        LogFinished(status, call.request_id(), arrival, prompt_tokens,
                    call.completion_tokens(), call.last_finish(),
                    call.first_token_time());
      });
}

void SlabserveService::LogFinished(const grpc::Status& status,
                                   const std::string& request_id,
                                   absl::Time arrival, int prompt_tokens,
                                   int completion_tokens, FinishReason reason,
                                   absl::Time first_token) {
  absl::Time now = absl::Now();
  std::string label = StatusLabel(status.error_code());
  metrics_->CountRequest(label);
  metrics_->e2e_latency().Observe(absl::ToDoubleSeconds(now - arrival));
  double ttft_ms = first_token == absl::InfinitePast()
                       ? -1
                       : absl::ToDoubleMilliseconds(first_token - arrival);
  spdlog::info(
      "request id={} status={} prompt_tokens={} completion_tokens={} "
      "finish={} ttft_ms={:.1f} total_ms={:.1f}{}{}",
      request_id, label, prompt_tokens, completion_tokens,
      FinishReasonName(reason), ttft_ms,
      absl::ToDoubleMilliseconds(now - arrival),
      status.ok() ? "" : " error=", status.error_message());
}

grpc::ServerUnaryReactor* SlabserveService::Tokenize(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return ServeUnary<v1::TokenizeRequest, v1::TokenizeResponse>(
      context, Authenticate(*context), request, response,
      [this](const auto& in, auto* out) { return TokenizeImpl(in, out); });
}

grpc::ServerUnaryReactor* SlabserveService::Detokenize(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return ServeUnary<v1::DetokenizeRequest, v1::DetokenizeResponse>(
      context, Authenticate(*context), request, response,
      [this](const auto& in, auto* out) { return DetokenizeImpl(in, out); });
}

grpc::ServerUnaryReactor* SlabserveService::GetModelInfo(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return ServeUnary<v1::ModelInfoRequest, v1::ModelInfo>(
      context, Authenticate(*context), request, response,
      [this](const auto&, auto* out) { return GetModelInfoImpl(out); });
}

grpc::Status SlabserveService::TokenizeImpl(const v1::TokenizeRequest& request,
                                            v1::TokenizeResponse* response) {
  if (tokenizer_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "model has no tokenizer");
  }
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer_->Encode(request.text());
  if (!ids.ok()) return ToGrpcStatus(ids.status());
  absl::StatusOr<std::vector<std::string>> pieces =
      tokenizer_->EncodePieces(request.text());
  if (!pieces.ok()) return ToGrpcStatus(pieces.status());
  const ModelInfo& info = scheduler_->model_info();
  if (request.add_bos() && info.add_bos && info.bos_id >= 0) {
    response->add_ids(info.bos_id);
  }
  for (int32_t id : *ids) response->add_ids(id);
  for (std::string& piece : *pieces) response->add_pieces(std::move(piece));
  return grpc::Status::OK;
}

grpc::Status SlabserveService::DetokenizeImpl(
    const v1::DetokenizeRequest& request, v1::DetokenizeResponse* response) {
  if (tokenizer_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "model has no tokenizer");
  }
  std::vector<int32_t> ids(request.ids().begin(), request.ids().end());
  absl::StatusOr<std::string> text = tokenizer_->Decode(ids);
  if (!text.ok()) return ToGrpcStatus(text.status());
  response->set_text(*std::move(text));
  return grpc::Status::OK;
}

grpc::Status SlabserveService::GetModelInfoImpl(v1::ModelInfo* response) {
  const ModelInfo& info = scheduler_->model_info();
  SchedulerStats stats = scheduler_->stats();
  response->set_name(options_.model_name);
  response->set_architecture(info.architecture);
  response->set_vocab_size(info.vocab_size);
  response->set_num_layers(info.num_layers);
  response->set_hidden_size(info.hidden_size);
  response->set_attention_window(info.attention_window);
  response->set_max_sequence_length(info.max_positions);
  response->set_state_bytes_per_sequence(
      static_cast<int64_t>(stats.state_bytes_per_sequence));
  response->set_slot_capacity(stats.slot_capacity);
  response->set_slots_in_use(stats.slots_in_use);
  response->set_waiting_requests(stats.waiting);
  response->set_has_tokenizer(tokenizer_ != nullptr);
  response->set_bos_token_id(info.bos_id);
  response->set_eos_token_id(info.eos_id);
  response->set_max_tokens_limit(options_.limits.max_tokens_limit);
  response->set_weights_dtype(info.weights_dtype);
  response->set_block_tokens(stats.block_tokens);
  response->set_block_capacity(stats.block_capacity);
  response->set_blocks_in_use(stats.blocks_in_use);
  response->set_state_bytes_per_block(
      static_cast<int64_t>(stats.state_bytes_per_block));
  return grpc::Status::OK;
}

}  // namespace slabserve::server
