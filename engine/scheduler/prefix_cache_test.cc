#include "engine/scheduler/prefix_cache.h"

#include "gtest/gtest.h"

namespace slabserve {
namespace {

StateSnapshot State(int32_t position, size_t bytes) {
  StateSnapshot state;
  state.position = position;
  state.bytes.assign(bytes, static_cast<char>(position));
  return state;
}

TEST(PrefixCacheTest, FindsTheLongestUsablePrefix) {
  PrefixCache cache(1 << 20);
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(cache.Lookup(prompt), nullptr);
  cache.Insert({1, 2}, State(2, 16), {});
  cache.Insert({1, 2, 3, 4}, State(4, 16), {});
  cache.Insert({1, 9, 3, 4, 5}, State(5, 16), {});  // not a prefix
  const CachedPrefix* hit = cache.Lookup(prompt);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->state.position, 4);
  // A whole-prompt entry is usable only with the logits of its last token.
  cache.Insert(prompt, State(6, 16), {});
  EXPECT_EQ(cache.Lookup(prompt)->state.position, 4);
  cache.Insert(prompt, State(6, 16), {0.5f, 1.5f});
  hit = cache.Lookup(prompt);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->state.position, 6);
  EXPECT_EQ(hit->logits, (std::vector<float>{0.5f, 1.5f}));
  EXPECT_EQ(cache.entries(), 4);
}

TEST(PrefixCacheTest, EvictsLeastRecentlyUsedWithinTheByteBound) {
  PrefixCache probe(1 << 20);
  probe.Insert({1}, State(1, 1000), {});
  const size_t entry_bytes = probe.bytes();
  PrefixCache cache(3 * entry_bytes);
  cache.Insert({1}, State(1, 1000), {});
  cache.Insert({2}, State(1, 1000), {});
  cache.Insert({3}, State(1, 1000), {});
  ASSERT_NE(cache.Lookup({1, 7}), nullptr);  // {1} is now the most recent
  cache.Insert({4}, State(1, 1000), {});     // evicts {2}
  EXPECT_EQ(cache.entries(), 3);
  EXPECT_LE(cache.bytes(), 3 * entry_bytes);
  EXPECT_NE(cache.Lookup({1, 7}), nullptr);
  EXPECT_EQ(cache.Lookup({2, 7}), nullptr);
  EXPECT_NE(cache.Lookup({3, 7}), nullptr);
  EXPECT_NE(cache.Lookup({4, 7}), nullptr);
  // Larger than the whole cache: not stored, nothing evicted.
  cache.Insert({5}, State(1, 10 * entry_bytes), {});
  EXPECT_EQ(cache.Lookup({5, 7}), nullptr);
  EXPECT_EQ(cache.entries(), 3);
}

}  // namespace
}  // namespace slabserve
