#include "engine/scheduler/request_validation.h"

#include "absl/strings/str_cat.h"

namespace slabserve {

absl::Status ValidateGenerationRequest(const GenerationRequest& spec,
                                       const ModelInfo& info,
                                       int slot_capacity) {
  const int prompt_length = static_cast<int>(spec.prompt.size());
  if (prompt_length == 0) return absl::InvalidArgumentError("prompt is empty");
  for (int i = 0; i < prompt_length; ++i) {
    if (spec.prompt[i] < 0 || spec.prompt[i] >= info.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt token ", spec.prompt[i], " at index ", i,
          " is outside the vocabulary [0, ", info.vocab_size, ")"));
    }
  }
  if (spec.max_new_tokens <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_new_tokens must be positive, got ", spec.max_new_tokens));
  }
  if (spec.n < 1 || spec.n > slot_capacity) {
    return absl::InvalidArgumentError(
        absl::StrCat("n must be between 1 and the slot capacity ",
                     slot_capacity, ", got ", spec.n));
  }
  const int max_positions = info.max_positions;
  if (max_positions > 0 && prompt_length > max_positions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt of ", prompt_length, " tokens exceeds the model's maximum of ",
        max_positions, " positions"));
  }
  // The last new token is sampled, never fed: P + M - 1 positions are used.
  if (max_positions > 0 &&
      int64_t{prompt_length} + spec.max_new_tokens > max_positions + 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt of ", prompt_length, " tokens plus max_new_tokens ",
        spec.max_new_tokens, " exceeds the model's maximum of ", max_positions,
        " positions (at most ", max_positions + 1 - prompt_length,
        " new tokens)"));
  }
  for (int32_t id : spec.stop_token_ids) {
    if (id < 0 || id >= info.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("stop token id ", id, " is outside the vocabulary [0, ",
                       info.vocab_size, ")"));
    }
  }
  if (spec.top_logprobs < -1 || spec.top_logprobs > info.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_logprobs must be between -1 and the vocabulary size ",
                     info.vocab_size, ", got ", spec.top_logprobs));
  }
  return ValidateSamplingParams(spec.sampling);
}

}  // namespace slabserve
