// Decode throughput and state capacity of the published SRM shape (V 8000,
// D 1024, 16 blocks, 4 heads, seq_len 1024, decay_constant 2) with seeded
// random weights in memory. Prints a table; build with --config=opt.
//
// Batches too large to step within --max_seconds (the largest batch whose
// state fits in 8 GiB) are stepped as consecutive Forward calls of
// kCallRows sequences until the time cap; the table then shows the measured
// rate and the projected time of one full step.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "engine/models/srm.h"
#include "engine/state/state_pool.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/projection.h"

ABSL_FLAG(double, min_seconds, 3.0,
          "Keep stepping a batch until this much time has passed.");
ABSL_FLAG(double, max_seconds, 60.0,
          "Time cap for one batch size; larger batches are measured "
          "partially.");
ABSL_FLAG(int, threads, 0, "Worker threads (0: all cores).");
ABSL_FLAG(std::string, weights, "f32",
          "Projection precision: f32 or bf16 (BF16 weights and inputs, F32 "
          "sums).");
ABSL_FLAG(int, tile_rows, slabserve::SrmModel::kDefaultTileRows,
          "Rows Forward runs through all blocks at a time.");
ABSL_FLAG(std::vector<std::string>, batches, {},
          "Decode batch sizes (default: 1,256,4096 and the largest batch "
          "whose state fits in 8 GiB).");

namespace slabserve {
namespace {

constexpr size_t kGiB = size_t{1} << 30;
// Sequences per Forward call (bounds the logits buffer: rows × V floats).
constexpr int kCallRows = 4096;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since)
      .count();
}

SrmConfig PublishedShape() {
  SrmConfig config;
  config.vocab_size = 8000;
  config.hidden_dim = 1024;
  config.num_blocks = 16;
  config.heads = 4;
  config.seq_len = 1024;
  config.decay_constant = 2;
  return config;
}

// FLOPs of one decode token (multiply-add = 2): 20·L·D² + 2·D·V.
double FlopsPerToken(const SrmConfig& c) {
  const double D = c.hidden_dim;
  return 20.0 * c.num_blocks * D * D + 2.0 * D * c.vocab_size;
}

struct Measurement {
  int64_t tokens = 0;
  double seconds = 0.0;
  bool partial = false;  // the cap ended the batch's first step early
};

// Steps `batch` sequences one token each, in Forward calls of at most
// `call_rows` sequences, until min_seconds have passed (whole steps) or
// max_seconds (mid-step).
Measurement MeasureDecode(SrmModel& model, StatePool& pool, int batch,
                          int call_rows) {
  std::vector<int> slots(batch);
  for (int& slot : slots) slot = pool.Allocate();
  const int vocab = model.info().vocab_size;
  std::vector<float> logits(static_cast<size_t>(call_rows) * vocab);
  std::vector<int32_t> tokens(call_rows);
  Measurement m;
  const double min_s = absl::GetFlag(FLAGS_min_seconds);
  const double max_s = absl::GetFlag(FLAGS_max_seconds);
  auto step = [&](bool timed, std::chrono::steady_clock::time_point start) {
    for (int begin = 0; begin < batch; begin += call_rows) {
      const int n = std::min(call_rows, batch - begin);
      for (int i = 0; i < n; ++i) {
        tokens[i] = static_cast<int32_t>((begin + i) * 7919 % vocab);
      }
      absl::Status s = model.Decode({&slots[begin], static_cast<size_t>(n)},
                                    {tokens.data(), static_cast<size_t>(n)},
                                    pool, logits.data());
      if (!s.ok()) {
        std::fprintf(stderr, "decode failed: %s\n", s.ToString().c_str());
        std::exit(1);
      }
      if (timed) m.tokens += n;
      if (timed && begin + n < batch && Seconds(start) > max_s) {
        m.partial = true;
        return;
      }
    }
  };
  // One untimed step for batches that step quickly (first touch of the
  // state pages and caches); very large batches are timed cold.
  if (static_cast<double>(batch) * FlopsPerToken(model.config()) < 2e11) {
    step(false, std::chrono::steady_clock::now());
  }
  const auto start = std::chrono::steady_clock::now();
  int steps = 0;
  do {
    step(true, start);
    ++steps;
  } while (!m.partial && Seconds(start) < min_s && Seconds(start) < max_s &&
           steps < 64);
  m.seconds = Seconds(start);
  for (int slot : slots) pool.Release(slot);
  return m;
}

