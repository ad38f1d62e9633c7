// Token selection from one row of logits: greedy, temperature, top-k, top-p,
// min-p, repetition / presence / frequency penalties, per-request seeds, and
// log-probabilities of the chosen and the top-n tokens.
#ifndef SLABSERVE_ENGINE_SAMPLING_SAMPLER_H_
#define SLABSERVE_ENGINE_SAMPLING_SAMPLER_H_

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"

namespace slabserve {

struct SamplingParams {
  float temperature = 0.0f;         // 0: greedy (argmax, ties to the lowest id)
  int top_k = 0;                    // 0: off
  float top_p = 1.0f;               // 1: off
  float min_p = 0.0f;               // 0: off
  float repetition_penalty = 1.0f;  // 1: off
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
};

// INVALID_ARGUMENT naming the first bad field, e.g. "top_p must be in (0, 1]".
absl::Status ValidateSamplingParams(const SamplingParams& params);

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
};

struct SampledToken {
  int32_t id = 0;
  float logprob = 0.0f;  // of the chosen token under the raw model distribution
  std::vector<TokenLogprob> top;  // top-n of the raw distribution, best first
};

// One per sequence: holds the seeded RNG and the token counts the penalties
// need, so results depend only on the sequence's own logits and seed.
class Sampler {
 public:
  Sampler(const SamplingParams& params, uint64_t seed);

  // Counts prompt tokens for the repetition penalty.
  void ObservePrompt(absl::Span<const int32_t> prompt);
  // Picks the next token from `logits` (modified in place by penalties).
  // `top_logprobs` < 0: no log-probabilities at all.
  SampledToken Sample(absl::Span<float> logits, int top_logprobs);
  // Memory it holds (its generator and token counts), for swap accounting.
  size_t bytes() const;

 private:
  // A random draw from the tempered, filtered distribution of `logits`.
  int32_t Draw(absl::Span<const float> logits);

  SamplingParams params_;
  std::mt19937_64 rng_;
  absl::flat_hash_map<int32_t, int> generated_counts_;
  absl::flat_hash_map<int32_t, int> prompt_counts_;
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_SAMPLING_SAMPLER_H_
