#include "engine/state/state_pool.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
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
  ASSERT_TRUE(pool->Restore(b, snapshot).ok());
  pool->Copy(a, c);
  for (int slot : {b, c}) {
    EXPECT_EQ(pool->position(slot), 17);
    EXPECT_EQ(pool->Row<float>(0, slot)[63], 31.5f);
    EXPECT_EQ(pool->Row<float>(1, slot)[100], -2.0f);
  }
}

}  // namespace
}  // namespace slabserve

namespace slabserve {
namespace {

// Pages of [data, data + bytes) resident in memory.
size_t ResidentPages(const void* data, size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data) / page * page;
  const uintptr_t end = reinterpret_cast<uintptr_t>(data) + bytes;
  std::vector<unsigned char> resident((end - begin + page - 1) / page);
  if (mincore(reinterpret_cast<void*>(begin), end - begin, resident.data()) !=
      0) {
    return 0;
  }
  size_t count = 0;
  for (unsigned char r : resident) count += r & 1;
  return count;
}

TEST(StatePoolTest, ReleaseUnusedMemoryReturnsFreeRowsOnly) {
  constexpr int kSlots = 64;
  constexpr size_t kRow = 8192;  // two pages a slot
  auto pool = StatePool::CreateWithCapacity({{"a", kRow}}, kSlots);
  ASSERT_TRUE(pool.ok());
  std::vector<int> slots;
  for (int i = 0; i < kSlots; ++i) slots.push_back((*pool)->Allocate());
  for (int slot : slots) {
    std::fill_n((*pool)->Row<char>(0, slot), kRow, static_cast<char>(slot));
  }
  const char* slab = (*pool)->Row<char>(0, 0);
  EXPECT_EQ(ResidentPages(slab, kSlots * kRow), 2u * kSlots);
  // Keep every fourth slot; the others' pages go back.
  for (int slot : slots) {
    if (slot % 4 != 0) (*pool)->Release(slot);
  }
  EXPECT_EQ((*pool)->ReleaseUnusedMemory(), (kSlots - kSlots / 4) * kRow);
  EXPECT_EQ(ResidentPages(slab, kSlots * kRow), 2u * (kSlots / 4));
  for (int slot = 0; slot < kSlots; slot += 4) {
    const char* row = (*pool)->Row<char>(0, slot);
    EXPECT_EQ(std::count(row, row + kRow, static_cast<char>(slot)),
              static_cast<long>(kRow))
        << slot;
  }
  // A slot taken again starts zeroed, as always.
  const int again = (*pool)->Allocate();
  const char* row = (*pool)->Row<char>(0, again);
  EXPECT_EQ(std::count(row, row + kRow, 0), static_cast<long>(kRow));
}

}  // namespace
}  // namespace slabserve
