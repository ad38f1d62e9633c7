// The host side of the CUDA decode graphs: buckets, the decode test, and
// the padded batch a graph reads (its real rows as an eager step would
// upload them, its padding confined to the scratch slot).
#include "engine/backend/decode_graph_plan.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "engine/state/state_pool.h"

namespace slabserve {
namespace {

TEST(DecodeBucketsTest, PowersOfTwoUpToTheLargest) {
  EXPECT_EQ(DecodeBuckets(0), std::vector<int>{});
  EXPECT_EQ(DecodeBuckets(-1), std::vector<int>{});
  EXPECT_EQ(DecodeBuckets(1), std::vector<int>{1});
  EXPECT_EQ(DecodeBuckets(8), (std::vector<int>{1, 2, 4, 8}));
  EXPECT_EQ(DecodeBuckets(12), (std::vector<int>{1, 2, 4, 8, 12}));
  EXPECT_EQ(DecodeBuckets(1024).size(), 11u);
}

TEST(DecodeBucketsTest, SmallestBucketThatHolds) {
  const std::vector<int> buckets = DecodeBuckets(12);
  EXPECT_EQ(DecodeBucket(buckets, 0), 0);
  EXPECT_EQ(DecodeBucket(buckets, 1), 1);
  EXPECT_EQ(DecodeBucket(buckets, 3), 4);
  EXPECT_EQ(DecodeBucket(buckets, 8), 8);
  EXPECT_EQ(DecodeBucket(buckets, 9), 12);
  EXPECT_EQ(DecodeBucket(buckets, 12), 12);
  EXPECT_EQ(DecodeBucket(buckets, 13), 0);
  EXPECT_EQ(DecodeBucket({}, 1), 0);
}

TEST(IsDecodeStepTest, OnlyOneTokenPerChunk) {
  EXPECT_FALSE(IsDecodeStep({}));
  std::vector<PlannedChunk> chunks = {{0, {5}, true}, {1, {6}, false}};
  EXPECT_TRUE(IsDecodeStep(chunks));
  chunks.push_back({2, {7, 8}, true});
  EXPECT_FALSE(IsDecodeStep(chunks));
}

TEST(BatchIntsLayoutTest, ArraysFollowEachOther) {
  const BatchIntsLayout layout(10, 3, 2);
  EXPECT_EQ(layout.token_chunk, 0u);
  EXPECT_EQ(layout.token_position, 10u);
  EXPECT_EQ(layout.token_id, 20u);
  EXPECT_EQ(layout.chunk_begin, 30u);
  EXPECT_EQ(layout.chunk_slot, 34u);
  EXPECT_EQ(layout.chunk_start, 37u);
  EXPECT_EQ(layout.head_rows, 40u);
  EXPECT_EQ(layout.size, 42u);
}

// A decode batch of `slots` at `positions`, validated by RaggedBatch as the
// backend does.
class PaddedDecodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pool = StatePool::CreateWithCapacity({{"slot", sizeof(int32_t)}}, 8);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    info_.vocab_size = 100;
    for (int i = 0; i < 5; ++i) ASSERT_EQ(pool_->Allocate(), i);
  }

  std::unique_ptr<StatePool> pool_;
  ModelInfo info_;
  float logits_ = 0.0f;
};

TEST_F(PaddedDecodeTest, UnpaddedIsWhatAnEagerStepUploads) {
  const std::vector<DecodeRow> rows = {{3, 7, 11}, {0, 2, 12}, {4, 0, 13}};
  std::vector<SequenceChunk> chunks;
  for (const DecodeRow& row : rows) {
    pool_->set_position(row.slot, row.position);
    chunks.push_back({row.slot, absl::MakeConstSpan(&row.token, 1), true});
  }
  RaggedBatch batch;
  ASSERT_TRUE(batch.Build(chunks, *pool_, info_, &logits_).ok());
  const BatchIntsLayout layout(3, 3, 3);
  std::vector<int> eager(layout.size, -1), padded(layout.size, -2);
  FillBatchInts(batch, eager.data());
  FillPaddedDecode(rows, 3, 8, padded.data());
  EXPECT_EQ(eager, padded);
}

TEST_F(PaddedDecodeTest, PaddingRowsOnlyReachTheScratchSlot) {
  const std::vector<DecodeRow> rows = {{3, 7, 11}, {0, 2, 12}, {4, 9, 13}};
  const int bucket = 8, scratch = 8;
  const BatchIntsLayout layout(bucket, bucket, bucket);
  std::vector<int> ints(layout.size, -1);
  FillPaddedDecode(rows, bucket, scratch, ints.data());
  for (int i = 0; i < bucket; ++i) {
    const bool real = i < 3;
    EXPECT_EQ(ints[layout.token_chunk + i], i);
    EXPECT_EQ(ints[layout.chunk_begin + i], i);
    EXPECT_EQ(ints[layout.head_rows + i], i);
    EXPECT_EQ(ints[layout.chunk_slot + i], real ? rows[i].slot : scratch);
    EXPECT_EQ(ints[layout.token_position + i], real ? rows[i].position : 0);
    EXPECT_EQ(ints[layout.chunk_start + i], real ? rows[i].position : 0);
    EXPECT_EQ(ints[layout.token_id + i], real ? rows[i].token : 0);
  }
  EXPECT_EQ(ints[layout.chunk_begin + bucket], bucket);
  // No real slot appears past the real rows.
  for (int i = 3; i < bucket; ++i) {
    for (const DecodeRow& row : rows) {
      EXPECT_NE(ints[layout.chunk_slot + i], row.slot);
    }
  }
}

}  // namespace
}  // namespace slabserve
