// Device sampling's formulas against engine/sampling/sampler.cc: the same
// penalties bit for bit, and the same draw for the same uniform number and
// candidate order; plus Philox4x32-10's published known-answer vectors.
#include "kernels/math/sampling.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "engine/sampling/sampler.h"

namespace slabserve::math {
namespace {

std::vector<float> RandomLogits(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(PhiloxTest, KnownAnswerVectors) {
  // Random123's kat_vectors for philox4x32 with 10 rounds.
  struct Case {
    Philox4x32 counter;
    uint32_t key0, key1;
    Philox4x32 expected;
  };
  const Case cases[] = {
      {{{0, 0, 0, 0}},
       0,
       0,
       {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
       0xffffffff,
       0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
       0xa4093822,
       0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Case& c : cases) {
    const Philox4x32 out = Philox4x32x10(c.counter, c.key0, c.key1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out.v[i], c.expected.v[i]) << i;
  }
}

TEST(PhiloxTest, UniformDrawsAreInRangeAndIndependentOfEachOther) {
  double sum = 0.0;
  std::set<double> seen;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const double u = UniformDraw(42, i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    seen.insert(u);
  }
  EXPECT_NEAR(sum / n, 0.5, 0.01);
  EXPECT_EQ(seen.size(), static_cast<size_t>(n));
  EXPECT_EQ(UniformDraw(42, 7), UniformDraw(42, 7));
  EXPECT_NE(UniformDraw(42, 7), UniformDraw(43, 7));
}

TEST(SamplingMathTest, PenaltiesMatchSamplerBitwise) {
  SamplingParams params;
  params.repetition_penalty = 1.3f;
  params.presence_penalty = 0.4f;
  params.frequency_penalty = 0.25f;
  Sampler sampler(params, 1);
  const std::vector<int32_t> prompt = {3, 5, 5, 9};
  sampler.ObservePrompt(prompt);
  const int vocab = 40;
  std::map<int32_t, int> generated;
  for (int step = 0; step < 12; ++step) {
    const std::vector<float> raw = RandomLogits(vocab, 100 + step);
    std::vector<float> row = raw;
    const SampledToken token = sampler.Sample(absl::MakeSpan(row), -1);
    int32_t best = 0;
    for (int32_t id = 0; id < vocab; ++id) {
      const bool in_prompt =
          std::find(prompt.begin(), prompt.end(), id) != prompt.end();
      const float expected = PenalizedLogit(
          raw[id], in_prompt, generated[id], params.repetition_penalty,
          params.presence_penalty, params.frequency_penalty);
      ASSERT_EQ(std::memcmp(&expected, &row[id], sizeof(float)), 0)
          << "step " << step << " id " << id;
      if (Better(expected, id, row[best], best)) best = id;
    }
    EXPECT_EQ(token.id, best);  // greedy: the best, ties to the lowest id
    ++generated[token.id];
  }
  EXPECT_EQ(PenalizedLogit(-2.5f, true, 3, 1.0f, 0.0f, 0.0f), -2.5f);
}

// The sampler's candidate order: best first when top-k or top-p is on,
// otherwise every id in id order.
std::vector<int32_t> CandidateOrder(const std::vector<float>& logits,
                                    const SamplingParams& params) {
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  if (params.top_k > 0 || params.top_p < 1.0f) {
    // Better's order, with NaN last (OrderedBits ranks it lowest).
    std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
      const uint32_t x = OrderedBits(logits[a]), y = OrderedBits(logits[b]);
      return x > y || (x == y && a < b);
    });
    if (params.top_k > 0)
      ids.resize(std::min<size_t>(params.top_k, ids.size()));
  }
  return ids;
}

// DrawFromCandidates over the sampler's candidates of `logits`, in its order.
int32_t DrawInSamplerOrder(const std::vector<float>& logits,
                           const SamplingParams& params, double u) {
  const std::vector<int32_t> ids = CandidateOrder(logits, params);
  std::vector<float> values;
  for (int32_t id : ids) values.push_back(logits[id]);
  std::vector<double> weights(ids.size());
  std::vector<int32_t> kept(ids.size());
  return DrawFromCandidates(values.data(), ids.data(),
                            static_cast<int>(ids.size()), params.temperature,
                            params.min_p, params.top_p, u, weights.data(),
                            kept.data());
}

// DrawBestFirst's sums as a host computes them: a loop over the ids.
auto HostSum(int vocab) {
  return [vocab](const auto& f) {
    double total = 0.0;
    for (int32_t id = 0; id < vocab; ++id) total += f(id);
    return total;
  };
}

// Rows for the draw comparison: `shape` 0 plain normal logits; 1 rounded to
// halves (many ties) with both zeros; 2 spread over hundreds of units, so
// that most ids weigh too little to change a best-first sum.
std::vector<float> ShapedLogits(int n, uint32_t seed, int shape) {
  std::vector<float> v = RandomLogits(n, seed);
  for (size_t i = 0; i < v.size(); ++i) {
    if (shape == 1) v[i] = i % 97 == 0 ? -0.0f : std::round(v[i] * 2) / 2;
    if (shape == 2) v[i] *= 40.0f;
  }
  return v;
}

TEST(SamplingMathTest, DrawMatchesSamplerForTheSameUniform) {
  std::vector<SamplingParams> settings(9);
  settings[0].temperature = 1.0f;
  settings[1].temperature = 0.7f;
  settings[1].top_k = 20;
  settings[2].temperature = 1.2f;
  settings[2].top_p = 0.8f;
  settings[3].temperature = 0.9f;
  settings[3].min_p = 0.05f;
  settings[4].temperature = 1.0f;
  settings[4].top_k = 50;
  settings[4].top_p = 0.5f;
  settings[4].min_p = 0.02f;
  settings[5].temperature = 2.0f;
  settings[5].top_k = 1;
  settings[6].temperature = 0.5f;  // a top-k too large for a heap
  settings[6].top_k = 2000;
  settings[6].top_p = 0.99f;
  settings[7].temperature = 1.0f;  // every id, sorted: top-k of them all
  settings[7].top_k = 5000;
  settings[8].temperature = 3.0f;
  settings[8].top_p = 0.999f;
  settings[8].min_p = 1e-30f;
  for (int vocab : {300, 3000}) {
    for (size_t s = 0; s < settings.size(); ++s) {
      const SamplingParams& params = settings[s];
      const uint64_t seed = 1000 + s;
      Sampler sampler(params, seed);
      // The sampler's uniform: the top 53 bits of its mt19937_64.
      std::mt19937_64 rng(seed);
      for (int step = 0; step < 30; ++step) {
        const std::vector<float> logits =
            ShapedLogits(vocab, 7 * step + s, step % 3);
        std::vector<float> row = logits;
        const int32_t expected = sampler.Sample(absl::MakeSpan(row), -1).id;
        const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
        EXPECT_EQ(DrawInSamplerOrder(logits, params, u), expected)
            << "vocab " << vocab << " setting " << s << " step " << step;
      }
    }
  }
}

// A row with NaNs among finite logits (a model that broke in a few places):
// the sampler, the candidate draw and the bisected draw agree, and none of
// them draws a NaN.
TEST(SamplingMathTest, NaNLogitsAreNeverDrawn) {
  std::vector<SamplingParams> settings(5);
  for (SamplingParams& p : settings) p.temperature = 1.5f;
  settings[1].top_k = 40;
  settings[2].top_p = 0.9f;
  settings[3].min_p = 0.01f;
  settings[4].top_k = 2000;
  settings[4].top_p = 0.95f;
  for (int vocab : {300, 3000}) {
    for (size_t s = 0; s < settings.size(); ++s) {
      const SamplingParams& params = settings[s];
      const uint64_t seed = 2000 + s;
      Sampler sampler(params, seed);
      std::mt19937_64 rng(seed);
      for (int step = 0; step < 20; ++step) {
        std::vector<float> logits = RandomLogits(vocab, 11 * step + s);
        for (int id = step % 7; id < vocab; id += 13) logits[id] = NAN;
        float max = -INFINITY;
        for (float x : logits) max = x > max ? x : max;
        std::vector<float> row = logits;
        const int32_t sampled = sampler.Sample(absl::MakeSpan(row), -1).id;
        EXPECT_FALSE(std::isnan(logits[sampled]));
        const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
        EXPECT_EQ(DrawInSamplerOrder(logits, params, u), sampled)
            << "vocab " << vocab << " setting " << s << " step " << step;
        if (params.top_k == 0 && params.top_p == 1.0f) continue;
        EXPECT_EQ(DrawBestFirst(logits.data(), vocab, max, params.top_k,
                                params.temperature, params.min_p, params.top_p,
                                u, HostSum(vocab)),
                  sampled)
            << "vocab " << vocab << " setting " << s << " step " << step;
      }
    }
  }
}

TEST(SamplingMathTest, OrderedBitsFollowTheFloatOrder) {
  const std::vector<float> ascending = {-INFINITY, -3.5f, -1e-30f, 0.0f,
                                        1e-30f,    2.0f,  INFINITY};
  for (size_t i = 1; i < ascending.size(); ++i) {
    EXPECT_LT(OrderedBits(ascending[i - 1]), OrderedBits(ascending[i])) << i;
  }
  EXPECT_EQ(OrderedBits(-0.0f), OrderedBits(0.0f));
  EXPECT_LT(OrderedBits(NAN), OrderedBits(-INFINITY));
}

// The bisected best-first draw against DrawFromCandidates over the sorted
// candidates, for the same uniform: rows with many equal logits (and both
// zeros), top-k below, at and above the vocabulary, min-p, top-p down to a
// single token, and uniforms at both ends.
TEST(SamplingMathTest, DrawBestFirstMatchesTheSortedDraw) {
  std::mt19937 rng(5);
  int compared = 0;
  for (int vocab : {1, 2, 37, 3000}) {
    for (int row_seed = 0; row_seed < 3; ++row_seed) {
      std::vector<float> logits = RandomLogits(vocab, 50 + row_seed);
      for (float& x : logits) x = std::round(x * 2.0f) / 2.0f;  // ties
      if (vocab > 2) logits[1] = -0.0f;
      const float max = *std::max_element(logits.begin(), logits.end());
      for (int top_k : {0, 1, 7, 1500, vocab, 5000}) {
        for (float top_p : {1.0f, 0.9f, 0.3f, 0.001f}) {
          if (top_k == 0 && top_p == 1.0f) continue;  // id order, not this
          for (float min_p : {0.0f, 0.05f}) {
            SamplingParams params;
            params.temperature = (row_seed % 2) ? 0.7f : 1.3f;
            params.top_k = top_k;
            params.top_p = top_p;
            params.min_p = min_p;
            const std::vector<int32_t> ids = CandidateOrder(logits, params);
            std::vector<float> values;
            for (int32_t id : ids) values.push_back(logits[id]);
            std::vector<double> weights(ids.size());
            std::vector<int32_t> kept(ids.size());
            const auto sum = HostSum(vocab);
            std::vector<double> uniforms = {0.0, 1.0 - 0x1.0p-53};
            for (int i = 0; i < 8; ++i) {
              uniforms.push_back(static_cast<double>(rng() >> 5) * 0x1.0p-27);
            }
            for (double u : uniforms) {
              const int32_t want = DrawFromCandidates(
                  values.data(), ids.data(), static_cast<int>(ids.size()),
                  params.temperature, min_p, top_p, u, weights.data(),
                  kept.data());
              ASSERT_EQ(DrawBestFirst(logits.data(), vocab, max, top_k,
                                      params.temperature, min_p, top_p, u, sum),
                        want)
                  << "vocab " << vocab << " row " << row_seed << " top_k "
                  << top_k << " top_p " << top_p << " min_p " << min_p << " u "
                  << u;
              ++compared;
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(compared, 4 * 3 * (6 * 4 - 1) * 2 * 10);
}

}  // namespace
}  // namespace slabserve::math
