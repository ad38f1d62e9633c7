#include "engine/models/bmojo.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/eval/golden.h"
#include "engine/models/registry.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace {

const std::string kDir = "tests/golden/bmojo_tiny";

std::unique_ptr<Model> Load(const EideticConfig& eidetic = {}) {
  LoadOptions options;
  options.eidetic = eidetic;
  absl::StatusOr<std::unique_ptr<Model>> model = LoadModel(kDir, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

GoldenFile Golden() {
  absl::StatusOr<GoldenFile> golden = LoadGoldenFile(kDir + "/golden.json");
  EXPECT_TRUE(golden.ok()) << golden.status();
  return golden.ok() ? *std::move(golden) : GoldenFile{};
}

std::vector<CaseResult> RunAll(Model& model,
                               const std::vector<GoldenCase>& cases,
                               int prompt_chunk, bool batched) {
  absl::StatusOr<std::vector<CaseResult>> results =
      RunCases(model, cases, {prompt_chunk, batched});
  EXPECT_TRUE(results.ok()) << results.status();
  return results.ok() ? *std::move(results) : std::vector<CaseResult>{};
}

TEST(BmojoGoldenTest, EveryCaseMatchesGolden) {
  std::unique_ptr<Model> model = Load();
  ASSERT_NE(model, nullptr);
  const GoldenFile golden = Golden();
  for (int chunk : {1, 0}) {
    const std::vector<CaseResult> results =
        RunAll(*model, golden.cases, chunk, false);
    ASSERT_EQ(results.size(), golden.cases.size());
    for (size_t i = 0; i < results.size(); ++i) {
      const CaseReport report = CompareCase(golden, i, results[i]);
      EXPECT_TRUE(report.ok()) << report.name << ": " << report.problems[0];
      std::printf("%s chunk %d max|dlogit| %.3g\n", report.name.c_str(), chunk,
                  report.max_logit_diff);
    }
  }
}

}  // namespace
}  // namespace slabserve
