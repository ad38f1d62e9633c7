#include "engine/sampling/best_first.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace slabserve {
namespace {

// The order spelled with float comparisons: larger first, equal values (the
// two zeros included) by id, NaNs last by id.
bool Before(const std::vector<float>& logits, int32_t a, int32_t b) {
  const float x = logits[a], y = logits[b];
  if (std::isnan(x) != std::isnan(y)) return std::isnan(y);
  if (std::isnan(x)) return a < b;
  return x > y || (x == y && a < b);
}

// Logits with many ties, both zeros, infinities and NaNs.
std::vector<float> Row(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::uniform_int_distribution<int> special(0, 19);
  const float inf = std::numeric_limits<float>::infinity();
  const float kSpecial[] = {0.0f,
                            -0.0f,
                            inf,
                            -inf,
                            std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::denorm_min(),
                            -std::numeric_limits<float>::denorm_min()};
  std::vector<float> row(n);
  for (float& x : row) {
    const int s = special(rng);
    x = s < 7 ? kSpecial[s] : std::round(normal(rng) * 2.0f) / 2.0f;
    if (s == 7) x = normal(rng) * 1e30f;  // some very large magnitudes
  }
  return row;
}

TEST(BestFirstTest, SortMatchesTheFloatOrderAtEverySize) {
  BestFirstScratch scratch;
  for (int n : {0, 1, 2, 7, 511, 512, 513, 3000, 70000}) {
    const std::vector<float> logits = Row(n, n + 1);
    // Every id, and every third id (a sorted subset, as top-p passes).
    for (int stride : {1, 3}) {
      std::vector<int32_t> ids;
      for (int32_t id = 0; id < n; id += stride) ids.push_back(id);
      std::vector<int32_t> want = ids;
      std::sort(want.begin(), want.end(),
                [&](int32_t a, int32_t b) { return Before(logits, a, b); });
      SortBestFirst(logits, &ids, &scratch);
      EXPECT_EQ(ids, want) << "n " << n << " stride " << stride;
    }
  }
}

TEST(BestFirstTest, RowsOfOneValueKeepIdOrder) {
  // Every key equal: the radix passes are skipped, the ids stay as given.
  std::vector<float> logits(2000, -0.0f);
  for (int i = 0; i < 2000; i += 2) logits[i] = 0.0f;
  std::vector<int32_t> ids(2000);
  BestFirstScratch scratch;
  for (int32_t i = 0; i < 2000; ++i) ids[i] = i;
  const std::vector<int32_t> want = ids;
  SortBestFirst(logits, &ids, &scratch);
  EXPECT_EQ(ids, want);
}

TEST(BestFirstTest, BestIdsAreTheSortsPrefix) {
  BestFirstScratch scratch;
  for (int n : {0, 1, 40, 3000}) {
    const std::vector<float> logits = Row(n, 2 * n + 5);
    std::vector<int32_t> all(n);
    for (int32_t id = 0; id < n; ++id) all[id] = id;
    std::sort(all.begin(), all.end(),
              [&](int32_t a, int32_t b) { return Before(logits, a, b); });
    // A few (selected, then sorted), most (one sort), all, more than all.
    for (int keep : {0, 1, 5, n / 20, n / 2, n, n + 3}) {
      std::vector<int32_t> ids;
      BestIds(logits, keep, &ids, &scratch);
      const std::vector<int32_t> want(all.begin(),
                                      all.begin() + std::min(keep, n));
      EXPECT_EQ(ids, want) << "n " << n << " keep " << keep;
    }
  }
}

}  // namespace
}  // namespace slabserve
