// End-to-end: the real slabserve binary serving the B'MOJO hybrid
// (bmojo_tiny) over gRPC on loopback, with a state memory so small that a
// crowd of streams outgrows its per-token blocks. Golden greedy ids, then a
// crowd whose members are preempted (swapped to host memory) and resumed:
// every stream must equal its solo run, token for token, greedy or sampled.
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e_util.h"
#include "tests/server_process.h"
#include "tests/server_suite.h"

namespace slabserve::testing {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr char kModelDir[] = "tests/golden/bmojo_tiny";

class BmojoE2eTest : public ServerSuite<BmojoE2eTest> {
 public:
  // bmojo_tiny: 16,388 B of constant state and 8 KiB per 16-token block;
  // 1 MiB holds 42 slots and 43 blocks, far fewer than the crowd needs.
  static std::vector<std::string> ServerFlags() {
    return {"--config=configs/default.textproto",
            absl::StrCat("--model=", kModelDir), "--state_memory=1MiB",
            "--block_tokens=16"};
  }
};

TEST_F(BmojoE2eTest, GreedyTokenIdsMatchGolden) {
  const std::vector<GoldenCase> cases = LoadGoldenCases(kModelDir);
  ASSERT_EQ(cases.size(), 4u);
  for (const GoldenCase& c : cases) {
    GenerateResult result = Generate(
        *stub_,
        GreedyRequest(c.prompt_ids, static_cast<int>(c.greedy_ids.size())));
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    EXPECT_THAT(result.completions.at(0).ids, ElementsAreArray(c.greedy_ids))
        << c.name;
  }
}

TEST_F(BmojoE2eTest, ModelInfoCountsBlocks) {
  const v1::ModelInfo info = ModelInfo();
  EXPECT_EQ(info.architecture(), "bmojo");
  EXPECT_EQ(info.block_tokens(), 16);
  EXPECT_GT(info.block_capacity(), 0);
}

TEST_F(BmojoE2eTest, PreemptedStreamsEqualTheirSoloRuns) {
  constexpr int kStreams = 40;
  std::mt19937 rng(11);
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < kStreams; ++i) {
    std::vector<int32_t> prompt;
    const int length = 8 + static_cast<int>(rng() % 40);
    for (int t = 0; t < length; ++t) prompt.push_back(rng() % 512);
    v1::GenerateRequest request = GreedyRequest(prompt, 40 + rng() % 40);
    if (i % 3 == 1) {
      request.mutable_sampling()->set_temperature(0.8f);
      request.mutable_sampling()->set_top_k(40);
      request.mutable_sampling()->set_seed(500 + i);
    }
    requests.push_back(std::move(request));
  }
  std::vector<std::vector<int32_t>> solo(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    GenerateResult result = Generate(*stub_, requests[i]);
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    solo[i] = result.completions.at(0).ids;
  }
  const std::string before = HttpGet(server_->metrics_port(), "/metrics");

  std::vector<GenerateResult> crowd(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      crowd[i] = Generate(*stub_, requests[i], absl::Seconds(120));
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(crowd[i].status.ok())
        << i << ": " << crowd[i].status.error_message();
    EXPECT_EQ(crowd[i].completions.at(0).ids, solo[i]) << "stream " << i;
  }
  const std::string after = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_GT(MetricValue(after, "slabserve_preemptions_total"),
            MetricValue(before, "slabserve_preemptions_total"))
      << "the crowd was meant to outgrow the blocks";
  // Every slot and block comes back.
  v1::ModelInfo info;
  for (int i = 0; i < 200; ++i) {
    info = ModelInfo();
    if (info.slots_in_use() == 0 && info.blocks_in_use() == 0) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(info.slots_in_use(), 0);
  EXPECT_EQ(info.blocks_in_use(), 0);
}

TEST_F(BmojoE2eTest, PromptLongerThanEveryBlockIsRefused) {
  const v1::ModelInfo info = ModelInfo();
  std::vector<int32_t> prompt(info.block_tokens() * info.block_capacity() + 1,
                              7);
  GenerateResult result = Generate(*stub_, GreedyRequest(prompt, 4));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(result.status.error_message(), HasSubstr("block"));
}

}  // namespace
}  // namespace slabserve::testing
