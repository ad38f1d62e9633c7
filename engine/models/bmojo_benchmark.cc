// Memory and decode throughput of a hybrid Qwen3 / B'MOJO-F model:
//
//  1. bytes per sequence: the constant part (B'MOJO-F slabs and the
//     position) and the part per token (full-attention keys and values),
//     beside a pure full-attention model of the same width (every layer
//     "*", same heads and head_dim);
//  2. how many sequences a state budget holds at each context length, for
//     both;
//  3. decode tok/s per batch size and context length: one sequence is
//     prefilled to the context, forked (pool Copy: its blocks are shared) to
//     every slot of the batch, and decode steps of the whole batch are timed.
//
//   bazel run --config=opt //engine/models:bmojo_benchmark --
//     --model=DIR [--batches=1,8,32] [--contexts=128,1024,4096]
//     [--budget_gib=16] [--memory_contexts=1024,8192,32768]
//     [--min_seconds=1] [--max_steps=64] [--threads=N] [--memory_only]
//     [--eidetic_capacity=M]
//
// Parts 1 and 2 need only DIR/config.json (--memory_only skips part 3).
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
#include "absl/strings/str_split.h"
#include "engine/io/config.h"
#include "engine/models/bmojo.h"
#include "engine/models/bmojo_config.h"
#include "engine/models/registry.h"
#include "engine/state/state_pool.h"
#include "kernels/cpu/parallel.h"

ABSL_FLAG(std::string, model, "", "hybrid_qwen3 model directory");
ABSL_FLAG(std::string, batches, "1,8,32", "decode batch sizes");
ABSL_FLAG(std::string, contexts, "128,1024,4096",
          "context lengths (tokens before the timed decode steps)");
ABSL_FLAG(double, budget_gib, 16.0, "state memory budget for part 2");
ABSL_FLAG(std::string, memory_contexts, "1024,8192,32768",
          "context lengths for part 2");
ABSL_FLAG(double, min_seconds, 1.0, "time per decode measurement");
ABSL_FLAG(int, max_steps, 64, "most decode steps per measurement");
ABSL_FLAG(int, threads, 0, "worker threads (0: all cores)");
ABSL_FLAG(bool, memory_only, false, "skip the decode timings");
ABSL_FLAG(int, eidetic_capacity, 0, "eidetic memory entries per layer");

namespace slabserve {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "bmojo_benchmark: %s\n", message.c_str());
  std::exit(1);
}

std::vector<int> ParseList(const std::string& text) {
  std::vector<int> values;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int v;
    if (!absl::SimpleAtoi(part, &v) || v <= 0) {
      Fail("bad list '" + text + "'");
    }
    values.push_back(v);
  }
  return values;
}

// Bytes one sequence holds: slab rows plus the position, and per token.
struct SequenceBytes {
  size_t constant = 0;
  size_t per_token = 0;
  int block_tokens = 16;

  // With the per-token part in whole blocks, as the pool allocates it.
  size_t At(int64_t tokens) const {
    const int64_t blocks = (tokens + block_tokens - 1) / block_tokens;
    return constant + per_token * block_tokens * blocks;
  }
};

SequenceBytes BytesOf(const BmojoConfig& config) {
  SequenceBytes bytes;
  bytes.constant = sizeof(int32_t);
  for (const StateSlabSpec& slab : BmojoStateLayout(config)) {
    bytes.constant += slab.bytes_per_slot;
  }
  const TokenStateLayout tokens = BmojoTokenLayout(config);
  for (const TokenStateSpec& kind : tokens.kinds) {
    bytes.per_token += kind.bytes_per_token;
  }
  bytes.block_tokens = tokens.block_tokens;
  return bytes;
}

void PrintMemory(const BmojoConfig& config) {
  BmojoConfig dense = config;
  dense.layers.assign(config.num_layers, BmojoLayerType::kAttention);
  const SequenceBytes hybrid = BytesOf(config), full = BytesOf(dense);
  std::printf(
      "## Bytes per sequence (f32 state)\n\n"
      "| model | layers B'MOJO-F / attention | constant | per token |\n"
      "|---|---|---:|---:|\n"
      "| B'MOJO-F hybrid (W = %d) | %d / %d | %zu | %zu |\n"
      "| full attention, same width | 0 / %d | %zu | %zu |\n\n",
      config.window, config.num_bmojo_layers(), config.num_attention_layers(),
      hybrid.constant, hybrid.per_token, config.num_layers, full.constant,
      full.per_token);
  const double budget = absl::GetFlag(FLAGS_budget_gib) * kGiB;
  std::printf(
      "## Sequences a %.3g GiB state budget holds\n\n"
      "| context | hybrid bytes/seq | hybrid seqs | full-attention "
      "bytes/seq | full-attention seqs | ratio |\n"
      "|---:|---:|---:|---:|---:|---:|\n",
      absl::GetFlag(FLAGS_budget_gib));
  for (int context : ParseList(absl::GetFlag(FLAGS_memory_contexts))) {
    const double h = hybrid.At(context), f = full.At(context);
    const int64_t hs = static_cast<int64_t>(budget / h);
    const int64_t fs = static_cast<int64_t>(budget / f);
    std::printf("| %d | %.0f | %lld | %.0f | %lld | %.2f |\n", context, h,
                static_cast<long long>(hs), f, static_cast<long long>(fs),
                fs > 0 ? static_cast<double>(hs) / fs : 0.0);
  }
  std::printf("\n");
}

