// The CPU backend with per-token state in blocks, over TokenTestModel (whose
// logits depend on every past token through the blocks): cached prefixes
// share blocks and give the logits of recomputation, forks copy no blocks,
// swapped slots come back bitwise, and a chunk that cannot get blocks fails
// alone.
#include <memory>
#include <random>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/backend/token_test_model.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace {

constexpr int kVocab = 512;

std::unique_ptr<CpuBackend> MakeBackend(TokenTestModel& model, int slots,
                                        int blocks) {
  auto pool = StatePool::CreateWithCapacity(model.StateLayout(), slots,
                                            model.TokenLayout(), blocks);
  EXPECT_TRUE(pool.ok()) << pool.status();
  auto backend = CpuBackend::CreateWithPool(&model, *std::move(pool));
  EXPECT_TRUE(backend.ok()) << backend.status();
  return *std::move(backend);
}

std::vector<int32_t> Tokens(int length, uint32_t salt) {
  std::mt19937 rng(salt);
  std::vector<int32_t> tokens;
  for (int i = 0; i < length; ++i) tokens.push_back(4 + rng() % (kVocab - 4));
  return tokens;
}

// Greedy, with every token's log-probability: equal results mean equal
// logits.
SlotSampling AllLogprobs() {
  SlotSampling sampling;
  sampling.top_logprobs = kVocab;
  return sampling;
}

