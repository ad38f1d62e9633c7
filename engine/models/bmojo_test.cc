// The hybrid Qwen3 / B'MOJO-F model against its golden data, and the
// invariances a server relies on: batch composition, chunking, forks and
// failed steps never change a sequence's results.
#include "engine/models/bmojo.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/eval/golden.h"
#include "engine/models/golden_test_util.h"
#include "engine/models/registry.h"
#include "engine/state/state_pool.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace {

const std::string kDir = "tests/golden/bmojo_tiny";

std::unique_ptr<Model> Load() { return LoadForTest(kDir); }

GoldenFile Golden() { return GoldenForTest(kDir + "/golden.json"); }

std::vector<CaseResult> RunAll(Model& model,
                               const std::vector<GoldenCase>& cases,
                               int prompt_chunk, bool batched) {
  return RunCasesForTest(model, cases, {prompt_chunk, batched});
}

std::unique_ptr<StatePool> Pool(const Model& model, int slots, int blocks) {
  auto pool = StatePool::CreateWithCapacity(model.StateLayout(), slots,
                                            model.TokenLayout(), blocks);
  EXPECT_TRUE(pool.ok()) << pool.status();
  return pool.ok() ? *std::move(pool) : nullptr;
}

// A deterministic token sequence.
std::vector<int32_t> Tokens(int n, int seed, int vocab) {
  std::vector<int32_t> tokens(n);
  for (int i = 0; i < n; ++i) tokens[i] = (i * 131 + seed * 17 + 7) % vocab;
  return tokens;
}

// Feeds `tokens` to `slot` in chunks of the given lengths (cycled) and
// returns the logits of the last token.
std::vector<float> Feed(Model& model, StatePool& pool, int slot,
                        const std::vector<int32_t>& tokens,
                        const std::vector<int>& chunks) {
  std::vector<float> logits(model.info().vocab_size);
  size_t fed = 0;
  for (size_t c = 0; fed < tokens.size(); ++c) {
    const size_t n =
        std::min<size_t>(chunks[c % chunks.size()], tokens.size() - fed);
    absl::Status status = model.Prefill(
        slot, absl::MakeConstSpan(tokens).subspan(fed, n), pool, logits.data());
    EXPECT_TRUE(status.ok()) << status;
    fed += n;
  }
  return logits;
}

// Every slab row, the position and the per-token rows of a slot.
std::vector<char> StateBytes(const StatePool& pool, int slot) {
  const StateSnapshot snapshot = pool.Save(slot);
  std::vector<char> bytes = snapshot.bytes;
  bytes.insert(bytes.end(), snapshot.token_bytes.begin(),
               snapshot.token_bytes.end());
  const char* position = reinterpret_cast<const char*>(&snapshot.position);
  bytes.insert(bytes.end(), position, position + sizeof(snapshot.position));
  return bytes;
}

// Prompt token by token and as one chunk: last logits, per-position and
// greedy checksums, greedy ids and the states after the prompt.
TEST(BmojoGoldenTest, EveryCaseMatchesGolden) {
  std::unique_ptr<Model> model = Load();
  ASSERT_NE(model, nullptr);
  const GoldenFile golden = Golden();
  ASSERT_EQ(golden.format, GoldenFormat::kBmojo);
  ASSERT_EQ(golden.cases.size(), 4u);
  for (int chunk : {1, 0}) {
    const std::vector<CaseResult> results =
        RunAll(*model, golden.cases, chunk, false);
    ASSERT_EQ(results.size(), golden.cases.size());
    for (size_t i = 0; i < results.size(); ++i) {
      const CaseReport report = CompareCase(golden, i, results[i]);
      EXPECT_TRUE(report.ok()) << report.name << ": " << report.problems[0];
      EXPECT_LE(report.max_logit_diff, 1e-4) << report.name;
      EXPECT_EQ(results[i].greedy_ids.size(), 16u);
      EXPECT_FALSE(results[i].state_after_prompt.empty());
    }
  }
}

// Shapes other than bmojo_tiny's (tools/golden/make_bmojo_shapes.py): GQA
// with d_inner < hidden, conv width 3 and tied embeddings; multi-head with
// no B/C norms, an untied head and an odd window_size; B'MOJO-F layers only
// with W = 2. Token by token, whole prompts and one batch.
class BmojoShapeTest : public ::testing::TestWithParam<const char*> {};

