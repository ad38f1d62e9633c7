#include "engine/models/ragged_batch.h"

#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/norm_act.h"
#include "kernels/cpu/ops.h"

namespace slabserve {
namespace {

class RaggedBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    info_.architecture = "test";
    info_.vocab_size = 100;
    auto pool = StatePool::CreateWithCapacity({{"state", 16}}, 4);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    a_ = pool_->Allocate();
    b_ = pool_->Allocate();
    pool_->set_position(b_, 5);
  }

  absl::Status Build(const std::vector<SequenceChunk>& batch,
                     const float* logits = &logit_) {
    return plan_.Build(batch, *pool_, info_, logits);
  }

  static constexpr float logit_ = 0.0f;
  ModelInfo info_;
  std::unique_ptr<StatePool> pool_;
  RaggedBatch plan_;
  int a_ = -1, b_ = -1;
};

TEST_F(RaggedBatchTest, FlattensChunksIntoRows) {
  const std::vector<int32_t> three = {7, 8, 9}, one = {4};
  ASSERT_TRUE(Build({{b_, three, false}, {a_, one, true}}).ok());
  EXPECT_EQ(plan_.tokens(), 4);
  EXPECT_EQ(plan_.chunks(), 2);
  EXPECT_EQ(plan_.begin(0), 0);
  EXPECT_EQ(plan_.end(0), 3);
  EXPECT_EQ(plan_.begin(1), 3);
  EXPECT_EQ(plan_.length(1), 1);
  EXPECT_EQ(plan_.slot(0), b_);
  EXPECT_EQ(plan_.start(0), 5);
  EXPECT_EQ(plan_.start(1), 0);
  const int chunk[] = {0, 0, 0, 1}, position[] = {5, 6, 7, 0};
  const int32_t token[] = {7, 8, 9, 4};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(plan_.chunk(i), chunk[i]) << i;
    EXPECT_EQ(plan_.position(i), position[i]) << i;
    EXPECT_EQ(plan_.token(i), token[i]) << i;
  }
  EXPECT_EQ(plan_.head_rows(), std::vector<int>{3});
  plan_.AdvancePositions(*pool_);
  EXPECT_EQ(pool_->position(b_), 8);
  EXPECT_EQ(pool_->position(a_), 1);
}

TEST_F(RaggedBatchTest, ReuseAfterALargerBatchKeepsOnlyTheNewRows) {
  const std::vector<int32_t> many(50, 3), two = {1, 2};
  ASSERT_TRUE(Build({{a_, many, true}, {b_, many, true}}).ok());
  ASSERT_TRUE(Build({{b_, two, true}}).ok());
  EXPECT_EQ(plan_.tokens(), 2);
  EXPECT_EQ(plan_.chunks(), 1);
  EXPECT_EQ(plan_.head_rows(), std::vector<int>{1});
  EXPECT_EQ(plan_.token(1), 2);
  EXPECT_EQ(plan_.position(1), 6);
}

TEST_F(RaggedBatchTest, ErrorsNameChunkSlotAndTokenAndChangeNothing) {
  const std::vector<int32_t> good = {1}, bad = {100}, none;
  struct Case {
    std::vector<SequenceChunk> batch;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{{a_, good}, {b_, bad}},
       "test: chunk 1 (slot 1): token id 100 at index 0 is outside the "
       "vocabulary [0, 100)"},
      {{{a_, good}, {a_, good}}, "chunk 1 (slot 0): slot appears twice"},
      {{{2, good}}, "chunk 0 (slot 2): slot is not allocated"},
      {{{-1, good}}, "chunk 0 (slot -1): slot outside [0, 4)"},
      {{{4, good}}, "slot outside"},
      {{{a_, none}}, "chunk 0 (slot 0): no tokens"},
  };
  for (const Case& c : cases) {
    const absl::Status status = Build(c.batch);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_NE(status.message().find(c.message), std::string::npos) << status;
    EXPECT_EQ(plan_.tokens(), 0);
    EXPECT_EQ(pool_->position(a_), 0);
    EXPECT_EQ(pool_->position(b_), 5);
  }
  const absl::Status no_buffer = Build({{a_, good, true}}, nullptr);
  EXPECT_NE(no_buffer.message().find("no logits buffer"), std::string::npos);
  EXPECT_TRUE(Build({{a_, good, false}}, nullptr).ok());
  // The slot rejected as a duplicate above is accepted alone.
  EXPECT_TRUE(Build({{a_, good}}).ok());
}

