#include "engine/scheduler/prefix_cache.h"

#include "gtest/gtest.h"

namespace slabserve {
namespace {

// The cache sees only a snapshot's size, whether it holds logits and the
// blocks it pins.
class TestSnapshot : public SlotSnapshot {
 public:
  TestSnapshot(int32_t position, size_t bytes, bool logits, int blocks)
      : position_(position), bytes_(bytes), logits_(logits), blocks_(blocks) {}
  size_t bytes() const override { return bytes_; }
  bool has_logits() const override { return logits_; }
  int blocks() const override { return blocks_; }
  int32_t position() const { return position_; }

 private:
  int32_t position_;
  size_t bytes_;
  bool logits_;
  int blocks_;
};

std::shared_ptr<const SlotSnapshot> State(int32_t position, size_t bytes,
                                          bool logits = false, int blocks = 0) {
  return std::make_shared<TestSnapshot>(position, bytes, logits, blocks);
}

int32_t Position(const CachedPrefix* entry) {
  return static_cast<const TestSnapshot&>(*entry->snapshot).position();
}

TEST(PrefixCacheTest, FindsTheLongestUsablePrefix) {
  PrefixCache cache(1 << 20);
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(cache.Lookup(prompt), nullptr);
  cache.Insert({1, 2}, State(2, 16));
  cache.Insert({1, 2, 3, 4}, State(4, 16));
  cache.Insert({1, 9, 3, 4, 5}, State(5, 16));  // not a prefix
  const CachedPrefix* hit = cache.Lookup(prompt);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(Position(hit), 4);
  // A whole-prompt entry is usable only with the logits of its last token.
  cache.Insert(prompt, State(6, 16));
  EXPECT_EQ(Position(cache.Lookup(prompt)), 4);
  cache.Insert(prompt, State(6, 16, /*logits=*/true));
  hit = cache.Lookup(prompt);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(Position(hit), 6);
  EXPECT_TRUE(hit->snapshot->has_logits());
  EXPECT_EQ(cache.entries(), 4);
}

TEST(PrefixCacheTest, EvictsLeastRecentlyUsedWithinTheByteBound) {
  PrefixCache probe(1 << 20);
  probe.Insert({1}, State(1, 1000));
  const size_t entry_bytes = probe.bytes();
  PrefixCache cache(3 * entry_bytes);
  cache.Insert({1}, State(1, 1000));
  cache.Insert({2}, State(1, 1000));
  cache.Insert({3}, State(1, 1000));
  ASSERT_NE(cache.Lookup({1, 7}), nullptr);  // {1} is now the most recent
  cache.Insert({4}, State(1, 1000));         // evicts {2}
  EXPECT_EQ(cache.entries(), 3);
  EXPECT_LE(cache.bytes(), 3 * entry_bytes);
  EXPECT_NE(cache.Lookup({1, 7}), nullptr);
  EXPECT_EQ(cache.Lookup({2, 7}), nullptr);
  EXPECT_NE(cache.Lookup({3, 7}), nullptr);
  EXPECT_NE(cache.Lookup({4, 7}), nullptr);
  // Larger than the whole cache: not stored, nothing evicted.
  cache.Insert({5}, State(1, 10 * entry_bytes));
  EXPECT_EQ(cache.Lookup({5, 7}), nullptr);
  EXPECT_EQ(cache.entries(), 3);
}

TEST(PrefixCacheTest, EvictsTheLeastRecentlyUsedEntriesThatPinBlocks) {
  PrefixCache cache(1 << 20);
  cache.Insert({1}, State(1, 16, false, 3));
  cache.Insert({2}, State(1, 16, false, 0));  // constant-size state only
  cache.Insert({3}, State(1, 16, false, 5));
  cache.Insert({4}, State(1, 16, false, 2));
  EXPECT_EQ(cache.pinned_blocks(), 10);
  ASSERT_NE(cache.Lookup(std::vector<int32_t>{1, 0}), nullptr);  // now recent
  EXPECT_TRUE(cache.EvictOnePinningBlocks());  // {3}: oldest pinning
  EXPECT_EQ(cache.pinned_blocks(), 5);
  EXPECT_EQ(cache.Lookup(std::vector<int32_t>{3, 0}), nullptr);
  EXPECT_TRUE(cache.EvictOnePinningBlocks());  // {4}
  EXPECT_TRUE(cache.EvictOnePinningBlocks());  // {1}
  EXPECT_FALSE(cache.EvictOnePinningBlocks());
  EXPECT_EQ(cache.pinned_blocks(), 0);
  EXPECT_EQ(cache.entries(), 1);  // {2} pins nothing and stays
}

}  // namespace
}  // namespace slabserve
