#include "engine/models/model.h"

#include "absl/strings/str_cat.h"

namespace slabserve {

absl::StatusOr<std::vector<float>> Model::RecurrentStateForEval(
    const StatePool& /*pool*/, int /*slot*/) const {
  return absl::UnimplementedError(absl::StrCat(
      info().architecture, ": no recurrent state export for evaluation"));
}

absl::Status Model::Prefill(int slot, absl::Span<const int32_t> tokens,
                            StatePool& pool, float* logits) {
  SequenceChunk chunk{slot, tokens, /*want_logits=*/logits != nullptr};
  return Forward({&chunk, 1}, pool, logits);
}

absl::Status Model::Decode(absl::Span<const int> slots,
                           absl::Span<const int32_t> tokens, StatePool& pool,
                           float* logits) {
  if (slots.size() != tokens.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Decode: ", slots.size(), " slots but ", tokens.size(), " tokens"));
  }
  std::vector<SequenceChunk> batch(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    batch[i] = {slots[i], tokens.subspan(i, 1), logits != nullptr};
  }
  return Forward(batch, pool, logits);
}

}  // namespace slabserve
