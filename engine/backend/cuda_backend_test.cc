// The CUDA backend against the CPU backend on every golden model, batch
// invariance on the device, snapshot/restore and swap, and the scheduler's
// crowd through it. Every
// test skips without a CUDA device.
//
// Tolerances: F32 weights give the CPU's greedy ids exactly and
// log-probabilities within 2e-4 (cuBLAS and the device's libm round
// differently from the CPU's kernels; the golden models' logits are O(10));
// BF16 weights (activations rounded to BF16 for each product) within 0.15,
// and only the first greedy token is required to match.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/backend/registry.h"
#include "engine/backend/test_util.h"
#include "engine/models/registry.h"
#include "engine/scheduler/scheduler.h"
#include "engine/scheduler/test_util.h"
#include "kernels/cuda/test_util.h"

namespace slabserve {
namespace {

using testing::GoldenModelDir;
using testing::kGoldenModels;
using testing::kGoldenStateBudgetBytes;

std::unique_ptr<Backend> Cuda(Model* model, const std::string& name,
                              bool bf16 = false) {
  BackendOptions options;
  options.model_dir = GoldenModelDir(name);
  options.bf16_weights = bf16;
  auto backend = CreateBackend("cuda", model, kGoldenStateBudgetBytes, options);
  EXPECT_TRUE(backend.ok()) << backend.status();
  return backend.ok() ? *std::move(backend) : nullptr;
}

std::vector<int32_t> Prompt(int length, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> id(4, 500);
  std::vector<int32_t> prompt = {2};
  while (static_cast<int>(prompt.size()) < length) prompt.push_back(id(rng));
  return prompt;
}

// Greedy continuations of `prompts` run together, one step per token; each
// sequence's tokens in order.
std::vector<std::vector<SampledToken>> Decode(
    Backend& backend, const std::vector<std::vector<int32_t>>& prompts,
    int steps) {
  std::vector<int> slots;
  for (const auto& prompt : prompts) {
    SlotSampling sampling;
    sampling.top_logprobs = 5;
    sampling.prompt = prompt;
    slots.push_back(backend.Allocate(sampling));
  }
  std::vector<std::vector<SampledToken>> out(prompts.size());
  for (int step = 0; step < steps; ++step) {
    StepPlan plan;
    for (size_t i = 0; i < prompts.size(); ++i) {
      std::vector<int32_t> tokens =
          step == 0 ? prompts[i] : std::vector<int32_t>{out[i].back().id};
      plan.chunks.push_back({slots[i], std::move(tokens), true});
      plan.samples.push_back(slots[i]);
    }
    backend.Submit(std::move(plan));
    StepResult result = backend.Wait();
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_TRUE(result.chunks[i].ok()) << result.chunks[i];
      EXPECT_TRUE(result.samples[i].ok()) << result.samples[i].status();
      if (!result.samples[i].ok()) return out;
      out[i].push_back(*result.samples[i]);
    }
  }
  for (int slot : slots) backend.Release(slot);
  return out;
}

void ExpectClose(const std::vector<SampledToken>& cpu,
                 const std::vector<SampledToken>& gpu, float tolerance,
                 size_t exact_ids, const std::string& what) {
  ASSERT_EQ(cpu.size(), gpu.size()) << what;
  for (size_t t = 0; t < cpu.size(); ++t) {
    if (t < exact_ids) {
      ASSERT_EQ(cpu[t].id, gpu[t].id) << what << " token " << t;
    }
    // After the first different id the two contexts differ: nothing later
    // is comparable, even where an id happens to coincide.
    if (cpu[t].id != gpu[t].id) break;
    EXPECT_NEAR(cpu[t].logprob, gpu[t].logprob, tolerance)
        << what << " token " << t;
  }
}

TEST(CudaBackendTest, GreedyMatchesCpuOnEveryGoldenModel) {
  SKIP_WITHOUT_CUDA_DEVICE();
  for (const char* name : kGoldenModels) {
    auto model = LoadModel(GoldenModelDir(name));
    ASSERT_TRUE(model.ok()) << model.status();
    auto cpu = CpuBackend::Create(model->get(), kGoldenStateBudgetBytes);
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    const std::vector<std::vector<int32_t>> prompts = {Prompt(9, 1),
                                                       Prompt(23, 2)};
    const auto want = Decode(**cpu, prompts, 24);
    for (bool bf16 : {false, true}) {
      std::unique_ptr<Backend> gpu = Cuda(model->get(), name, bf16);
      ASSERT_NE(gpu, nullptr);
      const auto got = Decode(*gpu, prompts, 24);
      for (size_t i = 0; i < prompts.size(); ++i) {
        ExpectClose(want[i], got[i], bf16 ? 0.15f : 2e-4f, bf16 ? 1 : 24,
                    std::string(name) + (bf16 ? " bf16" : " f32"));
      }
    }
  }
}

TEST(CudaBackendTest, BrokenPlanFailsTheStepAndTouchesNothing) {
  SKIP_WITHOUT_CUDA_DEVICE();
  auto model = LoadModel(GoldenModelDir("griffin_tiny"));
  ASSERT_TRUE(model.ok()) << model.status();
  auto cpu = CpuBackend::Create(model->get(), kGoldenStateBudgetBytes);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  std::unique_ptr<Backend> gpu = Cuda(model->get(), "griffin_tiny");
  ASSERT_NE(gpu, nullptr);
  SlotSampling greedy;
  greedy.top_logprobs = 0;
  const std::vector<int32_t> prompt = Prompt(11, 3);
  auto want = testing::SampleAfterBrokenPlan(**cpu, greedy, prompt);
  auto got = testing::SampleAfterBrokenPlan(*gpu, greedy, prompt);
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectClose({*want}, {*got}, 2e-4f, 1, "after a broken plan");
}

TEST(CudaBackendTest, ResultsDoNotDependOnTheBatch) {
  SKIP_WITHOUT_CUDA_DEVICE();
  for (const char* name : kGoldenModels) {
    auto model = LoadModel(GoldenModelDir(name));
    ASSERT_TRUE(model.ok()) << model.status();
    std::unique_ptr<Backend> gpu = Cuda(model->get(), name);
    ASSERT_NE(gpu, nullptr);
    const std::vector<int32_t> probe = Prompt(17, 3);
    const auto alone = Decode(*gpu, {probe}, 16);
    std::vector<std::vector<int32_t>> crowd;
    for (int i = 0; i < 63; ++i) crowd.push_back(Prompt(1 + i % 29, 100 + i));
    crowd.insert(crowd.begin() + 31, probe);
    const auto together = Decode(*gpu, crowd, 16);
    for (size_t t = 0; t < alone[0].size(); ++t) {
      EXPECT_EQ(alone[0][t].id, together[31][t].id) << name << " token " << t;
      EXPECT_EQ(alone[0][t].logprob, together[31][t].logprob)
          << name << " token " << t;
    }
  }
}

// Swapping a sequence out to host memory and back, or snapshotting and
// restoring it, continues it bit for bit.
TEST(CudaBackendTest, SwapAndRestoreContinueExactly) {
  SKIP_WITHOUT_CUDA_DEVICE();
  for (const char* name : kGoldenModels) {
    auto model = LoadModel(GoldenModelDir(name));
    ASSERT_TRUE(model.ok()) << model.status();
    std::unique_ptr<Backend> gpu = Cuda(model->get(), name);
    ASSERT_NE(gpu, nullptr);
    const std::vector<int32_t> prompt = Prompt(11, 6);
    const auto straight = Decode(*gpu, {prompt}, 8);
    SlotSampling sampling;
    sampling.top_logprobs = 5;
    sampling.prompt = prompt;
    int slot = gpu->Allocate(sampling);
    StepPlan plan;
    plan.chunks.push_back({slot, prompt, true});
    plan.snapshots.push_back({slot, true});
    gpu->Submit(std::move(plan));
    StepResult first = gpu->Wait();
    ASSERT_TRUE(first.chunks[0].ok()) << first.chunks[0];
    ASSERT_NE(first.snapshots[0], nullptr);
    // Restore the snapshot (with logits) into a fresh slot and swap that one
    // out and back in before sampling.
    gpu->Release(slot);
    slot = gpu->Allocate(sampling);
    ASSERT_TRUE(gpu->Restore(slot, *first.snapshots[0]).ok());
    std::unique_ptr<SwappedSlots> swapped = gpu->SwapOut({slot});
    auto back = gpu->SwapIn(*swapped);
    ASSERT_TRUE(back.ok()) << back.status();
    slot = (*back)[0];
    std::vector<SampledToken> tokens;
    for (int step = 0; step < 8; ++step) {
      StepPlan next;
      if (step > 0) next.chunks.push_back({slot, {tokens.back().id}, true});
      next.samples.push_back(slot);
      gpu->Submit(std::move(next));
      StepResult result = gpu->Wait();
      ASSERT_TRUE(result.samples[0].ok()) << result.samples[0].status();
      tokens.push_back(*result.samples[0]);
    }
    for (size_t t = 0; t < tokens.size(); ++t) {
      EXPECT_EQ(straight[0][t].id, tokens[t].id) << name << " token " << t;
      EXPECT_EQ(straight[0][t].logprob, tokens[t].logprob) << name;
    }
    gpu->Release(slot);
  }
}

TEST(CudaBackendTest, SchedulerCrowdGivesEachRequestItsAloneResult) {
  SKIP_WITHOUT_CUDA_DEVICE();
  auto model = LoadModel(GoldenModelDir("griffin_tiny"));
  ASSERT_TRUE(model.ok()) << model.status();
  auto make = [&]() {
    SchedulerOptions options;
    options.step_token_budget = 1024;
    auto scheduler =
        Scheduler::Create(Cuda(model->get(), "griffin_tiny"), options);
    EXPECT_TRUE(scheduler.ok()) << scheduler.status();
    return *std::move(scheduler);
  };
  GenerationRequest probe;
  probe.prompt = Prompt(40, 4);
  probe.max_new_tokens = 20;
  probe.top_logprobs = 2;
  probe.sampling.temperature = 0.9f;
  probe.sampling.top_k = 40;
  probe.sampling.top_p = 0.9f;
  probe.sampling.repetition_penalty = 1.2f;
  probe.sampling.seed = 77;
  probe.ignore_eos = true;
  const testing::RequestResult alone = testing::RunToEnd(*make(), probe);
  auto scheduler = make();
  std::vector<std::shared_ptr<RequestStream>> crowd;
  std::mt19937 rng(5);
  for (int i = 0; i < 300; ++i) {
    GenerationRequest request;
    request.prompt = Prompt(1 + static_cast<int>(rng() % 40), rng());
    request.max_new_tokens = 1 + static_cast<int>(rng() % 30);
    request.sampling.temperature = (i % 2) ? 0.8f : 0.0f;
    request.sampling.seed = rng();
    auto stream = scheduler->Submit(request);
    ASSERT_TRUE(stream.ok()) << stream.status();
    crowd.push_back(*stream);
  }
  auto probe_stream = scheduler->Submit(probe);
  ASSERT_TRUE(probe_stream.ok()) << probe_stream.status();
  const testing::RequestResult together = testing::ReadAll(**probe_stream, 1);
  ASSERT_EQ(alone.completions[0].ids(), together.completions[0].ids());
  for (size_t t = 0; t < alone.completions[0].tokens.size(); ++t) {
    EXPECT_EQ(alone.completions[0].tokens[t].logprob,
              together.completions[0].tokens[t].logprob);
  }
  for (auto& stream : crowd) {
    EXPECT_TRUE(testing::ReadAll(*stream, 1).completions[0].ended);
  }
  EXPECT_EQ(scheduler->stats().slots_in_use, 0);
}

}  // namespace
}  // namespace slabserve
