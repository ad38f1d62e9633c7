#include "engine/state/state_pool.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace slabserve {
namespace {

std::vector<StateSlabSpec> Layout() {
  return {{"layer0.h", 64 * 4}, {"layer1.kv_ring", 2 * 8 * 16 * 4}};
}

TEST(StatePoolTest, CapacityComesFromTheBudget) {
  size_t per_slot = 64 * 4 + 2 * 8 * 16 * 4 + 4;
  auto pool = StatePool::CreateWithBudget(Layout(), per_slot * 10 + 7);
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ((*pool)->capacity(), 10);
  EXPECT_EQ((*pool)->bytes_per_slot(), per_slot);
  EXPECT_EQ((*pool)->bytes_reserved(), per_slot * 10);
  EXPECT_EQ((*pool)->free_slots(), 10);
}

TEST(StatePoolTest, TooSmallBudgetIsAClearError) {
  auto pool = StatePool::CreateWithBudget(Layout(), 100);
  ASSERT_FALSE(pool.ok());
  EXPECT_NE(pool.status().message().find("holds no sequence"),
            std::string::npos);
}

TEST(StatePoolTest, BadSlabSizeIsRejected) {
  EXPECT_FALSE(StatePool::CreateWithCapacity({{"odd", 6}}, 4).ok());
  EXPECT_FALSE(StatePool::CreateWithCapacity(Layout(), 0).ok());
}

TEST(StatePoolTest, AllocateReleaseNeverLeaks) {
  auto pool = *StatePool::CreateWithCapacity(Layout(), 32);
  std::mt19937 rng(7);
  std::set<int> held;
  for (int i = 0; i < 10000; ++i) {
    if (rng() % 2 == 0) {
      int slot = pool->Allocate();
      if (held.size() == 32) {
        EXPECT_EQ(slot, -1);
      } else {
        ASSERT_GE(slot, 0);
        EXPECT_TRUE(held.insert(slot).second) << "slot handed out twice";
      }
    } else if (!held.empty()) {
      int slot = *held.begin();
      held.erase(held.begin());
      pool->Release(slot);
    }
    ASSERT_EQ(pool->used(), static_cast<int>(held.size()));
  }
  for (int slot : held) pool->Release(slot);
  EXPECT_EQ(pool->used(), 0);
  EXPECT_EQ(pool->free_slots(), 32);
}

TEST(StatePoolTest, AllocatedSlotIsZeroed) {
  auto pool = *StatePool::CreateWithCapacity(Layout(), 2);
  int slot = pool->Allocate();
  pool->Row<float>(0, slot)[5] = 3.0f;
  pool->set_position(slot, 9);
  pool->Release(slot);
  int again = pool->Allocate();
  ASSERT_EQ(again, slot);
  EXPECT_EQ(pool->Row<float>(0, again)[5], 0.0f);
  EXPECT_EQ(pool->position(again), 0);
}

TEST(StatePoolTest, SaveRestoreAndCopyAreExact) {
  auto pool = *StatePool::CreateWithCapacity(Layout(), 3);
  int a = pool->Allocate(), b = pool->Allocate(), c = pool->Allocate();
  for (int i = 0; i < 64; ++i) pool->Row<float>(0, a)[i] = i * 0.5f;
  pool->Row<float>(1, a)[100] = -2.0f;
  pool->set_position(a, 17);
  StateSnapshot snapshot = pool->Save(a);
  EXPECT_EQ(snapshot.bytes.size(), pool->bytes_per_slot() - 4);
  pool->Restore(b, snapshot);
  pool->Copy(a, c);
  for (int slot : {b, c}) {
    EXPECT_EQ(pool->position(slot), 17);
    EXPECT_EQ(pool->Row<float>(0, slot)[63], 31.5f);
    EXPECT_EQ(pool->Row<float>(1, slot)[100], -2.0f);
  }
}

}  // namespace
}  // namespace slabserve
