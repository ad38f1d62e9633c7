// CUDA graphs against eager steps: the same sequences decoded by a backend
// that runs decode steps as graphs (padded to batch-size buckets) and by
// one that runs every step eagerly give the same ids, logprobs and top
// logprobs, bit for bit, on every golden model in F32 and BF16. The batch
// shrinks across the buckets as sequences end (so most steps pad), and a
// long prompt joining midway runs a mixed (eager) step that grows the
// activation buffers, so the graphs are dropped and captured again. Skips
// without a CUDA device.
//
// Padded steps multiply more rows than eager ones; the equality holds as
// long as cuBLAS gives a row the same result whatever the row count, which
// cuda_backend_test's batch-invariance test checks on its own.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/backend/cuda_backend.h"
#include "engine/backend/test_util.h"
#include "engine/models/registry.h"
#include "kernels/cuda/test_util.h"

namespace slabserve {
namespace {

using testing::GoldenModelDir;
using testing::kGoldenModels;
using testing::kGoldenStateBudgetBytes;

// One sequence: prefilled at step `start`, then decoded one token a step
// until step `end`.
struct Sequence {
  std::vector<int32_t> prompt;
  int start = 0;
  int end = 0;
  SlotSampling sampling;
};

std::vector<Sequence> Sequences() {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int32_t> id(4, 500);
  std::vector<Sequence> sequences;
  // 13 short prompts from the start, ending one by one: 13, 12, ... rows
  // (buckets 16, 8, 4, 2); then a prompt longer than all of them together
  // joins at step 5 (a mixed step of more tokens than any before: the
  // buffers grow). Within SRM's 64 positions.
  for (int i = 0; i < 14; ++i) {
    Sequence s;
    const int length = i == 13 ? 40 : 1 + i % 3;
    s.prompt.push_back(2);
    while (static_cast<int>(s.prompt.size()) < length) {
      s.prompt.push_back(id(rng));
    }
    s.start = i == 13 ? 5 : 0;
    s.end = i == 13 ? 18 : 4 + i;
    s.sampling.top_logprobs = 3;
    if (i % 3 == 1) {  // some draw at random, with penalties
      s.sampling.params.temperature = 0.8f;
      s.sampling.params.top_k = 20;
      s.sampling.params.top_p = 0.9f;
      s.sampling.params.repetition_penalty = 1.1f;
      s.sampling.seed = 1000 + i;
    }
    sequences.push_back(std::move(s));
  }
  return sequences;
}

std::vector<std::vector<SampledToken>> RunSteps(
    Backend& backend, std::vector<Sequence> sequences) {
  std::vector<int> slots(sequences.size(), -1);
  std::vector<std::vector<SampledToken>> out(sequences.size());
  for (int step = 0; step < 18; ++step) {
    StepPlan plan;
    for (size_t i = 0; i < sequences.size(); ++i) {
      Sequence& s = sequences[i];
      if (step < s.start || step >= s.end) continue;
      if (step == s.start) {
        s.sampling.prompt = s.prompt;
        slots[i] = backend.Allocate(s.sampling);
      }
      std::vector<int32_t> tokens =
          step == s.start ? s.prompt : std::vector<int32_t>{out[i].back().id};
      plan.chunks.push_back({slots[i], std::move(tokens), true});
      plan.samples.push_back(slots[i]);
    }
    std::vector<size_t> order;
    for (size_t i = 0; i < sequences.size(); ++i) {
      if (step >= sequences[i].start && step < sequences[i].end) {
        order.push_back(i);
      }
    }
    backend.Submit(std::move(plan));
    StepResult result = backend.Wait();
    for (size_t j = 0; j < order.size(); ++j) {
      EXPECT_TRUE(result.chunks[j].ok()) << result.chunks[j];
      if (!result.samples[j].ok()) {
        ADD_FAILURE() << result.samples[j].status();
        return out;
      }
      out[order[j]].push_back(*result.samples[j]);
    }
    for (size_t i : order) {
      if (step + 1 == sequences[i].end) backend.Release(slots[i]);
    }
  }
  return out;
}

std::unique_ptr<CudaBackend> Cuda(Model* model, const std::string& name,
                                  bool bf16, int graph_max_batch) {
  CudaBackendOptions options;
  options.model.dir = GoldenModelDir(name);
  options.model.weights = bf16 ? cuda::GemmType::kBf16 : cuda::GemmType::kF32;
  options.graph_max_batch = graph_max_batch;
  auto backend = CudaBackend::Create(model, kGoldenStateBudgetBytes, options);
  EXPECT_TRUE(backend.ok()) << backend.status();
  return backend.ok() ? *std::move(backend) : nullptr;
}

// Every token, logprob and top logprob the same, bit for bit.
void ExpectSame(const std::vector<std::vector<SampledToken>>& want,
                const std::vector<std::vector<SampledToken>>& got,
                const std::string& what) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(want[i].size(), got[i].size()) << what << " sequence " << i;
    for (size_t t = 0; t < want[i].size(); ++t) {
      const SampledToken& a = want[i][t];
      const SampledToken& b = got[i][t];
      const std::string at = what + " sequence " + std::to_string(i) +
                             " token " + std::to_string(t);
      ASSERT_EQ(a.id, b.id) << at;
      EXPECT_EQ(a.logprob, b.logprob) << at;
      ASSERT_EQ(a.top.size(), b.top.size()) << at;
      for (size_t k = 0; k < a.top.size(); ++k) {
        EXPECT_EQ(a.top[k].id, b.top[k].id) << at;
        EXPECT_EQ(a.top[k].logprob, b.top[k].logprob) << at;
      }
    }
  }
}

TEST(CudaGraphsTest, GraphStepsEqualEagerStepsBitwise) {
  SKIP_WITHOUT_CUDA_DEVICE();
  for (const char* name : kGoldenModels) {
    auto model = LoadModel(GoldenModelDir(name));
    ASSERT_TRUE(model.ok()) << model.status();
    for (bool bf16 : {false, true}) {
      const std::string what = std::string(name) + (bf16 ? " bf16" : " f32");
      std::unique_ptr<CudaBackend> eager = Cuda(model->get(), name, bf16, 0);
      std::unique_ptr<CudaBackend> graphs =
          Cuda(model->get(), name, bf16, 1024);
      ASSERT_NE(eager, nullptr);
      ASSERT_NE(graphs, nullptr);
      const auto want = RunSteps(*eager, Sequences());
      const auto got = RunSteps(*graphs, Sequences());
      EXPECT_EQ(eager->captured_graphs(), 0) << what;
      EXPECT_TRUE(graphs->graph_status().ok())
          << what << ": " << graphs->graph_status();
      EXPECT_GT(graphs->captured_graphs(), 0) << what;
      ExpectSame(want, got, what);
    }
  }
}

}  // namespace
}  // namespace slabserve
