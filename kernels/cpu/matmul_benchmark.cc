// Throughput of MatMulPacked (F32) and MatMulBf16 (every instruction set
// this CPU has) for the shapes the models use: decode (1 row), small batches
// and prefill, for SRM's MLP (k=1024, n=4096 and k=4096, n=1024) and a tiny
// model's projection (k=64, n=192).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_bf16.h"

namespace slabserve::cpu {
namespace {

struct Operands {
  int rows, k, n;
  std::vector<float> x, w, bias, y;

  explicit Operands(const benchmark::State& state)
      : rows(static_cast<int>(state.range(0))),
        k(static_cast<int>(state.range(1))),
        n(static_cast<int>(state.range(2))),
        x(static_cast<size_t>(rows) * k),
        w(static_cast<size_t>(n) * k),
        bias(n),
        y(static_cast<size_t>(rows) * n) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (auto* v : {&x, &w, &bias}) {
      for (float& e : *v) e = dist(rng);
    }
  }
};

template <typename Fn>
void Run(benchmark::State& state, const Operands& o, Fn product) {
  for (auto _ : state) {
    product();
    benchmark::DoNotOptimize(o.y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * o.rows * o.k * o.n, benchmark::Counter::kIsIterationInvariantRate,
      benchmark::Counter::kIs1000);
}

void BM_MatMulPacked(benchmark::State& state) {
  Operands o(state);
  const PackedWeight packed(o.w.data(), o.n, o.k);
  Run(state, o, [&] {
    MatMulPacked(o.x.data(), o.rows, packed, o.bias.data(), o.y.data());
  });
}

void BM_MatMulBf16(benchmark::State& state, Bf16Isa isa) {
  if (!Bf16IsaSupported(isa)) {
    state.SkipWithError("not supported on this CPU");
    return;
  }
  Operands o(state);
  const PackedWeightBf16 packed(o.w.data(), o.n, o.k);
  Run(state, o, [&] {
    MatMulBf16(o.x.data(), o.rows, packed, o.bias.data(), o.y.data(), isa);
  });
}

BENCHMARK(BM_MatMulPacked)
    ->ArgNames({"rows", "k", "n"})
    ->ArgsProduct({{1, 16, 256, 2048}, {1024}, {4096}})
    ->ArgsProduct({{1, 16, 256, 2048}, {4096}, {1024}})
    ->ArgsProduct({{1, 16, 256, 2048}, {64}, {192}})
    ->UseRealTime();

#define SLABSERVE_BF16_BENCHMARK(name, isa)               \
  BENCHMARK_CAPTURE(BM_MatMulBf16, name, isa)             \
      ->ArgNames({"rows", "k", "n"})                      \
      ->ArgsProduct({{1, 16, 256, 2048}, {1024}, {4096}}) \
      ->ArgsProduct({{1, 16, 256, 2048}, {64}, {192}})    \
      ->UseRealTime()
SLABSERVE_BF16_BENCHMARK(generic, Bf16Isa::kGeneric);
SLABSERVE_BF16_BENCHMARK(avx2, Bf16Isa::kAvx2);
SLABSERVE_BF16_BENCHMARK(avx512, Bf16Isa::kAvx512);
SLABSERVE_BF16_BENCHMARK(avx512_bf16, Bf16Isa::kAvx512Bf16);
SLABSERVE_BF16_BENCHMARK(amx, Bf16Isa::kAmx);

}  // namespace
}  // namespace slabserve::cpu
