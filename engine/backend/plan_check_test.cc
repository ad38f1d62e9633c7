#include "engine/backend/plan_check.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace {

using ::testing::HasSubstr;

// Slots 0 .. 3 of 6 are allocated.
bool Allocated(int slot) { return slot < 4; }

StepPlan GoodPlan() {
  StepPlan plan;
  plan.chunks = {{0, {5, 6}, true}, {1, {7}, true}};
  plan.snapshots = {{0, true}};
  plan.forks = {{0, 2}, {0, 3}};
  plan.samples = {0, 1, 2, 3};
  return plan;
}

std::string Error(PlanChecker& checker, const StepPlan& plan) {
  absl::Status status = checker.Check(plan, Allocated);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
  return std::string(status.message());
}

TEST(PlanCheckerTest, AcceptsAPlanThatKeepsTheRules) {
  PlanChecker checker(6);
  EXPECT_TRUE(checker.Check(GoodPlan(), Allocated).ok());
  EXPECT_TRUE(checker.Check(StepPlan(), Allocated).ok());
}

TEST(PlanCheckerTest, NamesSlotsThatAreNotAllocatedOrOutOfRange) {
  PlanChecker checker(6);
  for (int bad : {-1, 4, 6, 1 << 30}) {
    StepPlan plan = GoodPlan();
    plan.chunks[1].slot = bad;
    EXPECT_THAT(Error(checker, plan),
                HasSubstr("chunk 1 names slot " + std::to_string(bad)));
    plan = GoodPlan();
    plan.snapshots[0].slot = bad;
    EXPECT_THAT(Error(checker, plan), HasSubstr("snapshot 0 names slot"));
    plan = GoodPlan();
    plan.forks[1].from = bad;
    EXPECT_THAT(Error(checker, plan), HasSubstr("fork 1 names slot"));
    plan = GoodPlan();
    plan.forks[0].to = bad;
    EXPECT_THAT(Error(checker, plan), HasSubstr("fork 0 names slot"));
    plan = GoodPlan();
    plan.samples[3] = bad;
    EXPECT_THAT(Error(checker, plan), HasSubstr("sample 3 names slot"));
  }
}

TEST(PlanCheckerTest, RefusesRepeatsEmptyChunksAndSelfForks) {
  PlanChecker checker(6);
  StepPlan plan = GoodPlan();
  plan.chunks[1].slot = 0;
  EXPECT_THAT(Error(checker, plan), HasSubstr("slot 0 has more than one"));
  plan = GoodPlan();
  plan.chunks[1].tokens.clear();
  EXPECT_THAT(Error(checker, plan), HasSubstr("chunk 1 (slot 1) has no"));
  plan = GoodPlan();
  plan.forks[0].to = 0;
  EXPECT_THAT(Error(checker, plan), HasSubstr("copies slot 0 onto itself"));
  plan = GoodPlan();
  plan.samples.push_back(2);
  EXPECT_THAT(Error(checker, plan), HasSubstr("slot 2 samples more than"));
}

TEST(PlanCheckerTest, ForgetsEarlierPlans) {
  // Each check stands alone: slots named by the last plan are not repeats.
  PlanChecker checker(6);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(checker.Check(GoodPlan(), Allocated).ok());
  }
  StepPlan plan = GoodPlan();
  plan.samples.push_back(1);
  Error(checker, plan);
  EXPECT_TRUE(checker.Check(GoodPlan(), Allocated).ok());
}

TEST(FailedStepTest, FailsEveryEntryInPlace) {
  const StepPlan plan = GoodPlan();
  const StepResult result = FailedStep(plan, absl::InternalError("broken"));
  ASSERT_EQ(result.chunks.size(), 2u);
  ASSERT_EQ(result.snapshots.size(), 1u);
  ASSERT_EQ(result.samples.size(), 4u);
  for (const absl::Status& status : result.chunks) {
    EXPECT_EQ(status.message(), "broken");
  }
  EXPECT_EQ(result.snapshots[0], nullptr);
  for (const auto& sample : result.samples) {
    EXPECT_EQ(sample.status().message(), "broken");
  }
}

}  // namespace
}  // namespace slabserve
