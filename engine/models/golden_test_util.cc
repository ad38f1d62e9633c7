#include "engine/models/golden_test_util.h"

#include <utility>

#include "gtest/gtest.h"

namespace slabserve {

std::unique_ptr<Model> LoadForTest(const std::string& dir,
                                   const LoadOptions& options) {
  absl::StatusOr<std::unique_ptr<Model>> model = LoadModel(dir, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

GoldenFile GoldenForTest(const std::string& path) {
  absl::StatusOr<GoldenFile> golden = LoadGoldenFile(path);
  EXPECT_TRUE(golden.ok()) << golden.status();
  return golden.ok() ? *std::move(golden) : GoldenFile{};
}

std::vector<CaseResult> RunCasesForTest(Model& model,
                                        const std::vector<GoldenCase>& cases,
                                        const RunOptions& options) {
  absl::StatusOr<std::vector<CaseResult>> results =
      RunCases(model, cases, options);
  EXPECT_TRUE(results.ok()) << results.status();
  return results.ok() ? *std::move(results) : std::vector<CaseResult>{};
}

}  // namespace slabserve
