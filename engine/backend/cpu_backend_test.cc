// The CPU backend against the model and sampler used directly: a step's
// forward pass, snapshots, forks and samples must give the same bits as
// Model::Forward plus one Sampler per sequence.
#include "engine/backend/cpu_backend.h"

#include <memory>
#include <vector>

#include "engine/backend/test_util.h"
#include "engine/models/registry.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace {

const std::vector<int32_t> kPrompt = {2, 17, 301, 45, 9, 250};

std::unique_ptr<Model> Griffin() {
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadModel(testing::GoldenModelDir("griffin_tiny"));
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

SlotSampling Sampling(uint64_t seed) {
  SlotSampling sampling;
  sampling.params.temperature = 1.0f;
  sampling.params.repetition_penalty = 1.3f;
  sampling.seed = seed;
  sampling.top_logprobs = 3;
  sampling.prompt = kPrompt;
  return sampling;
}

// What the model and a fresh sampler with `seed` give for kPrompt's first
// token.
SampledToken Direct(Model& model, uint64_t seed) {
  auto pool = StatePool::CreateWithCapacity(model.StateLayout(), 1);
  EXPECT_TRUE(pool.ok()) << pool.status();
  const int slot = (*pool)->Allocate();
  std::vector<float> logits(model.info().vocab_size);
  EXPECT_TRUE(model.Prefill(slot, kPrompt, **pool, logits.data()).ok());
  Sampler sampler(Sampling(seed).params, seed);
  sampler.ObservePrompt(kPrompt);
  return sampler.Sample(absl::MakeSpan(logits), 3);
}

void ExpectSameToken(const SampledToken& want, const SampledToken& got) {
  EXPECT_EQ(want.id, got.id);
  EXPECT_EQ(want.logprob, got.logprob);
  ASSERT_EQ(want.top.size(), got.top.size());
  for (size_t k = 0; k < want.top.size(); ++k) {
    EXPECT_EQ(want.top[k].id, got.top[k].id);
    EXPECT_EQ(want.top[k].logprob, got.top[k].logprob);
  }
}

TEST(CpuBackendTest, ForkedAndRestoredSlotsSampleLikeTheModelDirectly) {
  std::unique_ptr<Model> model = Griffin();
  ASSERT_NE(model, nullptr);
  auto backend = CpuBackend::Create(model.get(), size_t{64} << 20);
  ASSERT_TRUE(backend.ok()) << backend.status();
  std::vector<int> slots;
  for (uint64_t seed : {7, 8, 9}) {
    slots.push_back((*backend)->Allocate(Sampling(seed)));
  }
  StepPlan plan;
  plan.chunks.push_back({slots[0], kPrompt, /*keep_logits=*/true});
  plan.snapshots.push_back({slots[0], /*with_logits=*/true});
  plan.forks = {{slots[0], slots[1]}, {slots[0], slots[2]}};
  plan.samples = slots;
  (*backend)->Submit(std::move(plan));
  StepResult result = (*backend)->Wait();
  ASSERT_EQ(result.chunks.size(), 1u);
  EXPECT_TRUE(result.chunks[0].ok()) << result.chunks[0];
  ASSERT_EQ(result.samples.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(result.samples[i].ok()) << result.samples[i].status();
    ExpectSameToken(Direct(*model, 7 + i), *result.samples[i]);
  }
  ASSERT_EQ(result.snapshots.size(), 1u);
  ASSERT_NE(result.snapshots[0], nullptr);
  EXPECT_TRUE(result.snapshots[0]->has_logits());
  EXPECT_EQ(result.snapshots[0]->bytes(),
            (*backend)->bytes_per_slot() - sizeof(int32_t) +
                model->info().vocab_size * sizeof(float));

  // A restored whole-prompt snapshot samples with no forward pass.
  const int restored = (*backend)->Allocate(Sampling(8));
  ASSERT_TRUE((*backend)->Restore(restored, *result.snapshots[0]).ok());
  StepPlan sample_only;
  sample_only.samples = {restored};
  (*backend)->Submit(std::move(sample_only));
  StepResult again = (*backend)->Wait();
  ASSERT_TRUE(again.samples[0].ok()) << again.samples[0].status();
  ExpectSameToken(Direct(*model, 8), *again.samples[0]);

  // Its logits served one step only.
  StepPlan stale;
  stale.samples = {restored};
  (*backend)->Submit(std::move(stale));
  EXPECT_EQ((*backend)->Wait().samples[0].status().code(),
            absl::StatusCode::kFailedPrecondition);
  for (int slot : slots) (*backend)->Release(slot);
  (*backend)->Release(restored);
  EXPECT_EQ((*backend)->used(), 0);
}

TEST(CpuBackendTest, FailingChunkFailsOnlyItsSlot) {
  std::unique_ptr<Model> model = Griffin();
  ASSERT_NE(model, nullptr);
  auto backend = CpuBackend::Create(model.get(), size_t{64} << 20);
  ASSERT_TRUE(backend.ok()) << backend.status();
  const int good = (*backend)->Allocate(Sampling(7));
  const int bad = (*backend)->Allocate(Sampling(7));
  const int forked = (*backend)->Allocate(Sampling(8));
  StepPlan plan;
  plan.chunks.push_back({good, kPrompt, true});
  plan.chunks.push_back({bad, {2, model->info().vocab_size}, true});
  plan.snapshots.push_back({bad, false});
  plan.forks.push_back({bad, forked});
  plan.samples = {good, bad, forked};
  (*backend)->Submit(std::move(plan));
  StepResult result = (*backend)->Wait();
  EXPECT_TRUE(result.chunks[0].ok());
  EXPECT_EQ(result.chunks[1].code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(result.snapshots[0], nullptr);
  ASSERT_TRUE(result.samples[0].ok());
  ExpectSameToken(Direct(*model, 7), *result.samples[0]);
  EXPECT_FALSE(result.samples[1].ok());
  EXPECT_FALSE(result.samples[2].ok());
}

TEST(CpuBackendTest, BrokenPlanFailsTheStepAndTouchesNothing) {
  std::unique_ptr<Model> model = Griffin();
  ASSERT_NE(model, nullptr);
  auto backend = CpuBackend::Create(model.get(), size_t{64} << 20);
  ASSERT_TRUE(backend.ok()) << backend.status();
  absl::StatusOr<SampledToken> sample =
      testing::SampleAfterBrokenPlan(**backend, Sampling(7), kPrompt);
  ASSERT_TRUE(sample.ok()) << sample.status();
  ExpectSameToken(Direct(*model, 7), *sample);
}

TEST(CpuBackendTest, BudgetBelowOneSlotIsAnError) {
  std::unique_ptr<Model> model = Griffin();
  ASSERT_NE(model, nullptr);
  EXPECT_FALSE(CpuBackend::Create(model.get(), 16).ok());
  EXPECT_FALSE(CpuBackend::Create(nullptr, size_t{1} << 20).ok());
}

}  // namespace
}  // namespace slabserve
