#include "engine/scheduler/prefill_shares.h"

#include <numeric>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace {

using ::testing::ElementsAre;

int Sum(const std::vector<int>& v) {
  return std::accumulate(v.begin(), v.end(), 0);
}

TEST(FairPrefillSharesTest, ShortPromptsFinishBesideAHugeOne) {
  // A 100k-token prompt admitted first does not hold back an 8-token one.
  EXPECT_THAT(FairPrefillShares({100000, 8}, 512), ElementsAre(504, 8));
  EXPECT_THAT(FairPrefillShares({100000, 8, 30}, 512), ElementsAre(474, 8, 30));
}

TEST(FairPrefillSharesTest, LongPromptsShareEqually) {
  EXPECT_THAT(FairPrefillShares({1000, 1000, 1000, 1000}, 512),
              ElementsAre(128, 128, 128, 128));
  EXPECT_THAT(FairPrefillShares({1000, 100, 1000}, 400),
              ElementsAre(150, 100, 150));
}

TEST(FairPrefillSharesTest, NeverMoreThanTheBudgetOrThePrompt) {
  EXPECT_THAT(FairPrefillShares({3, 5}, 512), ElementsAre(3, 5));
  EXPECT_THAT(FairPrefillShares({}, 512), ElementsAre());
  // More prompts than tokens: the shortest get one each, the rest wait.
  const std::vector<int> shares = FairPrefillShares({9, 7, 5, 3}, 2);
  EXPECT_THAT(shares, ElementsAre(0, 0, 1, 1));
  for (int budget : {1, 17, 100, 4096}) {
    const std::vector<int> remaining = {900, 3, 77, 1, 2000, 64};
    const std::vector<int> s = FairPrefillShares(remaining, budget);
    EXPECT_EQ(Sum(s), std::min(budget, Sum(remaining))) << budget;
    for (size_t i = 0; i < s.size(); ++i) {
      EXPECT_GE(s[i], 0);
      EXPECT_LE(s[i], remaining[i]);
    }
  }
}

}  // namespace
}  // namespace slabserve
