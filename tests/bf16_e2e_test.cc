// End-to-end: the real slabserve binary with BF16 projections
// (--device_weights=bf16) on the CPU backend, serving griffin_tiny over gRPC
// on loopback. The server's greedy ids equal the engine's own BF16 run of
// the golden prompts, and a crowd of concurrent streams equals their solo
// runs.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/eval/golden.h"
#include "engine/models/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e_util.h"
#include "tests/server_process.h"
#include "tests/server_suite.h"

namespace slabserve::testing {
namespace {

using ::testing::ElementsAreArray;

constexpr char kModelDir[] = "tests/golden/griffin_tiny";

class Bf16E2eTest : public ServerSuite<Bf16E2eTest> {
 public:
  static std::vector<std::string> ServerFlags() {
    return {"--config=configs/default.textproto",
            absl::StrCat("--model=", kModelDir), "--backend=cpu",
            "--device_weights=bf16", "--state_memory=16MiB"};
  }
};

TEST_F(Bf16E2eTest, GreedyIdsEqualTheEnginesBf16Run) {
  LoadOptions options;
  options.weights = cpu::WeightPrecision::kBf16;
  absl::StatusOr<std::unique_ptr<Model>> model = LoadModel(kModelDir, options);
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<GoldenFile> golden =
      LoadGoldenFile(absl::StrCat(kModelDir, "/golden.json"));
  ASSERT_TRUE(golden.ok()) << golden.status();
  const std::vector<slabserve::GoldenCase>& cases = golden->cases;
  ASSERT_FALSE(cases.empty());
  absl::StatusOr<std::vector<CaseResult>> engine =
      RunCases(**model, cases, {/*prompt_chunk=*/0, /*batched=*/false});
  ASSERT_TRUE(engine.ok()) << engine.status();
  bool any_differs_from_f32 = false;
  for (size_t i = 0; i < cases.size(); ++i) {
    GenerateResult result =
        Generate(*stub_, GreedyRequest(cases[i].prompt_ids, 16));
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    EXPECT_THAT(result.completions.at(0).ids,
                ElementsAreArray((*engine)[i].greedy_ids))
        << cases[i].name;
    any_differs_from_f32 |= (*engine)[i].greedy_ids != cases[i].greedy_ids;
  }
  // The server really ran BF16: some continuation left the F32 goldens.
  EXPECT_TRUE(any_differs_from_f32);
}

TEST_F(Bf16E2eTest, ConcurrentStreamsMatchTheirSoloRuns) {
  constexpr int kStreams = 40;
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < kStreams; ++i) {
    std::vector<int32_t> prompt = {2};
    for (int t = 0; t <= i % 23; ++t) prompt.push_back(3 + (i * 37 + t) % 509);
    requests.push_back(GreedyRequest(prompt, 12));
  }
  std::vector<std::vector<int32_t>> solo(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    GenerateResult result = Generate(*stub_, requests[i]);
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    solo[i] = result.completions.at(0).ids;
  }
  std::vector<GenerateResult> crowd(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] { crowd[i] = Generate(*stub_, requests[i]); });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(crowd[i].status.ok()) << crowd[i].status.error_message();
    EXPECT_EQ(crowd[i].completions.at(0).ids, solo[i]) << "stream " << i;
  }
}

}  // namespace
}  // namespace slabserve::testing
