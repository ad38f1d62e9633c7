#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace slabserve {
namespace {

// A fixed pseudo-random row of logits, std ≈ 1.5.
std::vector<float> Row(int vocab, uint32_t salt) {
  std::vector<float> logits(vocab);
  std::mt19937 rng(salt);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  for (float& x : logits) x = normal(rng);
  return logits;
}

int32_t ArgMax(const std::vector<float>& logits) {
  int32_t best = 0;
  for (int32_t i = 1; i < static_cast<int32_t>(logits.size()); ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

int32_t SampleOnce(const SamplingParams& params, std::vector<float> logits,
                   uint64_t seed) {
  Sampler sampler(params, seed);
  return sampler.Sample(absl::MakeSpan(logits), -1).id;
}

TEST(SamplerTest, GreedyPicksArgmaxAndLowestIdOnTies) {
  SamplingParams params;
  std::vector<float> logits = Row(64, 1);
  EXPECT_EQ(SampleOnce(params, logits, 0), ArgMax(logits));
  std::vector<float> ties = {0.5f, 2.0f, -1.0f, 2.0f, 2.0f};
  EXPECT_EQ(SampleOnce(params, ties, 0), 1);
}

// Greedy is the scan from id 0 that keeps the first strictly larger value,
// at every length and position (vector blocks and tail), with NaNs (never
// chosen; at id 0 never beaten), infinities and zeros of both signs.
TEST(SamplerTest, GreedyIsTheFirstStrictlyLargerScan) {
  const SamplingParams params;
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int n : {1, 2, 7, 8, 9, 16, 31, 64, 100}) {
    for (int at = 0; at < n; ++at) {
      for (float special : {nan, inf, -inf, 0.0f, -0.0f, 3.0f}) {
        std::vector<float> logits(n, -1.0f);
        if (n > 2) logits[n / 2] = -0.0f;
        logits[at] = special;
        if (at + 3 < n) logits[at + 3] = special;  // a tie after it
        EXPECT_EQ(SampleOnce(params, logits, 0), ArgMax(logits))
            << "n " << n << " at " << at << " value " << special;
      }
    }
  }
  for (uint32_t salt = 0; salt < 20; ++salt) {
    const std::vector<float> logits = Row(4096, salt);
    EXPECT_EQ(SampleOnce(params, logits, 0), ArgMax(logits));
  }
}

// Broken logits (a model that overflowed) must not break the sampler: an
// infinite logit takes the greedy choice, NaNs are never drawn, and the id
// is always in the vocabulary, for every kind of draw.
TEST(SamplerTest, NonFiniteLogitsGiveAnIdInRange) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<SamplingParams> settings(5);
  for (SamplingParams& p : settings) p.temperature = 0.9f;
  settings[1].top_k = 3;
  settings[2].top_p = 0.5f;
  settings[3].min_p = 0.1f;
  settings[3].top_p = 0.9f;
  settings[4].top_k = 600;  // most of the row, sorted
  const std::vector<std::vector<float>> specials = {
      {nan}, {inf}, {-inf}, {nan, nan}, {-inf, -inf}, {nan, 2.0f}};
  for (int n : {1, 5, 700}) {
    for (const std::vector<float>& special : specials) {
      for (const SamplingParams& params : settings) {
        std::vector<float> logits = Row(n, n);
        for (size_t i = 0; i < special.size() && i < logits.size(); ++i) {
          logits[(i * 7) % n] = special[i];
        }
        const bool has_inf = std::count(logits.begin(), logits.end(), inf);
        for (uint64_t seed = 0; seed < 4; ++seed) {
          const int32_t id = SampleOnce(params, logits, seed);
          ASSERT_GE(id, 0);
          ASSERT_LT(id, n);
          if (has_inf) EXPECT_EQ(logits[id], inf);
          bool all_nan = true;
          for (float x : logits) all_nan = all_nan && std::isnan(x);
          if (!all_nan && !has_inf) EXPECT_FALSE(std::isnan(logits[id]));
        }
      }
    }
  }
}

TEST(SamplerTest, TopKOneAndTinyTopPEqualGreedy) {
  for (uint32_t salt = 0; salt < 20; ++salt) {
    std::vector<float> logits = Row(128, salt);
    SamplingParams top_k;
    top_k.temperature = 1.5f;
    top_k.top_k = 1;
    SamplingParams top_p;
    top_p.temperature = 1.5f;
    top_p.top_p = 1e-6f;
    for (uint64_t seed = 0; seed < 5; ++seed) {
      EXPECT_EQ(SampleOnce(top_k, logits, seed), ArgMax(logits));
      EXPECT_EQ(SampleOnce(top_p, logits, seed), ArgMax(logits));
    }
  }
}

TEST(SamplerTest, TopKKeepsOnlyTheBestK) {
  std::vector<float> logits = {0.0f, 3.0f, 1.0f, 2.9f, -2.0f, 2.8f};
  SamplingParams params;
  params.temperature = 5.0f;  // nearly flat: every survivor is likely
  params.top_k = 3;
  std::map<int32_t, int> seen;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    ++seen[SampleOnce(params, logits, seed)];
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_GT(seen[1], 0);
  EXPECT_GT(seen[3], 0);
  EXPECT_GT(seen[5], 0);
}

TEST(SamplerTest, MinPFiltersUnlikelyTokens) {
  // Probabilities ∝ e^x: token 0 is the best; tokens 1 and 2 are e^-0.5 and
  // e^-3 times as likely.
  std::vector<float> logits = {5.0f, 4.5f, 2.0f};
  SamplingParams params;
  params.temperature = 1.0f;
  params.min_p = 0.2f;  // keeps 0 and 1 (0.61 ≥ 0.2), drops 2 (0.05)
  std::map<int32_t, int> seen;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    ++seen[SampleOnce(params, logits, seed)];
  }
  EXPECT_EQ(seen.count(2), 0u);
  EXPECT_GT(seen[0], 0);
  EXPECT_GT(seen[1], 0);
  // Without min-p, token 2 (≈ 3 %) shows up in 400 draws.
  params.min_p = 0.0f;
  seen.clear();
  for (uint64_t seed = 0; seed < 400; ++seed) {
    ++seen[SampleOnce(params, logits, seed)];
  }
  EXPECT_GT(seen[2], 0);
}