TEST_P(BmojoShapeTest, EveryCaseMatchesGolden) {
  const std::string dir =
      std::string("tests/golden/bmojo_shapes/") + GetParam();
  absl::StatusOr<std::unique_ptr<Model>> model = LoadModel(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<GoldenFile> golden = LoadGoldenFile(dir + "/golden.json");
  ASSERT_TRUE(golden.ok()) << golden.status();
  for (const RunOptions options :
       {RunOptions{1, false}, RunOptions{0, false}, RunOptions{3, true}}) {
    const std::vector<CaseResult> results =
        RunAll(**model, golden->cases, options.prompt_chunk, options.batched);
    ASSERT_EQ(results.size(), golden->cases.size());
    for (size_t i = 0; i < results.size(); ++i) {
      const CaseReport report = CompareCase(*golden, i, results[i]);
      EXPECT_TRUE(report.ok())
          << GetParam() << " " << report.name << ": " << report.problems[0];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, BmojoShapeTest,
                         ::testing::Values("gqa_tied_conv3",
                                           "mha_untied_nonorm_oddw",
                                           "all_bmojo_w2"));

// Batch-invariant kernels: a crowd changes no bit.
TEST(BmojoGoldenTest, OneBatchEqualsOneByOneBitwise) {
  std::unique_ptr<Model> model = Load();
  ASSERT_NE(model, nullptr);
  const GoldenFile golden = Golden();
  for (int chunk : {1, 5, 0}) {
    const std::vector<CaseResult> alone =
        RunAll(*model, golden.cases, chunk, false);
    const std::vector<CaseResult> crowd =
        RunAll(*model, golden.cases, chunk, true);
    ASSERT_EQ(alone.size(), crowd.size());
    for (size_t i = 0; i < alone.size(); ++i) {
      EXPECT_EQ(alone[i].last_logits, crowd[i].last_logits) << chunk;
      EXPECT_EQ(alone[i].step_logits, crowd[i].step_logits) << chunk;
      EXPECT_EQ(alone[i].state_after_prompt, crowd[i].state_after_prompt);
    }
  }
}

// Uneven chunks (across the window boundaries and block boundaries) give
// exactly the logits and state of one whole prefill.
TEST(BmojoModelTest, ChunkedPrefillEqualsWholePrefillBitwise) {
  std::unique_ptr<Model> model = Load();
  ASSERT_NE(model, nullptr);
  auto pool = Pool(*model, 2, 64);
  const std::vector<int32_t> prompt = Tokens(150, 1, 512);
  const int whole = pool->Allocate(), chunked = pool->Allocate();
  const std::vector<float> want =
      Feed(*model, *pool, whole, prompt, {static_cast<int>(prompt.size())});
  const std::vector<float> got =
      Feed(*model, *pool, chunked, prompt, {3, 1, 7, 2, 16, 5, 33, 9});
  EXPECT_EQ(got, want);
  EXPECT_EQ(StateBytes(*pool, chunked), StateBytes(*pool, whole));
  EXPECT_EQ(model->RecurrentStateForEval(*pool, chunked).value(),
            model->RecurrentStateForEval(*pool, whole).value());
}

// One sequence alone and in a crowd of prefills and decodes of other
// lengths: bitwise the same logits.
TEST(BmojoModelTest, AloneEqualsInACrowdBitwise) {
  std::unique_ptr<Model> model = Load();
  ASSERT_NE(model, nullptr);
  const int V = model->info().vocab_size;
  auto pool = Pool(*model, 4, 128);
  const std::vector<int32_t> prompt = Tokens(37, 2, V);
  const int alone = pool->Allocate();
  const std::vector<float> want = Feed(*model, *pool, alone, prompt, {20, 17});
  const int a = pool->Allocate(), b = pool->Allocate(), me = pool->Allocate();
  const std::vector<int32_t> other = Tokens(60, 3, V);
  Feed(*model, *pool, a, other, {9});
  const std::vector<SequenceChunk> first = {{a, {other.data(), 1}, true},
                                            {me, {prompt.data(), 20}, true},
                                            {b, {other.data(), 45}, false}};
  std::vector<float> logits(3 * V);
  ASSERT_TRUE(model->Forward(first, *pool, logits.data()).ok());
  const std::vector<SequenceChunk> second = {
      {b, {other.data(), 2}, true}, {me, {prompt.data() + 20, 17}, true}};
  ASSERT_TRUE(model->Forward(second, *pool, logits.data()).ok());
  EXPECT_EQ(std::vector<float>(logits.begin() + V, logits.begin() + 2 * V),
            want);
}

// A fork (pool Copy) continued with new tokens gives exactly what a
// recomputation of the whole sequence gives, and leaves the parent alone.
TEST(BmojoModelTest, ForkThenContinueEqualsRecompute) {
  std::unique_ptr<Model> model = Load();
  ASSERT_NE(model, nullptr);
  const int V = model->info().vocab_size;
  auto pool = Pool(*model, 3, 64);
  const std::vector<int32_t> prefix = Tokens(45, 4, V);
  const std::vector<int32_t> tail = Tokens(11, 5, V);
  std::vector<int32_t> full = prefix;
  full.insert(full.end(), tail.begin(), tail.end());
  const int parent = pool->Allocate();
  Feed(*model, *pool, parent, prefix, {45});
  const std::vector<char> parent_state = StateBytes(*pool, parent);
  const int blocks_before = pool->blocks_in_use();
  const int child = pool->Allocate();
  pool->Copy(parent, child);
  EXPECT_EQ(pool->blocks_in_use(), blocks_before);  // no KV copied
  const std::vector<float> forked = Feed(*model, *pool, child, tail, {4, 1});
  EXPECT_EQ(StateBytes(*pool, parent), parent_state);
  const int fresh = pool->Allocate();
  EXPECT_EQ(Feed(*model, *pool, fresh, full, {56}), forked);
}

// A batch whose chunks cannot all get blocks fails with RESOURCE_EXHAUSTED
// and leaves every slot, and the block pool, as it was.
TEST(BmojoModelTest, ForwardWithoutBlocksChangesNothing) {
  std::unique_ptr<Model> model = Load();
  ASSERT_NE(model, nullptr);
  const int V = model->info().vocab_size;
  const int block_tokens = model->TokenLayout().block_tokens;
  auto pool = Pool(*model, 3, 4);
  const std::vector<int32_t> tokens = Tokens(4 * block_tokens, 6, V);
  const int a = pool->Allocate(), b = pool->Allocate();
  Feed(*model, *pool, a, {tokens.begin(), tokens.begin() + block_tokens + 3},
       {block_tokens});
  ASSERT_EQ(pool->free_blocks(), 2);
  const std::vector<char> a_state = StateBytes(*pool, a);
  const std::vector<char> b_state = StateBytes(*pool, b);
  const int free_blocks = pool->free_blocks();
  std::vector<float> logits(2 * V);
  const std::vector<SequenceChunk> batch = {
      {a, {tokens.data(), 1}, true},
      {b, {tokens.data(), static_cast<size_t>(3 * block_tokens)}, true}};
  const absl::Status status = model->Forward(batch, *pool, logits.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(StateBytes(*pool, a), a_state);
  EXPECT_EQ(StateBytes(*pool, b), b_state);
  EXPECT_EQ(pool->free_blocks(), free_blocks);
  // Both still step correctly once the batch fits.
  const std::vector<SequenceChunk> fits = {
      {a, {tokens.data(), 1}, true},
      {b, {tokens.data(), static_cast<size_t>(block_tokens)}, true}};
  const absl::Status fit = model->Forward(fits, *pool, logits.data());
  EXPECT_TRUE(fit.ok()) << fit;
}

TEST(BmojoModelTest, InfoLayoutAndBadInputs) {
  std::unique_ptr<Model> model = Load();
  ASSERT_NE(model, nullptr);
  const ModelInfo& info = model->info();
  EXPECT_EQ(info.architecture, "bmojo");
  EXPECT_EQ(info.vocab_size, 512);
  EXPECT_EQ(info.max_positions, 4096);
  EXPECT_EQ(info.attention_window, 4);
  // 2 B'MOJO-F layers × 2,048 floats, constant; 2 attention layers × 64
  // floats per token.
  size_t constant = 0;
  for (const StateSlabSpec& slab : model->StateLayout()) {
    constant += slab.bytes_per_slot;
  }
  EXPECT_EQ(constant, 2u * 2048 * 4);
  size_t per_token = 0;
  for (const TokenStateSpec& kind : model->TokenLayout().kinds) {
    per_token += kind.bytes_per_token;
  }
  EXPECT_EQ(per_token, 2u * 64 * 4);
  auto pool = Pool(*model, 1, 8);
  const int slot = pool->Allocate();
  std::vector<float> logits(512);
  const int32_t bad[] = {7, 512};
  EXPECT_EQ(model->Prefill(slot, bad, *pool, logits.data()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pool->position(slot), 0);
  EXPECT_EQ(pool->blocks_in_use(), 0);
  // A pool without the per-token kinds is refused.
  auto slabs_only = StatePool::CreateWithCapacity(model->StateLayout(), 1);
  ASSERT_TRUE(slabs_only.ok());
  const int32_t one[] = {7};
  EXPECT_EQ(
      model
          ->Prefill((*slabs_only)->Allocate(), one, **slabs_only, logits.data())
          .code(),
      absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace slabserve
