// Decode step time against batch size and prefill throughput for the tiny
// Griffin checkpoint (run with `bazel run -c opt`).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "engine/models/registry.h"
#include "engine/state/state_pool.h"

namespace slabserve {
namespace {

Model& TinyGriffin() {
  static Model* model = [] {
    absl::StatusOr<std::unique_ptr<Model>> loaded =
        LoadModel("tests/golden/griffin_tiny");
    if (!loaded.ok()) {
      std::fprintf(stderr, "%s\n", loaded.status().ToString().c_str());
      std::abort();
    }
    return loaded->release();
  }();
  return *model;
}

// Token ids spread over the vocabulary.
int32_t TokenAt(int i) { return 4 + (i * 131) % 500; }

// One decode step for `batch` sequences, each past a full window of prompt.
void BM_DecodeStep(benchmark::State& state) {
  Model& model = TinyGriffin();
  const int batch = static_cast<int>(state.range(0));
  auto pool = StatePool::CreateWithCapacity(model.StateLayout(), batch);
  if (!pool.ok()) return state.SkipWithError("pool");
  std::vector<int> slots(batch);
  std::vector<int32_t> prompt(16);
  for (int i = 0; i < 16; ++i) prompt[i] = TokenAt(i);
  prompt[0] = 2;
  std::vector<float> logits(static_cast<size_t>(batch) *
                            model.info().vocab_size);
  for (int b = 0; b < batch; ++b) {
    slots[b] = (*pool)->Allocate();
    if (!model.Prefill(slots[b], prompt, **pool, logits.data()).ok()) {
      return state.SkipWithError("prefill");
    }
  }
  std::vector<int32_t> tokens(batch);
  int step = 0;
  for (auto _ : state) {
    for (int b = 0; b < batch; ++b) tokens[b] = TokenAt(step + b);
    if (!model.Decode(slots, tokens, **pool, logits.data()).ok()) {
      return state.SkipWithError("decode");
    }
    ++step;
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_DecodeStep)
    ->RangeMultiplier(4)
    ->Range(1, 1024)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// A prompt of `length` tokens into a fresh sequence, logits of the last.
void BM_Prefill(benchmark::State& state) {
  Model& model = TinyGriffin();
  const int length = static_cast<int>(state.range(0));
  auto pool = StatePool::CreateWithCapacity(model.StateLayout(), 1);
  if (!pool.ok()) return state.SkipWithError("pool");
  std::vector<int32_t> prompt(length);
  for (int i = 0; i < length; ++i) prompt[i] = TokenAt(i);
  prompt[0] = 2;
  std::vector<float> logits(model.info().vocab_size);
  for (auto _ : state) {
    const int slot = (*pool)->Allocate();
    if (!model.Prefill(slot, prompt, **pool, logits.data()).ok()) {
      return state.SkipWithError("prefill");
    }
    (*pool)->Release(slot);
  }
  state.SetItemsProcessed(state.iterations() * length);
}
BENCHMARK(BM_Prefill)
    ->RangeMultiplier(8)
    ->Range(8, 4096)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
}  // namespace slabserve
