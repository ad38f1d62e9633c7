// Per-token state in shared, reference-counted blocks: growth, release,
// copy on write for forks and shared snapshots, swap copies.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "engine/state/state_pool.h"

namespace slabserve {
namespace {

constexpr int kBlockTokens = 4;

TokenStateLayout Tokens() {
  // Two kinds of different widths: rows must not overlap.
  return {{{"layer0.kv", 8 * 4}, {"layer2.kv", 4 * 4}}, kBlockTokens};
}

std::unique_ptr<StatePool> Pool(int slots, int blocks) {
  auto pool =
      StatePool::CreateWithCapacity({{"conv", 16}}, slots, Tokens(), blocks);
  EXPECT_TRUE(pool.ok()) << pool.status();
  return *std::move(pool);
}

// Writes a value unique to (slot tag, position, kind) at every position in
// [begin, end) and advances the position.
void Feed(StatePool& pool, int slot, int tag, int end) {
  ASSERT_TRUE(pool.ReserveTokens(slot, end).ok());
  for (int p = pool.position(slot); p < end; ++p) {
    for (int kind = 0; kind < 2; ++kind) {
      const int width = kind == 0 ? 8 : 4;
      int32_t* row = pool.TokenRow<int32_t>(kind, slot, p);
      for (int i = 0; i < width; ++i) row[i] = tag * 100000 + p * 10 + kind;
    }
  }
  pool.set_position(slot, end);
}

// Whether every position below `end` holds what Feed wrote for `tags`
// (tags[p] is the tag that wrote position p).
bool Holds(const StatePool& pool, int slot, const std::vector<int>& tags) {
  for (int p = 0; p < static_cast<int>(tags.size()); ++p) {
    for (int kind = 0; kind < 2; ++kind) {
      const int width = kind == 0 ? 8 : 4;
      const int32_t* row = pool.TokenRow<int32_t>(kind, slot, p);
      for (int i = 0; i < width; ++i) {
        if (row[i] != tags[p] * 100000 + p * 10 + kind) return false;
      }
    }
  }
  return true;
}

TEST(TokenBlocksTest, BudgetGivesEverySlotAtLeastOneBlock) {
  const size_t slot_bytes = 16 + 4, block_bytes = (32 + 16) * kBlockTokens;
  auto pool = StatePool::CreateWithBudget({{"conv", 16}}, 10000, Tokens());
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ((*pool)->capacity(), 10000 / (slot_bytes + block_bytes));
  EXPECT_GE((*pool)->block_capacity(), (*pool)->capacity());
  EXPECT_LE((*pool)->bytes_reserved(), 10000u);
  EXPECT_EQ((*pool)->bytes_per_block(), block_bytes);
}

TEST(TokenBlocksTest, BlocksAreTakenAsTheSequenceGrowsAndReturned) {
  auto pool = Pool(2, 5);
  const int slot = pool->Allocate();
  EXPECT_EQ(pool->BlocksToGrow(slot, 9), 3);
  Feed(*pool, slot, 1, 9);
  EXPECT_EQ(pool->BlocksHeld(slot), 3);
  EXPECT_EQ(pool->free_blocks(), 2);
  EXPECT_EQ(pool->BlocksToGrow(slot, 12), 0);  // fits the third block
  Feed(*pool, slot, 1, 12);
  EXPECT_TRUE(Holds(*pool, slot, std::vector<int>(12, 1)));
  pool->Release(slot);
  EXPECT_EQ(pool->free_blocks(), 5);
  EXPECT_EQ(pool->bytes_in_use(), 0u);
}

TEST(TokenBlocksTest, ReservingIsAllOrNothing) {
  auto pool = Pool(2, 3);
  const int a = pool->Allocate(), b = pool->Allocate();
  Feed(*pool, a, 1, 8);
  const absl::Status status = pool->ReserveTokens(b, 9);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("needs 3 state blocks"), std::string::npos)
      << status;
  EXPECT_EQ(pool->BlocksHeld(b), 0);
  EXPECT_EQ(pool->free_blocks(), 1);
}

TEST(TokenBlocksTest, ForkSharesBlocksAndCopiesOnWrite) {
  auto pool = Pool(2, 8);
  const int a = pool->Allocate(), b = pool->Allocate();
  Feed(*pool, a, 1, 6);  // blocks 0 (full) and 1 (half)
  pool->Copy(a, b);
  EXPECT_EQ(pool->blocks_in_use(), 2);  // nothing copied
  // b writes into the shared half block: it copies that one only.
  EXPECT_EQ(pool->BlocksToGrow(b, 7), 1);
  Feed(*pool, b, 2, 7);
  EXPECT_EQ(pool->blocks_in_use(), 3);
  Feed(*pool, a, 3, 8);
  std::vector<int> a_tags(6, 1), b_tags(6, 1);
  a_tags.insert(a_tags.end(), {3, 3});
  b_tags.push_back(2);
  EXPECT_TRUE(Holds(*pool, a, a_tags));
  EXPECT_TRUE(Holds(*pool, b, b_tags));
  pool->Release(a);
  EXPECT_TRUE(Holds(*pool, b, b_tags));  // the shared full block stays
  pool->Release(b);
  EXPECT_EQ(pool->free_blocks(), 8);
}

TEST(TokenBlocksTest, SharedSnapshotIsNeverOverwritten) {
  auto pool = Pool(2, 8);
  const int a = pool->Allocate();
  Feed(*pool, a, 1, 5);
  StateSnapshot cached = pool->Share(a);
  EXPECT_EQ(pool->blocks_in_use(), 2);
  Feed(*pool, a, 2, 8);  // writes into the shared second block: copied
  pool->Release(a);
  EXPECT_EQ(pool->blocks_in_use(), 2);  // held by the snapshot alone
  // A new sequence reuses freed blocks; the snapshot's are not among them.
  const int c = pool->Allocate();
  Feed(*pool, c, 7, 16);
  const int b = pool->Allocate();
  ASSERT_TRUE(pool->Restore(b, cached).ok());
  EXPECT_EQ(pool->position(b), 5);
  EXPECT_TRUE(Holds(*pool, b, std::vector<int>(5, 1)));
  cached.shared.Reset();
  pool->Release(b);
  pool->Release(c);
  EXPECT_EQ(pool->free_blocks(), 8);
}

TEST(TokenBlocksTest, SavedCopyRestoresAfterItsBlocksWereReused) {
  auto pool = Pool(1, 4);
  const int a = pool->Allocate();
  Feed(*pool, a, 1, 7);
  const StateSnapshot swapped = pool->Save(a);
  pool->Release(a);
  const int other = pool->Allocate();
  Feed(*pool, other, 9, 16);  // overwrites every block
  EXPECT_EQ(pool->Restore(other, swapped).code(), absl::StatusCode::kOk);
  EXPECT_TRUE(Holds(*pool, other, std::vector<int>(7, 1)));
  EXPECT_EQ(pool->free_blocks(), 2);
}

TEST(TokenBlocksTest, RestoreWithoutRoomLeavesTheSlotAlone) {
  auto pool = Pool(2, 4);
  const int a = pool->Allocate(), b = pool->Allocate();
  Feed(*pool, a, 1, 12);
  const StateSnapshot swapped = pool->Save(a);
  Feed(*pool, b, 2, 4);
  EXPECT_EQ(pool->Restore(b, swapped).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Holds(*pool, b, std::vector<int>(4, 2)));
}

TEST(TokenBlocksTest, GroupCopyOfAForkKeepsItsBlocksShared) {
  auto pool = Pool(4, 10);
  const int a = pool->Allocate(), b = pool->Allocate();
  Feed(*pool, a, 1, 10);  // blocks 0, 1 (full) and 2 (half)
  pool->Copy(a, b);
  Feed(*pool, b, 2, 13);  // b copies the half block and takes one more
  EXPECT_EQ(pool->blocks_in_use(), 5);
  const SlotGroupCopy copy = pool->SaveGroup({a, b});
  EXPECT_EQ(copy.blocks, 5);  // the two shared full blocks once
  pool->Release(a);
  pool->Release(b);
  const int other = pool->Allocate();
  Feed(*pool, other, 9, 24);  // overwrites 6 blocks
  pool->Release(other);
  const int c = pool->Allocate(), d = pool->Allocate();
  ASSERT_TRUE(pool->RestoreGroup({c, d}, copy).ok());
  EXPECT_EQ(pool->blocks_in_use(), 5);
  std::vector<int> a_tags(10, 1), b_tags(10, 1);
  b_tags.insert(b_tags.end(), {2, 2, 2});
  EXPECT_TRUE(Holds(*pool, c, a_tags));
  EXPECT_TRUE(Holds(*pool, d, b_tags));
  EXPECT_EQ(pool->position(d), 13);
  // Still shared: c writing into its own half block copies nothing.
  EXPECT_EQ(pool->BlocksToGrow(c, 12), 0);
  pool->Release(c);
  EXPECT_TRUE(Holds(*pool, d, b_tags));
  pool->Release(d);
  EXPECT_EQ(pool->free_blocks(), 10);
}

TEST(TokenBlocksTest, GroupRestoreWithoutRoomChangesNothing) {
  auto pool = Pool(3, 4);
  const int a = pool->Allocate();
  Feed(*pool, a, 1, 12);
  const SlotGroupCopy copy = pool->SaveGroup({a});
  const int b = pool->Allocate();
  EXPECT_EQ(pool->RestoreGroup({b}, copy).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(pool->BlocksHeld(b), 0);
  EXPECT_EQ(pool->free_blocks(), 1);
  pool->Release(a);
  ASSERT_TRUE(pool->RestoreGroup({b}, copy).ok());
  EXPECT_TRUE(Holds(*pool, b, std::vector<int>(12, 1)));
}

TEST(TokenBlocksTest, RandomForksAndReleasesNeverLeakBlocks) {
  auto pool = Pool(8, 64);
  std::mt19937 rng(3);
  std::vector<int> live;
  for (int i = 0; i < 5000; ++i) {
    const int op = rng() % 4;
    if (op == 0 && pool->free_slots() > 0) {
      live.push_back(pool->Allocate());
    } else if (op == 1 && !live.empty()) {
      const int slot = live[rng() % live.size()];
      const int end = pool->position(slot) + 1 + rng() % 5;
      if (pool->BlocksToGrow(slot, end) <= pool->free_blocks()) {
        Feed(*pool, slot, 1, end);
      }
    } else if (op == 2 && !live.empty() && pool->free_slots() > 0) {
      const int to = pool->Allocate();
      pool->Copy(live[rng() % live.size()], to);
      live.push_back(to);
    } else if (op == 3 && !live.empty()) {
      const size_t k = rng() % live.size();
      pool->Release(live[k]);
      live.erase(live.begin() + k);
    }
  }
  for (int slot : live) pool->Release(slot);
  EXPECT_EQ(pool->free_blocks(), 64);
}

TEST(TokenBlocksTest, BadTokenLayoutIsRejected) {
  EXPECT_FALSE(
      StatePool::CreateWithCapacity({{"a", 4}}, 2, {{{"odd", 6}}, 4}, 4).ok());
  EXPECT_FALSE(
      StatePool::CreateWithCapacity({{"a", 4}}, 2, {{{"kv", 8}}, 0}, 4).ok());
  EXPECT_FALSE(
      StatePool::CreateWithCapacity({{"a", 4}}, 2, {{{"kv", 8}}, 4}, 0).ok());
}

}  // namespace
}  // namespace slabserve
