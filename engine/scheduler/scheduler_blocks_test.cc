// The scheduler over a CpuBackend whose model keeps per-token state in
// blocks: TokenTestModel (its logits depend on every past token through
// them) and the B'MOJO hybrid bmojo_tiny. Preempted-and-resumed sequences
// and prefix-cache hits must give, bit for bit, what an unconstrained run
// gives.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/backend/token_test_model.h"
#include "engine/scheduler/scheduler.h"
#include "engine/scheduler/test_util.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace {

using ::slabserve::testing::ExpectSameResult;
using ::slabserve::testing::RandomRequest;
using ::slabserve::testing::ReadAll;
using ::slabserve::testing::RequestResult;
using ::slabserve::testing::RunToEnd;

std::unique_ptr<Scheduler> MakeScheduler(Model& model, int slots, int blocks,
                                         const SchedulerOptions& options) {
  auto pool = StatePool::CreateWithCapacity(model.StateLayout(), slots,
                                            model.TokenLayout(), blocks);
  EXPECT_TRUE(pool.ok()) << pool.status();
  auto backend = CpuBackend::CreateWithPool(&model, *std::move(pool));
  EXPECT_TRUE(backend.ok()) << backend.status();
  auto scheduler = Scheduler::Create(*std::move(backend), options);
  EXPECT_TRUE(scheduler.ok()) << scheduler.status();
  return *std::move(scheduler);
}

// Sampled with temperature, penalties and seeds: any change to a slot's
// state or sampler between steps shows.
std::vector<GenerationRequest> Crowd(int max_new_tokens) {
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 6; ++i) {
    GenerationRequest request =
        RandomRequest(20 + 3 * i, max_new_tokens, 70 + i);
    request.sampling.temperature = 0.9f;
    request.sampling.repetition_penalty = 1.2f;
    request.sampling.seed = 500 + i;
    request.top_logprobs = 2;
    request.n = i == 2 ? 2 : 1;
    request.priority = i % 2;
    requests.push_back(request);
  }
  return requests;
}

std::vector<RequestResult> RunTogether(
    Scheduler& scheduler, const std::vector<GenerationRequest>& requests) {
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const GenerationRequest& request : requests) {
    auto stream = scheduler.Submit(request);
    EXPECT_TRUE(stream.ok()) << stream.status();
    if (stream.ok()) streams.push_back(*stream);
  }
  std::vector<RequestResult> results;
  for (size_t i = 0; i < streams.size(); ++i) {
    results.push_back(ReadAll(*streams[i], requests[i].n));
  }
  return results;
}

// A model with per-token state and pool sizes that fit it.
struct BlockModelCase {
  std::string name;
  std::function<Model&()> model;
  int roomy_blocks;  // the crowd runs at once
  int tight_blocks;  // one or two requests at a time
  // Per crowd request: each must still fit the tight pool alone.
  int max_new_tokens;
};

Model& TokenModel() {
  static TokenTestModel* model = new TokenTestModel;  // 4 tokens per block
  return *model;
}

Model& BmojoModel() {
  return *::slabserve::testing::TinyModel("bmojo_tiny");  // 16 per block
}

class SchedulerBlocksTest : public ::testing::TestWithParam<BlockModelCase> {};

INSTANTIATE_TEST_SUITE_P(
    Models, SchedulerBlocksTest,
    ::testing::Values(BlockModelCase{"token_test_model", TokenModel, 1000, 70,
                                     100},
                      BlockModelCase{"bmojo_tiny", BmojoModel, 400, 14, 60}),
    [](const ::testing::TestParamInfo<BlockModelCase>& info) {
      return info.param.name;
    });

TEST_P(SchedulerBlocksTest, PreemptedAndResumedEqualsNeverPreempted) {
  Model& model = GetParam().model();
  const std::vector<GenerationRequest> requests =
      Crowd(GetParam().max_new_tokens);
  // Room for everyone at once: nobody is preempted.
  std::unique_ptr<Scheduler> roomy =
      MakeScheduler(model, 16, GetParam().roomy_blocks, {});
  const std::vector<RequestResult> expected = RunTogether(*roomy, requests);
  EXPECT_EQ(roomy->stats().preemptions, 0);
  // Room for one or two: sequences are swapped out and back again and again.
  std::unique_ptr<Scheduler> tight =
      MakeScheduler(model, 16, GetParam().tight_blocks, {});
  const std::vector<RequestResult> actual = RunTogether(*tight, requests);
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    ExpectSameResult(expected[i], actual[i], "request " + std::to_string(i));
  }
  const SchedulerStats stats = tight->stats();
  EXPECT_GT(stats.preemptions, 0);
  EXPECT_EQ(stats.swapped, 0);
  EXPECT_EQ(stats.swap_bytes, 0u);
  EXPECT_EQ(stats.slots_in_use, 0);
  EXPECT_EQ(stats.blocks_in_use, 0);
  EXPECT_EQ(stats.block_capacity, GetParam().tight_blocks);
  EXPECT_EQ(stats.block_tokens, model.TokenLayout().block_tokens);
}

TEST_P(SchedulerBlocksTest, PrefixCacheHitsGiveTheResultsOfRecomputation) {
  Model& model = GetParam().model();
  GenerationRequest first = RandomRequest(150, 12, 80);
  first.sampling.temperature = 0.8f;
  first.sampling.seed = 9;
  first.top_logprobs = 5;
  first.n = 2;
  GenerationRequest shares = first;  // the first 130 tokens, then its own
  shares.prompt.resize(130);
  for (int i = 0; i < 25; ++i) shares.prompt.push_back(100 + i);

  std::unique_ptr<Scheduler> uncached = MakeScheduler(model, 8, 200, {});
  const RequestResult want_first = RunToEnd(*uncached, first);
  const RequestResult want_shares = RunToEnd(*uncached, shares);

  SchedulerOptions options;
  options.prefix_cache_bytes = 1 << 20;
  options.step_token_budget = 64;
  std::unique_ptr<Scheduler> cached = MakeScheduler(model, 8, 200, options);
  ExpectSameResult(want_first, RunToEnd(*cached, first), "cold");
  // Cached prefixes pin blocks, shared with nobody now.
  EXPECT_GT(cached->stats().blocks_in_use, 0);
  const RequestResult warm = RunToEnd(*cached, first);
  EXPECT_EQ(warm.usage.cached_prompt_tokens, 150);
  ExpectSameResult(want_first, warm, "whole prompt cached");
  const RequestResult partial = RunToEnd(*cached, shares);
  EXPECT_EQ(partial.usage.cached_prompt_tokens, 128);
  ExpectSameResult(want_shares, partial, "prefix cached");
}

}  // namespace
}  // namespace slabserve
