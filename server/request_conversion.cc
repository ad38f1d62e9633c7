#include "server/request_conversion.h"

#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/sampling/sampler.h"

namespace slabserve::server {
namespace {

constexpr int kMaxTopLogprobs = 20;
constexpr int kMaxStopStrings = 16;
constexpr size_t kMaxStopStringBytes = 256;
constexpr size_t kMaxRequestIdBytes = 128;

absl::Status CheckTokenId(int32_t id, int vocab_size, const char* what,
                          int position) {
  if (id < 0 || id >= vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", id, " at position ", position,
                     " is outside the vocabulary [0, ", vocab_size, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRequestId(const std::string& id) {
  if (id.size() > kMaxRequestIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("request_id must be at most ", kMaxRequestIdBytes,
                     " bytes, got ", id.size()));
  }
  for (size_t i = 0; i < id.size(); ++i) {
    if (id[i] < 0x20 || id[i] > 0x7e) {
      return absl::InvalidArgumentError(absl::StrCat(
          "request_id byte ", i, " is not printable ASCII (0x20..0x7e)"));
    }
  }
  return absl::OkStatus();
}

RequestConverter::RequestConverter(const ModelInfo& info,
                                   const Tokenizer* tokenizer,
                                   const RequestLimits& limits)
    : info_(info), tokenizer_(tokenizer), limits_(limits) {}

absl::StatusOr<GenerationRequest> RequestConverter::Convert(
    const v1::GenerateRequest& request) const {
  absl::StatusOr<std::vector<int32_t>> prompt = PromptIds(request);
  if (!prompt.ok()) return prompt.status();
  return ToGenerationRequest(request, *std::move(prompt));
}

absl::StatusOr<std::vector<int32_t>> RequestConverter::PromptIds(
    const v1::GenerateRequest& request) const {
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
      if (info_.add_bos && info_.bos_id >= 0) prompt.push_back(info_.bos_id);
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
                CheckTokenId(prompt[i], info_.vocab_size, "prompt token id", i);
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
  if (info_.max_positions > 0 &&
      static_cast<int64_t>(prompt.size()) > info_.max_positions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt has ", prompt.size(), " tokens; the model (",
        info_.architecture, ") accepts at most ", info_.max_positions));
  }
  if (static_cast<int64_t>(prompt.size()) > limits_.max_prompt_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt has ", prompt.size(), " tokens; this server accepts at most ",
        limits_.max_prompt_tokens, " (max_prompt_tokens)"));
  }
  return prompt;
}

absl::StatusOr<GenerationRequest> RequestConverter::ToGenerationRequest(
    const v1::GenerateRequest& request, std::vector<int32_t> prompt) const {
  auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(parts...));
  };
  if (request.max_tokens() <= 0) {
    return invalid("max_tokens must be > 0, got ", request.max_tokens());
  }
  if (request.max_tokens() > limits_.max_tokens_limit) {
    return invalid("max_tokens ", request.max_tokens(),
                   " exceeds the server's limit of ", limits_.max_tokens_limit);
  }
  if (request.n() < 0 || request.n() > limits_.max_n) {
    return invalid("n must be in [1, ", limits_.max_n, "] (0 means 1), got ",
                   request.n());
  }
  if (request.top_logprobs() < 0 || request.top_logprobs() > kMaxTopLogprobs) {
    return invalid("top_logprobs must be in [0, ", kMaxTopLogprobs, "], got ",
                   request.top_logprobs());
  }
  if (request.top_logprobs() > 0 && !request.logprobs()) {
    return invalid("top_logprobs needs logprobs = true");
  }
  if (request.top_logprobs() >= info_.vocab_size) {
    return invalid("top_logprobs ", request.top_logprobs(),
                   " must be below the vocabulary size ", info_.vocab_size);
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
                                      info_.vocab_size, "stop token id", i);
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

}  // namespace slabserve::server