SlotSampling Random(uint64_t seed) {
  SlotSampling sampling;
  sampling.params.temperature = 1.0f;
  sampling.params.repetition_penalty = 1.3f;
  sampling.seed = seed;
  sampling.top_logprobs = 3;
  return sampling;
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

// Runs `plan`, sampling every chunk's slot after the forks' targets too
// when none are listed; fails the test on a failed chunk.
StepResult RunStep(CpuBackend& backend, StepPlan plan) {
  if (plan.samples.empty()) {
    for (const PlannedChunk& chunk : plan.chunks) {
      plan.samples.push_back(chunk.slot);
    }
  }
  backend.Submit(std::move(plan));
  StepResult result = backend.Wait();
  for (const absl::Status& status : result.chunks) {
    EXPECT_TRUE(status.ok()) << status;
  }
  return result;
}

SampledToken Feed(CpuBackend& backend, int slot, std::vector<int32_t> tokens) {
  StepPlan plan;
  plan.chunks.push_back({slot, std::move(tokens), /*keep_logits=*/true});
  StepResult result = RunStep(backend, std::move(plan));
  EXPECT_TRUE(result.samples[0].ok()) << result.samples[0].status();
  return result.samples[0].ok() ? *result.samples[0] : SampledToken();
}

TEST(CpuBackendBlocksTest, CachedPrefixSharesBlocksAndGivesRecomputedLogits) {
  TokenTestModel model;  // 4 tokens per block
  std::unique_ptr<CpuBackend> backend = MakeBackend(model, 4, 64);
  const std::vector<int32_t> prefix = Tokens(30, 1), rest = Tokens(10, 2);
  const int a = backend->Allocate(AllLogprobs());
  StepPlan plan;
  plan.chunks.push_back({a, prefix, /*keep_logits=*/false});
  plan.snapshots.push_back({a, /*with_logits=*/false});
  StepResult cached = RunStep(*backend, std::move(plan));
  ASSERT_NE(cached.snapshots[0], nullptr);
  // Shared, not copied: the snapshot holds the slot's 8 blocks by
  // reference, and counts only its own rows.
  EXPECT_EQ(backend->blocks_in_use(), 8);
  EXPECT_EQ(cached.snapshots[0]->blocks(), 8);
  EXPECT_LT(cached.snapshots[0]->bytes(), backend->bytes_per_block());
  // The source goes on into the shared half block: it copies it first.
  Feed(*backend, a, Tokens(5, 3));
  EXPECT_EQ(backend->blocks_in_use(), 10);
  // Freed blocks are reused by someone else meanwhile.
  const int other = backend->Allocate(AllLogprobs());
  Feed(*backend, other, Tokens(60, 4));
  backend->Release(other);

  const int b = backend->Allocate(AllLogprobs());
  ASSERT_TRUE(backend->Restore(b, *cached.snapshots[0]).ok());
  const SampledToken hit = Feed(*backend, b, rest);
  const int c = backend->Allocate(AllLogprobs());
  std::vector<int32_t> whole = prefix;
  whole.insert(whole.end(), rest.begin(), rest.end());
  const SampledToken recomputed = Feed(*backend, c, whole);
  ASSERT_EQ(hit.top.size(), static_cast<size_t>(kVocab));
  ExpectSameToken(recomputed, hit);
}

TEST(CpuBackendBlocksTest, ForkingALongSequenceCopiesNoBlocks) {
  TokenTestModel model;
  std::unique_ptr<CpuBackend> backend = MakeBackend(model, 4, 220);
  const std::vector<int32_t> prompt = Tokens(402, 5);
  const int a = backend->Allocate(AllLogprobs());
  const int b = backend->Allocate(AllLogprobs());
  const int c = backend->Allocate(AllLogprobs());
  StepPlan plan;
  plan.chunks.push_back({a, prompt, /*keep_logits=*/true});
  plan.forks = {{a, b}, {a, c}};
  plan.samples = {a, b, c};
  StepResult forked = RunStep(*backend, std::move(plan));
  EXPECT_EQ(backend->blocks_in_use(), 101);  // 402 tokens, once
  ExpectSameToken(*forked.samples[0], *forked.samples[2]);
  // Each one's next token writes into the shared half block: a and b copy
  // it, c (then its only holder) writes in place.
  EXPECT_EQ(backend->BlocksToGrow(b, 1), 1);
  StepPlan next;
  for (int slot : {a, b, c}) next.chunks.push_back({slot, {77}, true});
  StepResult decoded = RunStep(*backend, std::move(next));
  EXPECT_EQ(backend->blocks_in_use(), 103);
  // And each reads exactly what a fresh sequence would.
  const int d = backend->Allocate(AllLogprobs());
  std::vector<int32_t> fresh = prompt;
  fresh.push_back(77);
  const SampledToken want = Feed(*backend, d, fresh);
  for (int i = 0; i < 3; ++i) ExpectSameToken(want, *decoded.samples[i]);
}

// Decodes `steps` tokens on every slot of `slots`, each feeding back what
// it sampled; returns the samples by slot.
std::vector<std::vector<SampledToken>> Decode(CpuBackend& backend,
                                              const std::vector<int>& slots,
                                              std::vector<int32_t>& last,
                                              int steps) {
  std::vector<std::vector<SampledToken>> out(slots.size());
  for (int step = 0; step < steps; ++step) {
    StepPlan plan;
    for (size_t i = 0; i < slots.size(); ++i) {
      plan.chunks.push_back({slots[i], {last[i]}, /*keep_logits=*/true});
    }
    StepResult result = RunStep(backend, std::move(plan));
    for (size_t i = 0; i < slots.size(); ++i) {
      EXPECT_TRUE(result.samples[i].ok());
      if (!result.samples[i].ok()) continue;
      out[i].push_back(*result.samples[i]);
      last[i] = result.samples[i]->id;
    }
  }
  return out;
}

TEST(CpuBackendBlocksTest, SwappedSlotsComeBackBitwise) {
  TokenTestModel model;
  std::unique_ptr<CpuBackend> backend = MakeBackend(model, 8, 40);
  const std::vector<int32_t> prompt = Tokens(22, 6);
  // Two forked pairs, identical but for where they live: one is swapped
  // out and back, the other never leaves.
  std::vector<int> pairs[2];
  std::vector<int32_t> last;
  for (auto& pair : pairs) {
    pair = {backend->Allocate(Random(11)), backend->Allocate(Random(12))};
    StepPlan plan;
    plan.chunks.push_back({pair[0], prompt, /*keep_logits=*/true});
    plan.forks = {{pair[0], pair[1]}};
    plan.samples = pair;
    StepResult result = RunStep(*backend, std::move(plan));
    for (auto& sample : result.samples) last.push_back(sample->id);
  }
  std::vector<int32_t> moved_last = {last[0], last[1]};
  std::vector<int32_t> kept_last = {last[2], last[3]};
  Decode(*backend, pairs[0], moved_last, 3);
  Decode(*backend, pairs[1], kept_last, 3);

  const int free_before = backend->free_blocks();
  std::unique_ptr<SwappedSlots> copy = backend->SwapOut(pairs[0]);
  EXPECT_EQ(copy->slots(), 2);
  // 25 tokens each, the first 20 (5 full blocks) shared: copied once.
  EXPECT_EQ(copy->blocks(), 5 + 2 + 2);
  EXPECT_EQ(backend->free_blocks(), free_before + 9);
  const int other = backend->Allocate(Random(3));
  Feed(*backend, other, Tokens(100, 7));  // reuses every freed block
  // No room for the copy now: nothing is taken.
  const int used = backend->used(), free = backend->free_blocks();
  EXPECT_EQ(backend->SwapIn(*copy).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(backend->used(), used);
  EXPECT_EQ(backend->free_blocks(), free);
  backend->Release(other);

  absl::StatusOr<std::vector<int>> back = backend->SwapIn(*copy);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(backend->free_blocks(), free_before);
  copy.reset();
  // The samplers came back too: same RNG stream, same penalties.
  auto moved = Decode(*backend, *back, moved_last, 6);
  auto kept = Decode(*backend, pairs[1], kept_last, 6);
  for (int i = 0; i < 2; ++i) {
    for (int step = 0; step < 6; ++step) {
      ExpectSameToken(kept[i][step], moved[i][step]);
    }
  }
}

TEST(CpuBackendBlocksTest, AChunkWithoutBlocksFailsAloneBeforeTheForward) {
  TokenTestModel model;
  std::unique_ptr<CpuBackend> backend = MakeBackend(model, 4, 6);
  const int a = backend->Allocate(AllLogprobs());
  Feed(*backend, a, Tokens(16, 8));  // 4 blocks
  const int b = backend->Allocate(AllLogprobs());
  StepPlan plan;
  plan.chunks.push_back({a, Tokens(12, 9), true});  // 3 more: 2 are free
  plan.chunks.push_back({b, Tokens(4, 10), true});
  plan.samples = {a, b};
  backend->Submit(std::move(plan));
  StepResult result = backend->Wait();
  EXPECT_EQ(result.chunks[0].code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(result.samples[0].ok());
  ASSERT_TRUE(result.chunks[1].ok()) << result.chunks[1];
  ASSERT_TRUE(result.samples[1].ok());
  EXPECT_EQ(backend->BlocksToGrow(a, 4), 1);  // a is where it was
  EXPECT_EQ(backend->free_blocks(), 1);
  // b ran as if alone.
  backend->Release(a);
  const int c = backend->Allocate(AllLogprobs());
  ExpectSameToken(Feed(*backend, c, Tokens(4, 10)), *result.samples[1]);
}

}  // namespace
}  // namespace slabserve