int Main() {
  if (absl::GetFlag(FLAGS_threads) > 0) {
    cpu::SetNumThreads(absl::GetFlag(FLAGS_threads));
  }
  const absl::StatusOr<cpu::WeightPrecision> precision =
      cpu::ParseWeightPrecision(absl::GetFlag(FLAGS_weights));
  if (!precision.ok()) {
    std::fprintf(stderr, "--weights: %s\n",
                 precision.status().ToString().c_str());
    return 1;
  }
  const SrmConfig config = PublishedShape();
  auto build_start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<SrmModel>> model =
      SrmModel::CreateRandom(config, 1, *precision);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  (*model)->set_tile_rows(absl::GetFlag(FLAGS_tile_rows));
  std::printf(
      "SRM V=%d D=%d L=%d H=%d N=%d c=%d, random %s weights (built in "
      "%.1f s), %d threads, tiles of %d rows\n",
      config.vocab_size, config.hidden_dim, config.num_blocks, config.heads,
      config.seq_len, config.decay_constant,
      cpu::WeightPrecisionName(*precision), Seconds(build_start),
      cpu::NumThreads(), (*model)->tile_rows());

  std::printf("\nstate per sequence and capacity\n");
  std::unique_ptr<StatePool> pool_8g;
  for (size_t gib : {1, 8, 64}) {
    absl::StatusOr<std::unique_ptr<StatePool>> pool =
        StatePool::CreateWithBudget((*model)->StateLayout(), gib * kGiB);
    if (!pool.ok()) {
      std::fprintf(stderr, "%s\n", pool.status().ToString().c_str());
      return 1;
    }
    std::printf("  budget %3zu GiB: %zu bytes/sequence, %d sequences\n", gib,
                (*pool)->bytes_per_slot(), (*pool)->capacity());
    if (gib == 8) pool_8g = std::move(*pool);
  }

  const int largest = pool_8g->capacity();
  const double flops = FlopsPerToken(config);
  std::printf("\ndecode (one token per sequence per step, %.3f GFLOP/token)\n",
              flops * 1e-9);
  std::printf("  %8s %12s %12s %10s %s\n", "batch", "tokens/s", "ms/step",
              "GFLOP/s", "note");
  std::vector<int> batches = {1, 256, 4096, largest};
  if (!absl::GetFlag(FLAGS_batches).empty()) {
    batches.clear();
    for (const std::string& b : absl::GetFlag(FLAGS_batches)) {
      int batch = 0;
      if (!absl::SimpleAtoi(b, &batch) || batch < 1 || batch > largest) {
        std::fprintf(stderr, "--batches: '%s' is not in [1, %d]\n", b.c_str(),
                     largest);
        return 1;
      }
      batches.push_back(batch);
    }
  }
  for (int batch : batches) {
    const int call_rows = std::min(batch, kCallRows);
    Measurement m = MeasureDecode(**model, *pool_8g, batch, call_rows);
    const double rate = m.tokens / m.seconds;
    std::printf("  %8d %12.1f %12.1f %10.1f", batch, rate, 1e3 * batch / rate,
                rate * flops * 1e-9);
    if (m.partial) {
      std::printf(
          " capped: %lld of %d sequences stepped in %.1f s; ms/step "
          "projected",
          static_cast<long long>(m.tokens), batch, m.seconds);
    } else {
      std::printf(" %lld tokens in %.1f s", static_cast<long long>(m.tokens),
                  m.seconds);
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace slabserve

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return slabserve::Main();
}
