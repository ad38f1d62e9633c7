// Scheduler results against the golden greedy tokens and against running
// each sequence alone: batching, chunked prefill, the prefix cache and fork
// must not change a single token or log-probability.
#include "engine/scheduler/scheduler.h"

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

#include "engine/scheduler/test_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace slabserve {
namespace {

using ::slabserve::testing::ExpectSameResult;
using ::slabserve::testing::MakeCpuScheduler;
using ::slabserve::testing::ReadAll;
using ::slabserve::testing::RequestResult;
using ::slabserve::testing::RunToEnd;
using ::slabserve::testing::TinyModel;

std::unique_ptr<Scheduler> MakeScheduler(Model* model,
                                         SchedulerOptions options = {}) {
  return MakeCpuScheduler(model, options);
}

std::vector<int32_t> RandomPrompt(std::mt19937& rng, int length) {
  std::uniform_int_distribution<int32_t> id(4, 511);
  std::vector<int32_t> prompt = {2};  // BOS
  while (static_cast<int>(prompt.size()) < length) prompt.push_back(id(rng));
  return prompt;
}

TEST(SchedulerTest, GreedyMatchesGoldenTokens) {
  Model* model = TinyModel("griffin_tiny");
  ASSERT_NE(model, nullptr);
  std::ifstream in("tests/golden/griffin_tiny/golden.json");
  ASSERT_TRUE(in) << "golden.json missing";
  const nlohmann::json golden = nlohmann::json::parse(in);
  auto scheduler = MakeScheduler(model);
  // Every case at once: they share steps, as in a server.
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const auto& c : golden["cases"]) {
    GenerationRequest request;
    request.id = c["name"];
    request.prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    request.max_new_tokens = 16;
    request.ignore_eos = true;
    auto stream = scheduler->Submit(request);
    ASSERT_TRUE(stream.ok()) << stream.status();
    streams.push_back(*stream);
  }
  size_t i = 0;
  for (const auto& c : golden["cases"]) {
    RequestResult result = ReadAll(*streams[i++], 1);
    EXPECT_EQ(result.completions[0].ids(),
              c["greedy_ids"].get<std::vector<int32_t>>())
        << c["name"];
    EXPECT_EQ(result.completions[0].finish, FinishReason::kLength);
    EXPECT_EQ(result.usage.prompt_tokens, c["prompt_ids"].size());
    EXPECT_EQ(result.usage.completion_tokens, 16);
  }
}

