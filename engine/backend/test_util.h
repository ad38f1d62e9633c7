// The tiny golden models (tests/golden) that backend tests run on, one of
// each architecture, a state budget that holds a crowd on any of them, and
// checks every backend must pass.
#ifndef SLABSERVE_ENGINE_BACKEND_TEST_UTIL_H_
#define SLABSERVE_ENGINE_BACKEND_TEST_UTIL_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/backend/backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slabserve::testing {

// Their files are in the runfiles of every test that depends on
// //engine/backend:test_util.
inline constexpr const char* kGoldenModels[] = {"griffin_tiny", "hawk_tiny",
                                                "srm_tiny"};

inline constexpr size_t kGoldenStateBudgetBytes = size_t{256} << 20;

// The directory of golden model `name`, relative to the runfiles root.
inline std::string GoldenModelDir(const std::string& name) {
  return "tests/golden/" + name;
}

// Submits a plan that names a slot past the capacity beside a good chunk
// and sample: every entry must fail INTERNAL and no state may change. Then
// runs the good chunk alone and returns its sample, which the caller
// compares with what a fresh slot gives.
inline absl::StatusOr<SampledToken> SampleAfterBrokenPlan(
    Backend& backend, const SlotSampling& sampling,
    const std::vector<int32_t>& prompt) {
  const int slot = backend.Allocate(sampling);
  StepPlan broken;
  broken.chunks.push_back({slot, prompt, true});
  broken.samples = {slot, backend.capacity() + 5};
  backend.Submit(std::move(broken));
  StepResult failed = backend.Wait();
  EXPECT_EQ(failed.chunks.size(), 1u);
  EXPECT_EQ(failed.samples.size(), 2u);
  for (const absl::Status& status : failed.chunks) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
    EXPECT_THAT(status.message(), ::testing::HasSubstr("sample 1 names slot"));
  }
  for (const absl::StatusOr<SampledToken>& sample : failed.samples) {
    EXPECT_EQ(sample.status().code(), absl::StatusCode::kInternal);
  }
  StepPlan good;
  good.chunks.push_back({slot, prompt, true});
  good.samples = {slot};
  backend.Submit(std::move(good));
  StepResult result = backend.Wait();
  backend.Release(slot);
  if (!result.chunks[0].ok()) return result.chunks[0];
  return result.samples[0];
}

}  // namespace slabserve::testing

#endif  // SLABSERVE_ENGINE_BACKEND_TEST_UTIL_H_