TEST(SamplerTest, SampledFrequenciesFollowTheDistribution) {
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  SamplingParams params;
  params.temperature = 1.0f;
  Sampler sampler(params, 7);
  std::vector<int> counts(3);
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) {
    // No penalties are set, so the generated counts do not matter.
    std::vector<float> row = logits;
    ++counts[sampler.Sample(absl::MakeSpan(row), -1).id];
  }
  EXPECT_NEAR(counts[0] / double(draws), 0.5, 0.02);
  EXPECT_NEAR(counts[1] / double(draws), 0.3, 0.02);
  EXPECT_NEAR(counts[2] / double(draws), 0.2, 0.02);
}

TEST(SamplerTest, SameSeedSameTokensDifferentSeedsDiffer) {
  SamplingParams params;
  params.temperature = 1.0f;
  params.top_p = 0.95f;
  auto run = [&](uint64_t seed) {
    Sampler sampler(params, seed);
    std::vector<int32_t> ids;
    for (uint32_t step = 0; step < 32; ++step) {
      std::vector<float> logits = Row(256, step);
      ids.push_back(sampler.Sample(absl::MakeSpan(logits), 2).id);
    }
    return ids;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(SamplerTest, LogprobsDescribeTheRawDistribution) {
  std::vector<float> logits = Row(200, 3);
  SamplingParams params;
  params.temperature = 0.7f;
  params.repetition_penalty = 1.3f;
  params.presence_penalty = 0.5f;
  Sampler sampler(params, 1);
  sampler.ObservePrompt({ArgMax(logits)});
  std::vector<float> row = logits;
  SampledToken token = sampler.Sample(absl::MakeSpan(row), 200);
  ASSERT_EQ(token.top.size(), 200u);
  double mass = 0.0;
  for (const TokenLogprob& entry : token.top) mass += std::exp(entry.logprob);
  EXPECT_NEAR(mass, 1.0, 1e-5);
  for (size_t i = 1; i < token.top.size(); ++i) {
    EXPECT_GE(token.top[i - 1].logprob, token.top[i].logprob);
  }
  // The best raw token comes first even though the penalty pushed it down.
  EXPECT_EQ(token.top[0].id, ArgMax(logits));
  // The chosen token's logprob is its raw one, whatever the penalties did.
  for (const TokenLogprob& entry : token.top) {
    if (entry.id == token.id) {
      EXPECT_FLOAT_EQ(entry.logprob, token.logprob);
    }
  }
  // top_logprobs 0: the chosen token only; -1: nothing.
  row = logits;
  EXPECT_TRUE(sampler.Sample(absl::MakeSpan(row), 0).top.empty());
  row = logits;
  SampledToken none = sampler.Sample(absl::MakeSpan(row), -1);
  EXPECT_TRUE(none.top.empty());
  EXPECT_EQ(none.logprob, 0.0f);
}

TEST(SamplerTest, RepetitionPenaltyFollowsHfSemantics) {
  // Token 0 is best; the prompt holds it, so a penalty of 2 halves its
  // positive logit and token 1 wins.
  SamplingParams params;
  params.repetition_penalty = 2.0f;
  Sampler sampler(params, 0);
  sampler.ObservePrompt({0});
  std::vector<float> logits = {3.0f, 2.0f, -1.0f};
  EXPECT_EQ(sampler.Sample(absl::MakeSpan(logits), -1).id, 1);
  EXPECT_FLOAT_EQ(logits[0], 1.5f);
  // Now 0 and 1 were seen. Negative logits are multiplied: -1 → -2.
  std::vector<float> negative = {-1.0f, -1.2f, -1.5f};
  EXPECT_EQ(sampler.Sample(absl::MakeSpan(negative), -1).id, 2);
  EXPECT_FLOAT_EQ(negative[0], -2.0f);
  EXPECT_FLOAT_EQ(negative[1], -2.4f);
}

TEST(SamplerTest, PresenceAndFrequencyPenaltiesUseGeneratedCounts) {
  SamplingParams params;
  params.frequency_penalty = 0.4f;
  Sampler sampler(params, 0);
  sampler.ObservePrompt({1});  // the prompt does not count for these
  const std::vector<float> logits = {1.0f, 0.7f, 0.0f};
  std::vector<int32_t> ids;
  for (int i = 0; i < 4; ++i) {
    std::vector<float> row = logits;
    ids.push_back(sampler.Sample(absl::MakeSpan(row), -1).id);
  }
  // 0 (1.0) → 1 (0.7 vs 0.6) → 0 (0.6 vs 0.3) → 1 (0.3 vs 0.2).
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 1, 0, 1}));

  params.frequency_penalty = 0.0f;
  params.presence_penalty = 0.5f;
  Sampler presence(params, 0);
  std::vector<int32_t> presence_ids;
  for (int i = 0; i < 3; ++i) {
    std::vector<float> row = logits;
    presence_ids.push_back(presence.Sample(absl::MakeSpan(row), -1).id);
  }
  // 0 → 1 (0.7 vs 0.5) → 0 (0.5 vs 0.2; presence does not grow).
  EXPECT_EQ(presence_ids, (std::vector<int32_t>{0, 1, 0}));
}

TEST(SamplerTest, ValidationNamesTheBadField) {
  EXPECT_TRUE(ValidateSamplingParams(SamplingParams()).ok());
  struct Case {
    SamplingParams params;
    const char* field;
  };
  std::vector<Case> cases(8);
  cases[0].params.temperature = -1.0f;
  cases[0].field = "temperature";
  cases[1].params.top_k = -3;
  cases[1].field = "top_k";
  cases[2].params.top_p = 0.0f;
  cases[2].field = "top_p";
  cases[3].params.min_p = 1.5f;
  cases[3].field = "min_p";
  cases[4].params.repetition_penalty = 0.0f;
  cases[4].field = "repetition_penalty";
  cases[5].params.presence_penalty = 3.0f;
  cases[5].field = "presence_penalty";
  cases[6].params.frequency_penalty = NAN;
  cases[6].field = "frequency_penalty";
  cases[7].params.min_p = 1.0f;  // the range is [0, 1)
  cases[7].field = "min_p";
  for (const Case& c : cases) {
    absl::Status status = ValidateSamplingParams(c.params);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(status.message().find(c.field), absl::string_view::npos)
        << status.message();
  }
}

}  // namespace
}  // namespace slabserve
