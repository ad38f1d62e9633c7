// Steady-state steps allocate nothing: every buffer of a B'MOJO-F hybrid's
// Forward (plan, workspace, per-thread scratch) is grow-only, and decode
// steps inside already-held blocks take no memory from the heap. Counts
// every operator new of this test binary.
#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "engine/models/registry.h"
#include "engine/state/state_pool.h"
#include "gtest/gtest.h"

namespace {
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace slabserve {
namespace {

void SteadyDecodeAllocatesNothing(const EideticConfig& eidetic) {
  LoadOptions options;
  options.eidetic = eidetic;
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadModel("tests/golden/bmojo_tiny", options);
  ASSERT_TRUE(model.ok()) << model.status();
  auto pool = StatePool::CreateWithCapacity((*model)->StateLayout(), 2,
                                            (*model)->TokenLayout(), 16);
  ASSERT_TRUE(pool.ok()) << pool.status();
  const int block = (*model)->TokenLayout().block_tokens;
  std::vector<int32_t> prompt(block + 2);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = (i * 37 + 5) % 512;
  const int a = (*pool)->Allocate(), b = (*pool)->Allocate();
  std::vector<float> logits(2 * 512);
  std::vector<int32_t> tokens = {3, 4};
  const std::vector<SequenceChunk> prefill = {{a, prompt, true},
                                              {b, prompt, true}};
  ASSERT_TRUE((*model)->Forward(prefill, **pool, logits.data()).ok());
  const std::vector<SequenceChunk> step = {{a, {&tokens[0], 1}, true},
                                           {b, {&tokens[1], 1}, true}};
  ASSERT_TRUE((*model)->Forward(step, **pool, logits.data()).ok());
  // Positions block + 3 .. 2·block − 1: inside the blocks both slots hold.
  const long before = allocations.load();
  for (int i = 3; i < block; ++i) {
    ASSERT_TRUE((*model)->Forward(step, **pool, logits.data()).ok());
  }
  EXPECT_EQ(allocations.load() - before, 0);
}

TEST(BmojoAllocTest, SteadyDecodeStepsAllocateNothing) {
  SteadyDecodeAllocatesNothing({});
  SteadyDecodeAllocatesNothing({8, 0.5, 0});
}

}  // namespace
}  // namespace slabserve