TEST(SchedulerTest, RejectsBadRequestsWithClearMessages) {
  Model* srm = TinyModel("srm_tiny");  // max_positions 64
  ASSERT_NE(srm, nullptr);
  auto scheduler = MakeScheduler(srm);
  const int capacity = scheduler->stats().slot_capacity;
  auto expect_invalid = [&](GenerationRequest request,
                            const std::string& message) {
    auto stream = scheduler->Submit(std::move(request));
    ASSERT_FALSE(stream.ok()) << message;
    EXPECT_EQ(stream.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(stream.status().message().find(message), std::string::npos)
        << stream.status().message();
  };
  GenerationRequest good;
  good.prompt = {2, 10, 11};
  GenerationRequest request = good;
  request.prompt.clear();
  expect_invalid(request, "prompt is empty");
  request = good;
  request.prompt[1] = 512;
  expect_invalid(request,
                 "prompt token 512 at index 1 is outside the vocabulary");
  request = good;
  request.max_new_tokens = 0;
  expect_invalid(request, "max_new_tokens must be positive");
  request = good;
  request.n = 0;
  expect_invalid(request, "n must be between 1 and the slot capacity");
  request.n = capacity + 1;
  expect_invalid(request, "n must be between 1 and the slot capacity");
  request = good;
  request.prompt.assign(65, 7);
  expect_invalid(request,
                 "prompt of 65 tokens exceeds the model's maximum of 64 "
                 "positions");
  request = good;
  request.prompt.assign(10, 7);
  request.max_new_tokens = 56;
  expect_invalid(request, "(at most 55 new tokens)");
  request = good;
  request.sampling.top_p = 2.0f;
  expect_invalid(request, "top_p must be in (0, 1]");
  request = good;
  request.stop_token_ids = {-1};
  expect_invalid(request, "stop token id -1");
  request = good;
  request.top_logprobs = -2;
  expect_invalid(request, "top_logprobs");

  // The longest allowed request uses every position and ends on length.
  request = good;
  request.prompt.assign(10, 7);
  request.max_new_tokens = 55;
  request.ignore_eos = true;
  RequestResult result = RunToEnd(*scheduler, request);
  EXPECT_EQ(result.completions[0].tokens.size(), 55u);
  EXPECT_EQ(result.completions[0].finish, FinishReason::kLength);
}

TEST(SchedulerTest, StopTokenAndEosEndACompletion) {
  Model* model = TinyModel("griffin_tiny");
  ASSERT_NE(model, nullptr);
  auto scheduler = MakeScheduler(model);
  GenerationRequest request;
  request.prompt = {2, 100, 200, 300};
  request.max_new_tokens = 12;
  request.ignore_eos = true;
  const std::vector<int32_t> free_run =
      RunToEnd(*scheduler, request).completions[0].ids();
  ASSERT_EQ(free_run.size(), 12u);
  request.stop_token_ids = {free_run[5]};
  RequestResult stopped = RunToEnd(*scheduler, request);
  const auto first = std::find(free_run.begin(), free_run.end(), free_run[5]);
  EXPECT_EQ(stopped.completions[0].ids(),
            std::vector<int32_t>(free_run.begin(), first + 1));
  EXPECT_EQ(stopped.completions[0].finish, FinishReason::kStop);
}

// Probes run alone, then among ~1000 concurrent random requests arriving
// over time: every token and log-probability must be identical.
TEST(SchedulerTest, ResultsDoNotDependOnTheBatch) {
  Model* model = TinyModel("griffin_tiny");
  ASSERT_NE(model, nullptr);
  std::mt19937 rng(2024);
  std::vector<GenerationRequest> probes(4);
  probes[0].prompt = RandomPrompt(rng, 13);
  probes[0].max_new_tokens = 24;
  probes[0].top_logprobs = 3;
  probes[1].prompt = RandomPrompt(rng, 37);
  probes[1].max_new_tokens = 24;
  probes[1].sampling.temperature = 0.9f;
  probes[1].sampling.top_p = 0.9f;
  probes[1].sampling.seed = 1234;
  probes[1].top_logprobs = 2;
  probes[2].prompt = RandomPrompt(rng, 300);  // prefilled in chunks
  probes[2].max_new_tokens = 16;
  probes[2].top_logprobs = 0;
  probes[3].prompt = RandomPrompt(rng, 20);
  probes[3].max_new_tokens = 20;
  probes[3].n = 2;
  probes[3].sampling.temperature = 1.2f;
  probes[3].sampling.top_k = 40;
  probes[3].sampling.repetition_penalty = 1.2f;
  probes[3].sampling.seed = 99;
  probes[3].top_logprobs = 1;
  for (GenerationRequest& probe : probes) probe.ignore_eos = true;

  SchedulerOptions options;
  options.step_token_budget = 1024;
  std::vector<RequestResult> alone;
  {
    auto scheduler = MakeScheduler(model, options);
    for (const GenerationRequest& probe : probes) {
      alone.push_back(RunToEnd(*scheduler, probe));
    }
  }

  std::atomic<int> largest_batch{0};
  options.on_step = [&](const StepMetrics& metrics) {
    largest_batch = std::max(largest_batch.load(), metrics.batch_size);
  };
  auto scheduler = MakeScheduler(model, options);
  std::vector<std::shared_ptr<RequestStream>> crowd;
  std::vector<std::shared_ptr<RequestStream>> probe_streams;
  std::uniform_int_distribution<int> length(1, 40), new_tokens(1, 30);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  for (int i = 0; i < 1000; ++i) {
    GenerationRequest request;
    request.prompt = RandomPrompt(rng, length(rng));
    request.max_new_tokens = new_tokens(rng);
    if (unit(rng) < 0.5f) {
      request.sampling.temperature = 0.5f + unit(rng);
      request.sampling.seed = rng();
    }
    request.top_logprobs = static_cast<int>(unit(rng) * 3) - 1;
    auto stream = scheduler->Submit(request);
    ASSERT_TRUE(stream.ok()) << stream.status();
    crowd.push_back(*stream);
    if (i % 250 == 100) {
      // Each probe arrives while a different mix is in flight.
      auto probe = scheduler->Submit(probes[probe_streams.size()]);
      ASSERT_TRUE(probe.ok()) << probe.status();
      probe_streams.push_back(*probe);
    }
    if (i % 50 == 49) absl::SleepFor(absl::Milliseconds(2));
  }
  for (size_t p = 0; p < probes.size(); ++p) {
    RequestResult result = ReadAll(*probe_streams[p], probes[p].n);
    ExpectSameResult(alone[p], result, "probe " + std::to_string(p));
  }
  int finished = 0;
  for (auto& stream : crowd) {
    RequestResult result = ReadAll(*stream, 1);
    finished += result.completions[0].ended;
  }
  EXPECT_EQ(finished, 1000);
  RecordProperty("largest_batch", largest_batch.load());
  EXPECT_GE(largest_batch.load(), 100) << "probes ran without company";
  EXPECT_EQ(scheduler->stats().slots_in_use, 0);
  EXPECT_GT(scheduler->stats().steps, 0);
}

TEST(SchedulerTest, PrefixCacheGivesTheSameTokensAsRecomputation) {
  Model* model = TinyModel("griffin_tiny");
  ASSERT_NE(model, nullptr);
  std::mt19937 rng(7);
  const std::vector<int32_t> base = RandomPrompt(rng, 150);
  std::vector<int32_t> shares_two_blocks(base.begin(), base.begin() + 130);
  std::vector<int32_t> tail = RandomPrompt(rng, 21);
  shares_two_blocks.insert(shares_two_blocks.end(), tail.begin() + 1,
                           tail.end());
  const std::vector<int32_t> shares_one_block(base.begin(), base.begin() + 70);

  std::vector<GenerationRequest> requests;
  for (const auto& prompt : {base, base, shares_two_blocks, shares_one_block}) {
    GenerationRequest request;
    request.prompt = prompt;
    request.max_new_tokens = 12;
    request.ignore_eos = true;
    request.sampling.temperature = 0.8f;
    request.sampling.seed = 5;
    request.top_logprobs = 2;
    requests.push_back(request);
  }
  SchedulerOptions options;
  options.step_token_budget = 100;
  std::vector<RequestResult> recomputed;
  {
    auto scheduler = MakeScheduler(model, options);
    for (const auto& request : requests) {
      recomputed.push_back(RunToEnd(*scheduler, request));
      EXPECT_EQ(recomputed.back().usage.cached_prompt_tokens, 0);
    }
  }
  // With the cache on, chunks stop on block boundaries: 64, 128, then the
  // prompt end each leave an entry.
  options.step_token_budget = 64;
  options.prefix_cache_bytes = 16 << 20;
  auto scheduler = MakeScheduler(model, options);
  const int expected_cached[] = {0, 150, 128, 64};
  for (size_t i = 0; i < requests.size(); ++i) {
    RequestResult result = RunToEnd(*scheduler, requests[i]);
    ExpectSameResult(recomputed[i], result, "request " + std::to_string(i));
    EXPECT_EQ(result.usage.cached_prompt_tokens, expected_cached[i]) << i;
    EXPECT_EQ(result.usage.prompt_tokens,
              static_cast<int>(requests[i].prompt.size()));
  }
}

TEST(SchedulerTest, ForkedCompletionsMatchSingleRuns) {
  Model* model = TinyModel("griffin_tiny");
  ASSERT_NE(model, nullptr);
  auto scheduler = MakeScheduler(model);
  std::mt19937 rng(11);
  GenerationRequest request;
  request.prompt = RandomPrompt(rng, 25);
  request.max_new_tokens = 15;
  request.ignore_eos = true;
  request.sampling.temperature = 1.0f;
  request.sampling.seed = 40;
  request.top_logprobs = 1;
  request.n = 3;
  RequestResult forked = RunToEnd(*scheduler, request);
  EXPECT_EQ(forked.usage.completion_tokens, 45);
  // Completion i samples with seed + i; alone it gives the same tokens.
  for (int i = 0; i < 3; ++i) {
    GenerationRequest single = request;
    single.n = 1;
    single.sampling.seed = request.sampling.seed + i;
    RequestResult alone = RunToEnd(*scheduler, single);
    RequestResult picked;
    picked.completions = {forked.completions[i]};
    ExpectSameResult(alone, picked, "completion " + std::to_string(i));
  }
  EXPECT_NE(forked.completions[0].ids(), forked.completions[1].ids());
  EXPECT_EQ(scheduler->stats().slots_in_use, 0);
}

}  // namespace
}  // namespace slabserve
