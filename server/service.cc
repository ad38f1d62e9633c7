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

constexpr int kMaxTopLogprobs = 20;
constexpr int kMaxStopStrings = 16;
constexpr size_t kMaxStopStringBytes = 256;

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

absl::Status CheckTokenId(int32_t id, int vocab_size, const char* what,
                          int position) {
  if (id < 0 || id >= vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", id, " at position ", position,
                     " is outside the vocabulary [0, ", vocab_size, ")"));
  }
  return absl::OkStatus();
}

// A Generate call refused before it reached the scheduler.
class RejectedGenerate : public grpc::ServerWriteReactor<v1::GenerateChunk> {
 public:
  void OnDone() override { delete this; }
};

}  // namespace

SlabserveService::SlabserveService(Scheduler* scheduler,
                                   const Tokenizer* tokenizer,
                                   ServerMetrics* metrics,
                                   ServiceOptions options)
    : scheduler_(scheduler),
      tokenizer_(tokenizer),
      metrics_(metrics),
      options_(std::move(options)),
      id_prefix_(std::random_device{}()) {}

std::string SlabserveService::NewRequestId() {
  return absl::StrFormat("req-%08x-%d", id_prefix_ & 0xffffffff,
                         next_request_number_++);
}

absl::StatusOr<std::vector<int32_t>> SlabserveService::PromptIds(
    const v1::GenerateRequest& request) const {
  const ModelInfo& info = scheduler_->model_info();
  std::vector<int32_t> prompt;
  switch (request.prompt_case()) {
    case v1::GenerateRequest::kText: {
      if (tokenizer_ == nullptr) {
        return absl::InvalidArgumentError(
            "model has no tokenizer: send token_ids");
      }
      if (request.text().empty()) {
        return absl::InvalidArgumentError("prompt text is empty");
      }
      absl::StatusOr<std::vector<int32_t>> ids =
          tokenizer_->Encode(request.text());
      if (!ids.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "prompt text cannot be tokenized: ", ids.status().message()));
      }
      if (info.add_bos && info.bos_id >= 0) prompt.push_back(info.bos_id);
      prompt.insert(prompt.end(), ids->begin(), ids->end());
      break;
    }
    case v1::GenerateRequest::kTokenIds:
      prompt.assign(request.token_ids().ids().begin(),
                    request.token_ids().ids().end());
      if (prompt.empty()) {
        return absl::InvalidArgumentError("prompt token_ids is empty");
      }
      for (size_t i = 0; i < prompt.size(); ++i) {
        if (absl::Status s =
                CheckTokenId(prompt[i], info.vocab_size, "prompt token id", i);
            !s.ok()) {
          return s;
        }
      }
      break;
    case v1::GenerateRequest::PROMPT_NOT_SET:
      return absl::InvalidArgumentError(
          "prompt is empty: set text or token_ids");
  }
  if (prompt.empty()) {
    return absl::InvalidArgumentError("prompt text tokenizes to no tokens");
  }
  if (info.max_positions > 0 &&
      static_cast<int64_t>(prompt.size()) > info.max_positions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt has ", prompt.size(), " tokens; the model (", info.architecture,
        ") accepts at most ", info.max_positions));
  }
  return prompt;
}

