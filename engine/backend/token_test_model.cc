#include "engine/backend/token_test_model.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace slabserve {
namespace {

// A value in [-1, 1) fixed by (token, dimension).
float Hashed(uint32_t token, uint32_t dimension) {
  uint64_t h = (uint64_t{token} << 32 | dimension) * 0x9e3779b97f4a7c15ull;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 32;
  return static_cast<float>(h % 20000) / 10000.0f - 1.0f;
}

}  // namespace

TokenTestModel::TokenTestModel(int block_tokens, int vocab_size)
    : block_tokens_(block_tokens), embeddings_(vocab_size * kWidth) {
  info_.architecture = "token_test";
  info_.vocab_size = vocab_size;
  info_.num_layers = 1;
  info_.hidden_size = kWidth;
  info_.bos_id = 2;
  info_.weights_dtype = "f32";
  for (int token = 0; token < vocab_size; ++token) {
    for (int d = 0; d < kWidth; ++d) {
      embeddings_[token * kWidth + d] = Hashed(token, d);
    }
  }
}

std::vector<StateSlabSpec> TokenTestModel::StateLayout() const {
  return {{"mix", kWidth * sizeof(float)}};
}

TokenStateLayout TokenTestModel::TokenLayout() const {
  return {{{"keys", kWidth * sizeof(float)}}, block_tokens_};
}

absl::Status TokenTestModel::Check(absl::Span<const SequenceChunk> batch,
                                   const StatePool& pool) const {
  absl::flat_hash_set<int> seen;
  for (const SequenceChunk& chunk : batch) {
    if (!pool.IsAllocated(chunk.slot) || !seen.insert(chunk.slot).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("slot ", chunk.slot, " is not allocated or repeated"));
    }
    if (chunk.tokens.empty()) return absl::InvalidArgumentError("empty chunk");
    for (int32_t token : chunk.tokens) {
      if (token < 0 || token >= info_.vocab_size) {
        return absl::InvalidArgumentError(
            absl::StrCat("token ", token, " is outside the vocabulary"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status TokenTestModel::Forward(absl::Span<const SequenceChunk> batch,
                                     StatePool& pool, float* logits) {
  if (absl::Status status = Check(batch, pool); !status.ok()) return status;
  for (const SequenceChunk& chunk : batch) {
    const int64_t end =
        pool.position(chunk.slot) + static_cast<int64_t>(chunk.tokens.size());
    if (absl::Status status = pool.ReserveTokens(chunk.slot, end);
        !status.ok()) {
      return status;
    }
  }
  for (const SequenceChunk& chunk : batch) {
    Feed(chunk, pool);
    if (chunk.want_logits) {
      Logits(chunk.slot, pool, logits);
      logits += info_.vocab_size;
    }
  }
  return absl::OkStatus();
}

void TokenTestModel::Feed(const SequenceChunk& chunk, StatePool& pool) const {
  float* mix = pool.Row<float>(0, chunk.slot);
  int32_t position = pool.position(chunk.slot);
  for (int32_t token : chunk.tokens) {
    const float* embedding = &embeddings_[token * kWidth];
    float* key = pool.TokenRow<float>(0, chunk.slot, position);
    for (int d = 0; d < kWidth; ++d) {
      mix[d] = 0.75f * mix[d] + 0.25f * embedding[d];
      key[d] = embedding[d] * std::cos(0.1f * position * (d + 1)) + mix[d];
    }
    ++position;
  }
  pool.set_position(chunk.slot, position);
}

void TokenTestModel::Logits(int slot, const StatePool& pool, float* out) const {
  const float* query = pool.Row<float>(0, slot);
  const int32_t length = pool.position(slot);
  std::vector<float> scores(length);
  float best = -INFINITY;
  for (int32_t p = 0; p < length; ++p) {
    const float* key = pool.TokenRow<float>(0, slot, p);
    float score = 0.0f;
    for (int d = 0; d < kWidth; ++d) score += query[d] * key[d];
    scores[p] = score;
    best = std::max(best, score);
  }
  float context[kWidth] = {};
  float total = 0.0f;
  for (int32_t p = 0; p < length; ++p) {
    const float weight = std::exp(scores[p] - best);
    const float* key = pool.TokenRow<float>(0, slot, p);
    for (int d = 0; d < kWidth; ++d) context[d] += weight * key[d];
    total += weight;
  }
  for (int v = 0; v < info_.vocab_size; ++v) {
    float logit = 0.0f;
    for (int d = 0; d < kWidth; ++d) {
      logit += context[d] / total * embeddings_[v * kWidth + d];
    }
    out[v] = 4.0f * logit;
  }
}

}  // namespace slabserve
