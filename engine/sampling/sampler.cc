#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/sampling/best_first.h"
#include "kernels/cpu/vector_math.h"

namespace slabserve {
namespace {

// The first id whose logit beats every earlier one's, scanning from id 0:
// the lowest id of the largest value, NaNs never chosen (nor beaten, at id
// 0). Greedy decoding calls it once per token over the whole vocabulary, so
// it finds the value 8 lanes at a time and then its first id.
int32_t ArgMax(absl::Span<const float> logits) {
  typedef float Lanes __attribute__((vector_size(32)));
  constexpr int kLanes = 8;
  const int32_t n = static_cast<int32_t>(logits.size());
  if (n == 0 || std::isnan(logits[0])) return 0;
  const float* x = logits.data();
  Lanes lane_best = logits[0] - Lanes{};
  int32_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    Lanes v;
    std::memcpy(&v, x + i, sizeof(v));
    lane_best = v > lane_best ? v : lane_best;  // NaN never wins
  }
  float best = logits[0];
  for (int l = 0; l < kLanes; ++l)
    best = lane_best[l] > best ? lane_best[l] : best;
  for (; i < n; ++i) best = x[i] > best ? x[i] : best;
  // -0 and +0 compare equal, so the first zero of either sign is found, as
  // the scan from id 0 keeps it.
  for (int32_t j = 0; j < n; ++j) {
    if (x[j] == best) return j;
  }
  return 0;
}

// log Σ exp(x) with the usual max shift, for log-probabilities. The
// exponentials are the vector kernel's (within 2 ulp of exp in float, and
// the same for a value wherever it sits), summed in double from id 0 up, so
// identical rows give identical results; glibc's exp in double costs about
// twenty times more per id, and every token of a request with logprobs
// pays it over the whole vocabulary.
double LogSumExp(absl::Span<const float> logits) {
  float max = -std::numeric_limits<float>::infinity();
  for (float x : logits) max = std::max(max, x);
  // A row with an infinite logit or none finite has no distribution.
  if (!std::isfinite(max)) return std::numeric_limits<double>::quiet_NaN();
  // Eight running sums (id i adds to sum i % 8), so that the additions
  // need not wait on each other; combined in a fixed order at the end.
  constexpr int kChunk = 512, kSums = 8;
  float shifted[kChunk];
  double sums[kSums] = {};
  for (size_t begin = 0; begin < logits.size(); begin += kChunk) {
    const int n =
        static_cast<int>(std::min<size_t>(kChunk, logits.size() - begin));
    // Zeros past the end (exp(-inf)): the sums take whole groups of eight.
    const int padded = (n + kSums - 1) / kSums * kSums;
    for (int i = 0; i < n; ++i) shifted[i] = logits[begin + i] - max;
    for (int i = n; i < padded; ++i) shifted[i] = -INFINITY;
    cpu::Exp(shifted, padded, shifted);
    for (int i = 0; i < padded; i += kSums) {
      for (int j = 0; j < kSums; ++j) sums[j] += shifted[i + j];
    }
  }
  double sum = 0.0;
  for (double partial : sums) sum += partial;
  // The best id alone contributes 1; rounding must not put a log-probability
  // above 0.
  return max + std::log(std::max(sum, 1.0));
}

// Vocabulary-sized buffers of one draw, kept per thread: a step samples its
// rows on the pool's threads, and buffers per sequence would cost more
// memory than the sequences' states.
struct DrawScratch {
  std::vector<int32_t> ids;
  std::vector<double> weights;
  BestFirstScratch order;
};

DrawScratch& ThreadScratch() {
  thread_local DrawScratch scratch;
  return scratch;
}

// A candidate whose tempered weight exp(argument) is below 2^-53 changes
// nothing in a best-first sum: it comes after the best candidate, whose
// weight is exactly 1, so the running sum is at least 1 and rounds such an
// addition away. Candidates with an argument below this bound (exp(-37.5) <
// 5.3e-17 < 2^-53) are that small, so top-p need not sort or weigh them.
constexpr double kNegligibleArgument = -37.5;

// A uniform double in [0, 1) from the top 53 bits; defined exactly, unlike
// std::uniform_real_distribution, so a seed means the same draw everywhere.
double UniformDouble(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

}  // namespace

absl::Status ValidateSamplingParams(const SamplingParams& params) {
  if (!std::isfinite(params.temperature) || params.temperature < 0.0f) {
    return absl::InvalidArgumentError(absl::StrCat(
        "temperature must be a finite number >= 0, got ", params.temperature));
  }
  if (params.top_k < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k must be >= 0 (0: off), got ", params.top_k));
  }
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_p must be in (0, 1], got ", params.top_p));
  }
  // 1 would keep only tokens exactly as likely as the best: never meant.
  if (!(params.min_p >= 0.0f && params.min_p < 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_p must be in [0, 1), got ", params.min_p));
  }
  if (!std::isfinite(params.repetition_penalty) ||
      params.repetition_penalty <= 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("repetition_penalty must be a finite number > 0, got ",
                     params.repetition_penalty));
  }
  if (!(params.presence_penalty >= -2.0f && params.presence_penalty <= 2.0f)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "presence_penalty must be in [-2, 2], got ", params.presence_penalty));
  }
  if (!(params.frequency_penalty >= -2.0f &&
        params.frequency_penalty <= 2.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("frequency_penalty must be in [-2, 2], got ",
                     params.frequency_penalty));
  }
  return absl::OkStatus();
}