std::vector<int32_t> Tokens(int n, int vocab) {
  std::vector<int32_t> tokens(n);
  for (int i = 0; i < n; ++i) tokens[i] = (i * 7919 + 13) % vocab;
  return tokens;
}

// Decode tok/s of `batch` copies of `parent` (at its context) in `pool`.
double TimeDecode(Model& model, StatePool& pool, int parent, int batch) {
  const int V = model.info().vocab_size;
  std::vector<int> slots;
  for (int b = 0; b < batch; ++b) {
    slots.push_back(pool.Allocate());
    pool.Copy(parent, slots.back());
  }
  std::vector<int32_t> tokens(batch, 11);
  std::vector<float> logits(static_cast<size_t>(batch) * V);
  auto step = [&] {
    const absl::Status status =
        model.Decode(slots, tokens, pool, logits.data());
    if (!status.ok()) Fail(status.ToString());
  };
  step();  // warm-up: grows the workspace, copies the shared last block
  const double min_seconds = absl::GetFlag(FLAGS_min_seconds);
  const int max_steps = absl::GetFlag(FLAGS_max_steps);
  int steps = 0;
  const Clock::time_point start = Clock::now();
  double seconds = 0.0;
  while (steps < max_steps && (steps < 3 || seconds < min_seconds)) {
    step();
    ++steps;
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
  }
  for (int slot : slots) pool.Release(slot);
  return batch * steps / seconds;
}

void PrintDecode(const std::string& dir, const BmojoConfig& config) {
  LoadOptions options;
  options.eidetic.capacity = absl::GetFlag(FLAGS_eidetic_capacity);
  absl::StatusOr<std::unique_ptr<Model>> loaded = LoadModel(dir, options);
  if (!loaded.ok()) Fail(loaded.status().ToString());
  Model& model = **loaded;
  const std::vector<int> batches = ParseList(absl::GetFlag(FLAGS_batches));
  const std::vector<int> contexts = ParseList(absl::GetFlag(FLAGS_contexts));
  const int max_batch = *std::max_element(batches.begin(), batches.end());
  std::printf("## Decode tok/s (%d threads)\n\n| context |", cpu::NumThreads());
  for (int batch : batches) std::printf(" batch %d |", batch);
  std::printf("\n|---:|");
  for (size_t i = 0; i < batches.size(); ++i) std::printf("---:|");
  std::printf("\n");
  const int block_tokens = model.TokenLayout().block_tokens;
  const int steps = absl::GetFlag(FLAGS_max_steps) + 2;
  for (int context : contexts) {
    if (model.info().max_positions > 0 &&
        context + steps > model.info().max_positions) {
      std::printf("| %d | (past max_position_embeddings %d) |\n", context,
                  model.info().max_positions);
      continue;
    }
    const int blocks =
        (context + block_tokens - 1) / block_tokens +
        max_batch * ((steps + block_tokens - 1) / block_tokens + 1);
    auto pool = StatePool::CreateWithCapacity(
        model.StateLayout(), max_batch + 1, model.TokenLayout(), blocks);
    if (!pool.ok()) Fail(pool.status().ToString());
    const int parent = (*pool)->Allocate();
    const absl::Status status = model.Prefill(
        parent, Tokens(context, config.vocab_size), **pool, nullptr);
    if (!status.ok()) Fail(status.ToString());
    std::printf("| %d |", context);
    for (int batch : batches) {
      std::printf(" %.0f |", TimeDecode(model, **pool, parent, batch));
      std::fflush(stdout);
    }
    std::printf("\n");
  }
}

int Main() {
  const std::string dir = absl::GetFlag(FLAGS_model);
  if (dir.empty()) Fail("--model is required");
  if (absl::GetFlag(FLAGS_threads) > 0) {
    cpu::SetNumThreads(absl::GetFlag(FLAGS_threads));
  }
  absl::StatusOr<std::unique_ptr<Config>> json =
      Config::Load(dir + "/config.json");
  if (!json.ok()) Fail(json.status().ToString());
  absl::StatusOr<BmojoConfig> config = ParseBmojoConfig(**json);
  if (!config.ok()) Fail(config.status().ToString());
  config->eidetic.capacity = absl::GetFlag(FLAGS_eidetic_capacity);
  PrintMemory(*config);
  if (!absl::GetFlag(FLAGS_memory_only)) PrintDecode(dir, *config);
  return 0;
}

}  // namespace
}  // namespace slabserve

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return slabserve::Main();
}
