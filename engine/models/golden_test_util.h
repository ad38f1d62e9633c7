// Test helpers shared by the golden tests of every model family: each fails
// the running test (and returns an empty value) instead of returning a
// status.
#ifndef SLABSERVE_ENGINE_MODELS_GOLDEN_TEST_UTIL_H_
#define SLABSERVE_ENGINE_MODELS_GOLDEN_TEST_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include "engine/eval/golden.h"
#include "engine/models/model.h"
#include "engine/models/registry.h"

namespace slabserve {

// The model in `dir`, or null.
std::unique_ptr<Model> LoadForTest(const std::string& dir,
                                   const LoadOptions& options = {});
// The golden file at `path`, or an empty one.
GoldenFile GoldenForTest(const std::string& path);
// RunCases's results, or none.
std::vector<CaseResult> RunCasesForTest(Model& model,
                                        const std::vector<GoldenCase>& cases,
                                        const RunOptions& options);

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_MODELS_GOLDEN_TEST_UTIL_H_