Sampler::Sampler(const SamplingParams& params, uint64_t seed)
    : params_(params), rng_(seed) {}

size_t Sampler::bytes() const {
  constexpr size_t kEntry = sizeof(std::pair<int32_t, int>) + 1;  // + control
  return sizeof(Sampler) +
         kEntry * (generated_counts_.capacity() + prompt_counts_.capacity());
}

void Sampler::ObservePrompt(absl::Span<const int32_t> prompt) {
  for (int32_t id : prompt) ++prompt_counts_[id];
}

SampledToken Sampler::Sample(absl::Span<float> logits, int top_logprobs) {
  SampledToken result;
  // Log-probabilities describe the raw model distribution, so they are
  // measured before any penalty or temperature touches the row.
  double log_z = 0.0;
  if (top_logprobs >= 0) {
    log_z = LogSumExp(logits);
    DrawScratch& scratch = ThreadScratch();
    BestIds(logits, top_logprobs, &scratch.ids, &scratch.order);
    for (int32_t id : scratch.ids) {
      result.top.push_back(
          {id, static_cast<float>(static_cast<double>(logits[id]) - log_z)});
    }
  }
  // Raw values of the entries the penalties change, for the chosen logprob.
  std::vector<std::pair<int32_t, float>> raw;
  auto remember = [&](int32_t id) {
    for (const auto& entry : raw) {
      if (entry.first == id) return;
    }
    raw.emplace_back(id, logits[id]);
  };
  const int32_t vocab = static_cast<int32_t>(logits.size());
  if (params_.repetition_penalty != 1.0f) {
    auto penalize = [&](int32_t id) {
      if (id < 0 || id >= vocab) return;
      remember(id);
      float& x = logits[id];
      x = x > 0.0f ? x / params_.repetition_penalty
                   : x * params_.repetition_penalty;
    };
    for (const auto& [id, count] : prompt_counts_) penalize(id);
    for (const auto& [id, count] : generated_counts_) {
      if (!prompt_counts_.contains(id)) penalize(id);
    }
  }
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    for (const auto& [id, count] : generated_counts_) {
      if (id < 0 || id >= vocab) continue;
      remember(id);
      logits[id] -= params_.presence_penalty +
                    params_.frequency_penalty * static_cast<float>(count);
    }
  }

  result.id = params_.temperature == 0.0f ? ArgMax(logits) : Draw(logits);
  ++generated_counts_[result.id];

  if (top_logprobs >= 0) {
    float chosen = logits[result.id];
    for (const auto& [id, value] : raw) {
      if (id == result.id) chosen = value;
    }
    result.logprob = static_cast<float>(static_cast<double>(chosen) - log_z);
  }
  return result;
}

int32_t Sampler::Draw(absl::Span<const float> logits) {
  const int vocab = static_cast<int>(logits.size());
  // Candidates: the top-k (best first), every id that can matter best first
  // when top-p needs the order, or simply every id.
  DrawScratch& scratch = ThreadScratch();
  std::vector<int32_t>& ids = scratch.ids;
  const int keep = params_.top_k > 0 ? std::min(params_.top_k, vocab) : vocab;
  const double inv_t = 1.0 / params_.temperature;
  float max = -std::numeric_limits<float>::infinity();
  auto argument = [&](int32_t id) {
    return (static_cast<double>(logits[id]) - max) * inv_t;
  };
  if (params_.top_k == 0 && params_.top_p == 1.0f) {
    ids.resize(vocab);
    for (int32_t id = 0; id < vocab; ++id) ids[id] = id;
  } else if (keep < vocab || params_.top_p == 1.0f) {
    BestIds(logits, keep, &ids, &scratch.order);
  } else {
    for (float x : logits) max = std::max(max, x);
    ids.clear();
    for (int32_t id = 0; id < vocab; ++id) {
      if (argument(id) >= kNegligibleArgument) ids.push_back(id);
    }
    SortBestFirst(logits, &ids, &scratch.order);
  }
  for (int32_t id : ids) max = std::max(max, logits[id]);
  // An infinite logit, or no finite one, leaves no weights to draw by.
  if (!std::isfinite(max)) return ArgMax(logits);
  // Relative probabilities of the tempered logits (the best one is 1), less
  // min-p's drops: what is less likely than min_p times the best token (and
  // any NaN). The survivors keep their order.
  std::vector<double>& probs = scratch.weights;
  probs.clear();
  for (int32_t id : ids) {
    const double p = std::exp(argument(id));
    if (!(p >= params_.min_p)) continue;
    ids[probs.size()] = id;
    probs.push_back(p);
  }
  double total = 0.0;
  for (double p : probs) total += p;
  // top-p: the shortest best-first prefix whose mass reaches top_p.
  size_t kept = probs.size();
  if (params_.top_p < 1.0f) {
    const double target = params_.top_p * total;
    double mass = 0.0;
    kept = 0;
    while (kept < probs.size()) {
      mass += probs[kept++];
      if (mass >= target) break;
    }
    total = mass;
  }
  const double u = UniformDouble(rng_) * total;
  double cumulative = 0.0;
  for (size_t i = 0; i < kept; ++i) {
    cumulative += probs[i];
    if (u < cumulative) return ids[i];
  }
  return ids[kept - 1];
}

}  // namespace slabserve