TEST_F(RaggedBatchTest, MaxPositionsBoundsEveryChunk) {
  info_.max_positions = 8;
  const std::vector<int32_t> three = {1, 2, 3}, four = {1, 2, 3, 4};
  EXPECT_TRUE(Build({{b_, three}}).ok());
  const absl::Status status = Build({{a_, three}, {b_, four}});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("chunk 1 (slot 1): at position 5, 4 more "
                                  "tokens would pass the model's 8 positions"),
            std::string::npos)
      << status;
}

TEST_F(RaggedBatchTest, PoolLayoutMustMatch) {
  EXPECT_TRUE(CheckPoolLayout(*pool_, {{"state", 16}}).ok());
  EXPECT_EQ(CheckPoolLayout(*pool_, {{"state", 8}}).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckPoolLayout(*pool_, {}).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ThreadScratchTest, GrowsOnlyAndIsPerThread) {
  float* big = ThreadScratch(1000);
  big[999] = 1.0f;
  EXPECT_EQ(ThreadScratch(10), big);  // a smaller request reuses it
  float* other = nullptr;
  std::thread([&] { other = ThreadScratch(1000); }).join();
  EXPECT_NE(other, big);
  // Each element type has its own buffer.
  EXPECT_NE(static_cast<void*>(ThreadScratch<const float*>(10)),
            static_cast<void*>(big));
}

TEST(TaskGrainTest, SmallItemsShareATask) {
  EXPECT_EQ(TaskGrain(1), kTaskWork);
  EXPECT_EQ(TaskGrain(0), kTaskWork);
  EXPECT_EQ(TaskGrain(kTaskWork * 4), 1);
  std::vector<int> hits(1000, 0);
  ForEachItem(1000, 10, [&](int64_t i) { ++hits[i]; });
  EXPECT_EQ(hits, std::vector<int>(1000, 1));
}

std::vector<float> RandomRows(int rows, int width, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(rows) * width);
  for (float& x : v) x = normal(rng);
  return v;
}

// The fused residual add and norm give the bits of adding, then norming,
// whichever norm; their rows prepared as written give the product's bits.
TEST(AddThenNormTest, EqualsAddThenNormInTwoPassesAndPreparesRows) {
  constexpr int kRows = 37, kWidth = 48, kOut = 20;
  const std::vector<float> x0 = RandomRows(kRows, kWidth, 1);
  const std::vector<float> delta = RandomRows(kRows, kWidth, 2);
  const std::vector<float> scale = RandomRows(1, kWidth, 3);
  const std::vector<float> bias = RandomRows(1, kWidth, 4);
  const std::vector<float> w = RandomRows(kOut, kWidth, 5);
  const cpu::Projection next(w.data(), kOut, kWidth,
                             cpu::WeightPrecision::kBf16);
  std::vector<float> added = x0;
  for (size_t i = 0; i < added.size(); ++i) added[i] += delta[i];
  auto expect_same = [](const std::vector<float>& a,
                        const std::vector<float>& b, const char* what) {
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
        << what;
  };
  for (bool layer_norm : {false, true}) {
    SCOPED_TRACE(layer_norm ? "LayerNorm" : "RmsNorm");
    std::vector<float> want(added.size());
    if (layer_norm) {
      cpu::LayerNorm(added.data(), kRows, kWidth, scale.data(), bias.data(),
                     1e-5f, want.data());
    } else {
      cpu::RmsNorm(added.data(), kRows, kWidth, scale.data(), 1e-5f,
                   want.data());
    }
    std::vector<float> x = x0;
    // The output overwrites delta itself, as SRM's blocks use it.
    std::vector<float> n = delta;
    cpu::Bf16Rows prepared;
    if (layer_norm) {
      AddThenLayerNorm(x.data(), n.data(), kRows, kWidth, scale.data(),
                       bias.data(), 1e-5f, n.data(), {&next, &prepared});
    } else {
      AddThenNorm(x.data(), n.data(), kRows, kWidth, scale.data(), 1e-5f,
                  n.data(), {&next, &prepared});
    }
    expect_same(x, added, "residual");
    expect_same(n, want, "norm");
    std::vector<float> got(kRows * kOut), direct(kRows * kOut);
    next.ApplyPrepared(n.data(), kRows, nullptr, prepared, got.data());
    next.Apply(n.data(), kRows, nullptr, direct.data());
    expect_same(got, direct, "prepared product");
  }
  // Only the listed rows, packed into n.
  std::vector<float> x = x0, n(2 * kWidth);
  AddThenNormRows(x.data(), delta.data(), {5, 30}, kWidth, scale.data(), 1e-5f,
                  n.data());
  for (int r : {5, 30}) {
    EXPECT_EQ(
        std::memcmp(&x[r * kWidth], &added[r * kWidth], kWidth * sizeof(float)),
        0);
  }
  EXPECT_EQ(x[0], x0[0]);  // rows not listed are left alone
  std::vector<float> want_rows(2 * kWidth);
  cpu::RmsNorm(&added[5 * kWidth], 1, kWidth, scale.data(), 1e-5f,
               want_rows.data());
  cpu::RmsNorm(&added[30 * kWidth], 1, kWidth, scale.data(), 1e-5f,
               want_rows.data() + kWidth);
  expect_same(n, want_rows, "rows");
}