absl::StatusOr<GenerationRequest> SlabserveService::ToGenerationRequest(
    const v1::GenerateRequest& request, std::vector<int32_t> prompt) const {
  const ModelInfo& info = scheduler_->model_info();
  auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(parts...));
  };
  if (request.max_tokens() <= 0) {
    return invalid("max_tokens must be > 0, got ", request.max_tokens());
  }
  if (request.max_tokens() > options_.max_tokens_limit) {
    return invalid("max_tokens ", request.max_tokens(),
                   " exceeds the server's limit of ",
                   options_.max_tokens_limit);
  }
  if (request.n() < 0 || request.n() > options_.max_n) {
    return invalid("n must be in [1, ", options_.max_n, "] (0 means 1), got ",
                   request.n());
  }
  if (request.top_logprobs() < 0 || request.top_logprobs() > kMaxTopLogprobs) {
    return invalid("top_logprobs must be in [0, ", kMaxTopLogprobs, "], got ",
                   request.top_logprobs());
  }
  if (request.top_logprobs() > 0 && !request.logprobs()) {
    return invalid("top_logprobs needs logprobs = true");
  }
  if (request.top_logprobs() >= info.vocab_size) {
    return invalid("top_logprobs ", request.top_logprobs(),
                   " must be below the vocabulary size ", info.vocab_size);
  }
  if (request.stop_size() > 0 && tokenizer_ == nullptr) {
    return invalid(
        "model has no tokenizer: stop strings cannot be matched; use "
        "stop_token_ids");
  }
  if (request.stop_size() > kMaxStopStrings) {
    return invalid("at most ", kMaxStopStrings, " stop strings, got ",
                   request.stop_size());
  }
  for (int i = 0; i < request.stop_size(); ++i) {
    if (request.stop(i).empty()) return invalid("stop string ", i, " is empty");
    if (request.stop(i).size() > kMaxStopStringBytes) {
      return invalid("stop string ", i, " is longer than ", kMaxStopStringBytes,
                     " bytes");
    }
  }
  for (int i = 0; i < request.stop_token_ids_size(); ++i) {
    if (absl::Status s = CheckTokenId(request.stop_token_ids(i),
                                      info.vocab_size, "stop token id", i);
        !s.ok()) {
      return s;
    }
  }

  GenerationRequest out;
  out.prompt = std::move(prompt);
  out.max_new_tokens = request.max_tokens();
  const v1::SamplingParams& sampling = request.sampling();
  out.sampling.temperature = sampling.temperature();
  out.sampling.top_k = sampling.top_k();
  // Zero is proto3's "unset": it turns these filters off.
  out.sampling.top_p = sampling.top_p() == 0 ? 1.0f : sampling.top_p();
  out.sampling.min_p = sampling.min_p();
  out.sampling.repetition_penalty =
      sampling.repetition_penalty() == 0 ? 1.0f : sampling.repetition_penalty();
  out.sampling.presence_penalty = sampling.presence_penalty();
  out.sampling.frequency_penalty = sampling.frequency_penalty();
  out.sampling.seed = sampling.seed();
  if (out.sampling.seed == 0) {
    std::random_device random;
    out.sampling.seed = (uint64_t{random()} << 32) | random();
  }
  if (absl::Status s = ValidateSamplingParams(out.sampling); !s.ok()) {
    return invalid("sampling: ", s.message());
  }
  out.stop_token_ids.assign(request.stop_token_ids().begin(),
                            request.stop_token_ids().end());
  out.ignore_eos = request.ignore_eos();
  out.n = request.n() == 0 ? 1 : request.n();
  out.top_logprobs = request.logprobs() ? request.top_logprobs() : -1;
  out.priority = request.priority();
  return out;
}

grpc::ServerWriteReactor<v1::GenerateChunk>* SlabserveService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  absl::Time arrival = absl::Now();
  std::string request_id =
      request->request_id().empty() ? NewRequestId() : request->request_id();
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
  absl::StatusOr<std::vector<int32_t>> prompt = PromptIds(*request);
  if (!prompt.ok()) return reject(prompt.status());
  int prompt_tokens = static_cast<int>(prompt->size());
  absl::StatusOr<GenerationRequest> generation =
      ToGenerationRequest(*request, *std::move(prompt));
  if (!generation.ok()) return reject(generation.status());
  absl::Time deadline = DeadlineOf(*context);
  generation->id = request_id;
  generation->deadline = deadline;
  absl::StatusOr<std::shared_ptr<RequestStream>> stream =
      scheduler_->Submit(*std::move(generation));
  if (!stream.ok()) return reject(stream.status());
  metrics_->AddPromptTokens(prompt_tokens);

  auto call = std::make_unique<GenerateCall>(
      *request, request_id, prompt_tokens, arrival, tokenizer_, metrics_);
  return GenerateReactor::Start(
      std::move(call), *std::move(stream), deadline, &event_pump_,
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

grpc::Status SlabserveService::Tokenize(grpc::ServerContext* /*context*/,
                                        const v1::TokenizeRequest* request,
                                        v1::TokenizeResponse* response) {
  if (tokenizer_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "model has no tokenizer");
  }
  absl::StatusOr<std::vector<int32_t>> ids =
      tokenizer_->Encode(request->text());
  if (!ids.ok()) return ToGrpcStatus(ids.status());
  absl::StatusOr<std::vector<std::string>> pieces =
      tokenizer_->EncodePieces(request->text());
  if (!pieces.ok()) return ToGrpcStatus(pieces.status());
  const ModelInfo& info = scheduler_->model_info();
  if (request->add_bos() && info.add_bos && info.bos_id >= 0) {
    response->add_ids(info.bos_id);
  }
  for (int32_t id : *ids) response->add_ids(id);
  for (std::string& piece : *pieces) response->add_pieces(std::move(piece));
  return grpc::Status::OK;
}

grpc::Status SlabserveService::Detokenize(grpc::ServerContext* /*context*/,
                                          const v1::DetokenizeRequest* request,
                                          v1::DetokenizeResponse* response) {
  if (tokenizer_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "model has no tokenizer");
  }
  std::vector<int32_t> ids(request->ids().begin(), request->ids().end());
  absl::StatusOr<std::string> text = tokenizer_->Decode(ids);
  if (!text.ok()) return ToGrpcStatus(text.status());
  response->set_text(*std::move(text));
  return grpc::Status::OK;
}

grpc::Status SlabserveService::GetModelInfo(
    grpc::ServerContext* /*context*/, const v1::ModelInfoRequest* /*request*/,
    v1::ModelInfo* response) {
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
  response->set_max_tokens_limit(options_.max_tokens_limit);
  response->set_weights_dtype(info.weights_dtype);
  return grpc::Status::OK;
}

}  // namespace slabserve::server
