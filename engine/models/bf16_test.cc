// BF16 projections (LoadOptions::weights = kBf16) on every golden model:
// logits within the documented BF16 tolerance of the F32 references,
// greedy continuations that agree where the reference's top two logits are
// not nearly tied, and the same batch invariance as F32.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/eval/golden.h"
#include "engine/models/golden_test_util.h"
#include "engine/models/registry.h"
#include "gtest/gtest.h"
#include "kernels/cpu/matmul_bf16.h"

namespace slabserve {
namespace {

struct GoldenModel {
  const char* dir;
  // Documented in docs/architecture.md ("BF16 weights"): the largest
  // |Δ logit| of a case's last logits against the F32 golden reference.
  double logit_tolerance;
};

std::unique_ptr<Model> LoadBf16(const std::string& dir) {
  LoadOptions options;
  options.weights = cpu::WeightPrecision::kBf16;
  return LoadForTest(dir, options);
}

GoldenFile Golden(const std::string& dir) {
  return GoldenForTest(dir + "/golden.json");
}

std::vector<CaseResult> RunGolden(Model& model, const GoldenFile& golden,
                                  bool batched) {
  return RunCasesForTest(model, golden.cases, {/*prompt_chunk=*/0, batched});
}

class Bf16GoldenTest : public ::testing::TestWithParam<GoldenModel> {
 protected:
  void ExpectWithinTolerance(Model& model, const GoldenFile& golden) {
    const double tolerance = GetParam().logit_tolerance;
    const std::vector<CaseResult> results = RunGolden(model, golden, false);
    ASSERT_EQ(results.size(), golden.cases.size());
    double worst = 0;
    for (size_t i = 0; i < results.size(); ++i) {
      const CaseReport report = CompareCase(golden, i, results[i]);
      worst = std::max(worst, report.max_logit_diff);
      EXPECT_LE(report.max_logit_diff, tolerance) << report.name;
      // The first greedy token is the argmax of the compared logits: it
      // must agree unless the reference's top two are nearly tied.
      std::vector<double> sorted = golden.cases[i].last_logits;
      std::sort(sorted.rbegin(), sorted.rend());
      if (sorted[0] - sorted[1] > 2 * tolerance) {
        EXPECT_EQ(results[i].greedy_ids.at(0), golden.cases[i].greedy_ids.at(0))
            << report.name;
      }
    }
    std::printf("%s: bf16 products on %s, worst |Δ logit| %.3g\n",
                GetParam().dir, cpu::Bf16IsaName(cpu::ActiveBf16Isa()), worst);
  }
};

// On every instruction set this CPU has, so the tolerance is known to hold
// for the converting sets as well as the dot-product ones.
TEST_P(Bf16GoldenTest, LogitsWithinTheBf16Tolerance) {
  const std::string dir = std::string("tests/golden/") + GetParam().dir;
  std::unique_ptr<Model> model = LoadBf16(dir);
  ASSERT_NE(model, nullptr);
  const GoldenFile golden = Golden(dir);
  ASSERT_FALSE(golden.cases.empty());
  for (cpu::Bf16Isa isa :
       {cpu::Bf16Isa::kGeneric, cpu::Bf16Isa::kAvx2, cpu::Bf16Isa::kAvx512,
        cpu::Bf16Isa::kAvx512Bf16, cpu::Bf16Isa::kAmx}) {
    if (!cpu::SetBf16Isa(isa)) continue;
    SCOPED_TRACE(cpu::Bf16IsaName(isa));
    ExpectWithinTolerance(*model, golden);
  }
  cpu::SetBf16Isa(cpu::BestBf16Isa());
}

TEST_P(Bf16GoldenTest, OneBatchEqualsOneByOneBitwise) {
  const std::string dir = std::string("tests/golden/") + GetParam().dir;
  std::unique_ptr<Model> model = LoadBf16(dir);
  ASSERT_NE(model, nullptr);
  const GoldenFile golden = Golden(dir);
  const std::vector<CaseResult> alone = RunGolden(*model, golden, false);
  const std::vector<CaseResult> crowd = RunGolden(*model, golden, true);
  ASSERT_EQ(alone.size(), crowd.size());
  for (size_t i = 0; i < alone.size(); ++i) {
    EXPECT_EQ(alone[i].greedy_ids, crowd[i].greedy_ids);
    ASSERT_EQ(alone[i].last_logits.size(), crowd[i].last_logits.size());
    EXPECT_EQ(
        std::memcmp(alone[i].last_logits.data(), crowd[i].last_logits.data(),
                    alone[i].last_logits.size() * sizeof(float)),
        0)
        << golden.cases[i].name;
  }
}

INSTANTIATE_TEST_SUITE_P(AllFamilies, Bf16GoldenTest,
                         ::testing::Values(GoldenModel{"griffin_tiny", 0.4},
                                           GoldenModel{"hawk_tiny", 0.2},
                                           GoldenModel{"srm_tiny", 0.08},
                                           GoldenModel{"bmojo_tiny", 0.1}),
                         [](const auto& info) {
                           return std::string(info.param.dir);
                         });

}  // namespace
}  // namespace slabserve
