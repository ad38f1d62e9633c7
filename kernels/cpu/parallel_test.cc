#include "kernels/cpu/parallel.h"

#include <atomic>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace slabserve::cpu {
namespace {

// Every index is visited exactly once, whatever the grain.
TEST(ParallelForTest, CoversEveryIndexOnce) {
  for (int64_t grain : {1, 3, 1000}) {
    std::vector<std::atomic<int>> seen(1000);
    ParallelFor(1000, grain, [&](int64_t begin, int64_t end) {
      ASSERT_LT(begin, end);
      for (int64_t i = begin; i < end; ++i) seen[i].fetch_add(1);
    });
    for (const std::atomic<int>& count : seen) ASSERT_EQ(count.load(), 1);
  }
}

// Loops of different sizes back to back: a thread still finishing one loop
// never runs, or counts, a task of the next.
TEST(ParallelForTest, BackToBackLoopsKeepTheirOwnTasks) {
  std::vector<std::atomic<int>> seen(8);
  for (int loop = 0; loop < 20000; ++loop) {
    const int64_t n = loop % 2 == 0 ? 3 : 8;
    for (std::atomic<int>& count : seen) count.store(0);
    ParallelFor(n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) seen[i].fetch_add(1);
    });
    for (int64_t i = 0; i < 8; ++i) {
      ASSERT_EQ(seen[i].load(), i < n ? 1 : 0) << "loop " << loop;
    }
  }
}

// A loop started inside another loop's task runs on that thread and
// completes (the pool would otherwise wait on itself).
TEST(ParallelForTest, NestedLoopRunsInline) {
  std::vector<std::atomic<int>> seen(64 * 64);
  ParallelFor(64, 1, [&](int64_t begin, int64_t end) {
    for (int64_t outer = begin; outer < end; ++outer) {
      ParallelFor(64, 1, [&](int64_t inner_begin, int64_t inner_end) {
        EXPECT_EQ(inner_begin, 0);
        EXPECT_EQ(inner_end, 64);
        for (int64_t i = inner_begin; i < inner_end; ++i) {
          seen[outer * 64 + i].fetch_add(1);
        }
      });
    }
  });
  for (const std::atomic<int>& count : seen) ASSERT_EQ(count.load(), 1);
}

TEST(ParallelForProductBlocksTest, BlocksTileTheProduct) {
  constexpr int kRows = 250, kPanels = 37;
  std::vector<std::atomic<int>> seen(kRows * kPanels);
  ParallelForProductBlocks(kRows, kPanels, 64, {96, 24, 3},
                           [&](int r0, int r1, int p0, int p1) {
                             EXPECT_TRUE(p0 % 3 == 0);
                             for (int r = r0; r < r1; ++r) {
                               for (int p = p0; p < p1; ++p)
                                 seen[r * kPanels + p].fetch_add(1);
                             }
                           });
  for (const std::atomic<int>& count : seen) ASSERT_EQ(count.load(), 1);
}

}  // namespace
}  // namespace slabserve::cpu
