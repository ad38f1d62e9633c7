// Throughput of MatMulPacked for the shapes the models use: decode (1 row),
// small batches and prefill, for SRM's MLP (k=1024, n=4096 and k=4096,
// n=1024) and a tiny model's projection (k=64, n=192).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/cpu/matmul.h"

namespace slabserve::cpu {
namespace {

void BM_MatMulPacked(benchmark::State& state) {
  const int rows = static_cast<int>(state.range(0));
  const int k = static_cast<int>(state.range(1));
  const int n = static_cast<int>(state.range(2));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(rows) * k),
      w(static_cast<size_t>(n) * k), bias(n), y(static_cast<size_t>(rows) * n);
  for (float& v : x) v = dist(rng);
  for (float& v : w) v = dist(rng);
  for (float& v : bias) v = dist(rng);
  const PackedWeight packed(w.data(), n, k);
  for (auto _ : state) {
    MatMulPacked(x.data(), rows, packed, bias.data(), y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * rows * k * n, benchmark::Counter::kIsIterationInvariantRate,
      benchmark::Counter::kIs1000);
}

BENCHMARK(BM_MatMulPacked)
    ->ArgNames({"rows", "k", "n"})
    ->ArgsProduct({{1, 16, 256, 2048}, {1024}, {4096}})
    ->ArgsProduct({{1, 16, 256, 2048}, {4096}, {1024}})
    ->ArgsProduct({{1, 16, 256, 2048}, {64}, {192}})
    ->UseRealTime();

}  // namespace
}  // namespace slabserve::cpu