// Blocks for every chunk are taken before any state changes, or none.
TEST(RaggedBatchTokensTest, ReservesEveryChunkOrNothing) {
  const TokenStateLayout tokens{{{"layer0.kv", 8}}, 4};
  auto created = StatePool::CreateWithCapacity({{"state", 16}}, 3, tokens, 4);
  ASSERT_TRUE(created.ok()) << created.status();
  StatePool& pool = **created;
  ModelInfo info;
  info.architecture = "test";
  info.vocab_size = 100;
  const int a = pool.Allocate(), b = pool.Allocate();
  const std::vector<int32_t> six(6, 1), nine(9, 1), two(2, 1);
  RaggedBatch plan;
  // 2 + 3 blocks: more than the 4 there are; nothing is taken.
  ASSERT_TRUE(
      plan.Build({{a, six, false}, {b, nine, false}}, pool, info, nullptr)
          .ok());
  const absl::Status status = plan.ReserveTokens(pool);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("the batch needs 5 state blocks"),
            std::string::npos)
      << status;
  EXPECT_EQ(pool.free_blocks(), 4);
  // One chunk alone past the pool names its chunk and slot.
  const std::vector<int32_t> many(17, 1);
  ASSERT_TRUE(plan.Build({{b, many, false}}, pool, info, nullptr).ok());
  EXPECT_NE(plan.ReserveTokens(pool).message().find("chunk 0 (slot 1)"),
            std::string::npos);
  // 2 + 1 blocks fit.
  ASSERT_TRUE(
      plan.Build({{a, six, false}, {b, two, false}}, pool, info, nullptr).ok());
  EXPECT_TRUE(plan.ReserveTokens(pool).ok());
  EXPECT_EQ(pool.BlocksHeld(a), 2);
  EXPECT_EQ(pool.BlocksHeld(b), 1);
}

TEST(RaggedBatchTokensTest, PoolMustHaveTheModelsTokenLayout) {
  const TokenStateLayout tokens{{{"layer0.kv", 8}}, 4};
  auto with = StatePool::CreateWithCapacity({{"state", 16}}, 1, tokens, 4);
  auto without = StatePool::CreateWithCapacity({{"state", 16}}, 1);
  ASSERT_TRUE(with.ok() && without.ok());
  EXPECT_TRUE(CheckPoolLayout(**with, {{"state", 16}}, tokens).ok());
  EXPECT_EQ(CheckPoolLayout(**without, {{"state", 16}}, tokens).code(),
            absl::StatusCode::kFailedPrecondition);
  const TokenStateLayout wider{{{"layer0.kv", 16}}, 4};
  EXPECT_EQ(CheckPoolLayout(**with, {{"state", 16}}, wider).code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace slabserve
