// CPU throughput of any model the registry loads: decode step time and tok/s
// per batch size, prefill tok/s of one sequence per length, achieved GFLOP/s
// (from the model's ComputeProfile), the same products timed on the matrix
// kernel alone (F32 or BF16, as the model was loaded), weight bytes read per
// decode step over this machine's STREAM-style triad bandwidth, and minor
// page faults per step (a decode step or one prefill call; the slot's own
// state pages are touched before timing). Step times and the kernel alone
// are timed alternately (one pass over the model's product shapes after
// each step or prefill) and their medians reported, so that the host's
// slower and faster phases do not bias the kernel fraction.
//
//   bazel run --config=opt //engine/models:model_benchmark --
//     --model=DIR [--weights=f32|bf16] [--batches=1,64,256,1024]
//     [--lengths=8,...,4096 (empty: none)] [--workload=BxPxO] [--threads=N]
//     [--elementwise_avx512=true|false] [--bf16_isa=AVX-512|AVX2|...]
//     [--min_seconds=1] [--json=FILE]
//
// --workload=256x32x32: B fresh sequences each prefill P prompt tokens (in
// steps of at most the scheduler's default 4096-token budget) and then
// decode O greedy tokens, all of them together: the engine-only rate of the
// token mix slabload sends the server (output tokens per second).
//
// --bf16_isa: the BF16 tile set, by the name the header prints (case
// ignored), instead of the CPU's best: compares sets on one machine.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "engine/models/registry.h"
#include "engine/state/state_pool.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_bf16.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/projection.h"
#include "kernels/cpu/vector_math.h"

namespace slabserve {
namespace {

struct Options {
  std::string model;
  cpu::WeightPrecision weights = cpu::WeightPrecision::kF32;
  std::vector<int> batches = {1, 64, 256, 1024};
  std::vector<int> lengths = {8, 32, 128, 512, 1024, 4096};
  std::vector<int> workload;  // {B, P, O}, or empty
  int threads = 0;
  bool elementwise_avx512 = true;  // where the CPU has it
  std::string bf16_isa;            // empty: the CPU's best
  double min_seconds = 1.0;
  std::string json;
};

struct Result {
  std::string kind;  // "decode" or "prefill"
  int size = 0;      // batch or length
  double step_ms = 0, tokens_per_s = 0, gflops = 0, kernel_gflops = 0;
  double faults_per_step = 0;
  double weight_gbps = 0;  // decode: weight bytes per step / step time
};

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "model_benchmark: %s\n", message.c_str());
  std::exit(1);
}

// An empty list is allowed: `--lengths=` times decode alone.
std::vector<int> ParseList(const std::string& text) {
  std::vector<int> values;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int v;
    if (!absl::SimpleAtoi(part, &v) || v < 1) Fail("bad list: " + text);
    values.push_back(v);
  }
  return values;
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string key = arg.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    if (key == "--model") {
      o.model = value;
    } else if (key == "--weights") {
      absl::StatusOr<cpu::WeightPrecision> w = cpu::ParseWeightPrecision(value);
      if (!w.ok()) Fail(std::string(w.status().message()));
      o.weights = *w;
    } else if (key == "--batches") {
      o.batches = ParseList(value);
    } else if (key == "--lengths") {
      o.lengths = ParseList(value);
    } else if (key == "--workload") {
      o.workload = ParseList(absl::StrReplaceAll(value, {{"x", ","}}));
      if (o.workload.size() != 3) Fail("--workload=BxPxO, e.g. 256x32x32");
    } else if (key == "--elementwise_avx512") {
      if (value != "true" && value != "false") Fail("bad bool: " + arg);
      o.elementwise_avx512 = value == "true";
    } else if (key == "--bf16_isa") {
      o.bf16_isa = value;
    } else if (key == "--threads") {
      const std::vector<int> threads = ParseList(value);
      if (threads.size() != 1) Fail("--threads=N, e.g. 2");
      o.threads = threads[0];
    } else if (key == "--min_seconds") {
      o.min_seconds = std::atof(value.c_str());
    } else if (key == "--json") {
      o.json = value;
    } else {
      Fail("unknown flag " + arg);
    }
  }
  if (o.model.empty()) Fail("--model=DIR is required");
  return o;
}

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

long MinorFaults() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

int32_t TokenAt(int i, int vocab) { return 3 + (i * 131) % (vocab - 3); }

// FLOPs of `tokens` tokens at positions [start, start + tokens) of one
// sequence, `head_rows` of them through the LM head.
double Flops(const ComputeProfile& p, int64_t tokens, int64_t start,
             int64_t head_rows) {
  double per_token = static_cast<double>(p.other_flops_per_token);
  for (const ComputeProfile::MatMul& m : p.per_token) {
    per_token += 2.0 * m.n * m.k;
  }
  double flops = per_token * tokens + 2.0 * p.lm_head.n * p.lm_head.k *
                                          static_cast<double>(head_rows);
  for (int64_t t = start; t < start + tokens; ++t) {
    const int64_t keys = p.attention_window > 0
                             ? std::min<int64_t>(t + 1, p.attention_window)
                             : t + 1;
    flops += 4.0 * p.attention_layers * p.attention_width * keys;
  }
  return flops;
}

// Bytes of projection and LM-head weights one decode step reads.
double WeightBytes(const ComputeProfile& p) {
  const double bytes = p.precision == cpu::WeightPrecision::kBf16 ? 2 : 4;
  double total = bytes * p.lm_head.n * p.lm_head.k;
  for (const ComputeProfile::MatMul& m : p.per_token) {
    total += bytes * m.n * m.k;
  }
  return total;
}

// STREAM-style triad a = b + s·c over arrays far larger than the caches, on
// every thread: best GB/s of a few passes, counting 3 arrays of traffic.
double TriadGbps() {
  const size_t n = size_t{1} << 26;  // 256 MiB per array
  std::vector<float> a(n, 0.0f), b(n, 1.0f), c(n, 2.0f);
  double best = 0;
  for (int pass = 0; pass < 5; ++pass) {
    const double begin = Now();
    auto triad = [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) a[i] = b[i] + 3.0f * c[i];
    };
    cpu::ParallelFor(static_cast<int64_t>(n), 1 << 16, std::ref(triad));
    best = std::max(best, 3.0 * n * sizeof(float) / (Now() - begin) * 1e-9);
  }
  return best;
}

// The model's products alone on the matrix kernel (the profile's
// precision), random weights packed once: every (n, k) shape it multiplies
// per token with `rows` rows, and the LM head with `head_rows` rows.
class KernelPass {
 public:
  KernelPass(const ComputeProfile& p, int rows, int head_rows) {
    std::map<std::pair<int, int>, int> uses;  // (n, k) → products per pass
    for (const ComputeProfile::MatMul& m : p.per_token) ++uses[{m.n, m.k}];
    for (const auto& [shape, count] : uses) {
      Add(shape.first, shape.second, rows, count, p.precision);
    }
    if (head_rows > 0) {
      Add(p.lm_head.n, p.lm_head.k, head_rows, 1, p.precision);
    }
  }

  // Seconds of one pass: each shape run twice, the second (warm: its
  // weights and rows in cache, as in the kernel's own benchmark) timed and
  // counted once per use.
  double Seconds() {
    double total = 0;
    for (Shape& s : shapes_) {
      s.weight.Apply(s.x.data(), s.rows, nullptr, s.y.data());
      const double begin = Now();
      s.weight.Apply(s.x.data(), s.rows, nullptr, s.y.data());
      total += (Now() - begin) * s.count;
    }
    return total;
  }
  double Flops() const { return flops_; }

 private:
  struct Shape {
    cpu::Projection weight;
    std::vector<float> x, y;
    int rows, count;
  };

  void Add(int n, int k, int rows, int count, cpu::WeightPrecision precision) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> w(static_cast<size_t>(n) * k);
    for (float& v : w) v = dist(rng);
    Shape& s = shapes_.emplace_back();
    s.weight = cpu::Projection(w.data(), n, k, precision);
    s.x.resize(static_cast<size_t>(rows) * k);
    for (float& v : s.x) v = dist(rng);
    s.y.resize(static_cast<size_t>(rows) * n);
    s.rows = rows;
    s.count = count;
    flops_ += 2.0 * n * k * rows * count;
  }

  std::vector<Shape> shapes_;
  double flops_ = 0;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median seconds of run() (which times itself) and of one kernel pass,
// alternated for at least min_seconds (and 3 rounds), so that the host's
// slow and fast phases reach both alike: their ratio, the kernel fraction,
// holds even where absolute times drift.
template <typename Run>
std::pair<double, double> TimeInterleaved(const Run& run, KernelPass& kernel,
                                          double min_seconds) {
  std::vector<double> runs, passes;
  const double begin = Now();
  while (runs.size() < 3 || Now() - begin < min_seconds) {
    runs.push_back(run());
    passes.push_back(kernel.Seconds());
  }
  return {Median(runs), Median(passes)};
}

std::unique_ptr<StatePool> NewPool(const Model& model, int capacity) {
  auto pool = StatePool::CreateWithCapacity(model.StateLayout(), capacity);
  if (!pool.ok()) Fail(pool.status().ToString());
  return std::move(*pool);
}

Result Decode(Model& model, int batch, const Options& o) {
  const ModelInfo& info = model.info();
  const int V = info.vocab_size;
  // Past a full attention window, so every step attends to W keys.
  const int prompt_length = std::max(16, info.attention_window);
  std::unique_ptr<StatePool> pool = NewPool(model, batch);
  std::vector<int32_t> prompt(prompt_length);
  for (int i = 0; i < prompt_length; ++i) prompt[i] = TokenAt(i, V);
  std::vector<SequenceChunk> chunks(batch);
  for (int b = 0; b < batch; ++b) {
    chunks[b] = {pool->Allocate(), prompt, /*want_logits=*/false};
  }
  // Prompts in groups, so the activations stay moderate.
  constexpr int kPromptsPerCall = 64;
  for (int b = 0; b < batch; b += kPromptsPerCall) {
    const int n = std::min(kPromptsPerCall, batch - b);
    absl::Status s =
        model.Forward({&chunks[b], static_cast<size_t>(n)}, *pool, nullptr);
    if (!s.ok()) Fail(s.ToString());
  }
  std::vector<int32_t> tokens(batch);
  std::vector<float> logits(static_cast<size_t>(batch) * V);
  for (int b = 0; b < batch; ++b) {
    chunks[b].tokens = {&tokens[b], 1};
    chunks[b].want_logits = true;
  }
  int step = 0;
  auto run_step = [&] {
    for (int b = 0; b < batch; ++b) tokens[b] = TokenAt(step + b, V);
    const double begin = Now();
    absl::Status s = model.Forward(chunks, *pool, logits.data());
    if (!s.ok()) Fail(s.ToString());
    ++step;
    return Now() - begin;
  };
  for (int i = 0; i < 3; ++i) run_step();  // reach the steady state
  const ComputeProfile profile = model.Profile();
  KernelPass kernel(profile, batch, batch);
  kernel.Seconds();  // its first pass grows buffers: not the steps' faults
  const long faults = MinorFaults();
  const int steps_before = step;
  const auto [seconds, kernel_seconds] =
      TimeInterleaved(run_step, kernel, o.min_seconds);
  Result r;
  r.kind = "decode";
  r.size = batch;
  r.faults_per_step =
      static_cast<double>(MinorFaults() - faults) / (step - steps_before);
  r.step_ms = seconds * 1e3;
  r.tokens_per_s = batch / seconds;
  r.gflops = Flops(profile, 1, prompt_length, 1) * batch / seconds * 1e-9;
  r.kernel_gflops = kernel.Flops() / kernel_seconds * 1e-9;
  r.weight_gbps = WeightBytes(profile) / seconds * 1e-9;
  return r;
}

Result Prefill(Model& model, int length, const Options& o) {
  const int V = model.info().vocab_size;
  std::unique_ptr<StatePool> pool = NewPool(model, 1);
  std::vector<int32_t> prompt(length);
  for (int i = 0; i < length; ++i) prompt[i] = TokenAt(i, V);
  std::vector<float> logits(V);
  long faults = 0;
  int runs = 0;
  auto run = [&] {
    const int slot = pool->Allocate();  // zeroes (touches) the slot's state
    const long faults_before = MinorFaults();
    const double begin = Now();
    absl::Status s = model.Prefill(slot, prompt, *pool, logits.data());
    if (!s.ok()) Fail(s.ToString());
    const double seconds = Now() - begin;
    faults += MinorFaults() - faults_before;
    ++runs;
    pool->Release(slot);
    return seconds;
  };
  run();  // warm-up
  faults = runs = 0;
  const ComputeProfile profile = model.Profile();
  KernelPass kernel(profile, length, 1);
  const auto [seconds, kernel_seconds] =
      TimeInterleaved(run, kernel, o.min_seconds);
  Result r;
  r.kind = "prefill";
  r.size = length;
  r.faults_per_step = static_cast<double>(faults) / runs;
  r.step_ms = seconds * 1e3;
  r.tokens_per_s = length / seconds;
  r.gflops = Flops(profile, length, 0, 1) / seconds * 1e-9;
  r.kernel_gflops = kernel.Flops() / kernel_seconds * 1e-9;
  return r;
}

// Runs the BF16 products on the tile set `name` (as Bf16IsaName spells it,
// case ignored); fails naming the choices when it is unknown or unsupported.
void UseBf16Isa(const std::string& name) {
  using cpu::Bf16Isa;
  std::vector<std::string> names;
  for (Bf16Isa isa : {Bf16Isa::kGeneric, Bf16Isa::kAvx2, Bf16Isa::kAvx512,
                      Bf16Isa::kAvx512Bf16, Bf16Isa::kAmx}) {
    names.push_back(cpu::Bf16IsaName(isa));
    if (!absl::EqualsIgnoreCase(name, names.back())) continue;
    if (!cpu::SetBf16Isa(isa)) {
      Fail("--bf16_isa=" + name + ": not supported here");
    }
    return;
  }
  Fail("--bf16_isa=" + name + ": not one of " + absl::StrJoin(names, ", "));
}

// The matrix kernels the model's products run on.
const char* MatMulIsa(const Options& o) {
  return o.weights == cpu::WeightPrecision::kBf16
             ? cpu::Bf16IsaName(cpu::ActiveBf16Isa())
             : cpu::MatMulInstructionSet();
}

int32_t Argmax(const float* row, int n) {
  return static_cast<int32_t>(std::max_element(row, row + n) - row);
}

// One pass of the --workload mix on fresh slots; returns its seconds.
double RunWorkload(Model& model, StatePool& pool, int B, int P, int O) {
  const int V = model.info().vocab_size;
  std::vector<std::vector<int32_t>> prompts(B, std::vector<int32_t>(P));
  std::vector<SequenceChunk> chunks(B);
  for (int b = 0; b < B; ++b) {
    for (int i = 0; i < P; ++i) prompts[b][i] = TokenAt(b * P + i, V);
    chunks[b] = {pool.Allocate(), prompts[b], /*want_logits=*/true};
  }
  std::vector<float> logits(static_cast<size_t>(B) * V);
  std::vector<int32_t> tokens(B);
  const double begin = Now();
  const int per_step = std::max(1, 4096 / P);
  for (int b = 0; b < B; b += per_step) {
    const int n = std::min(per_step, B - b);
    absl::Status s = model.Forward({&chunks[b], static_cast<size_t>(n)}, pool,
                                   logits.data() + static_cast<size_t>(b) * V);
    if (!s.ok()) Fail(s.ToString());
  }
  for (int step = 1; step < O; ++step) {
    for (int b = 0; b < B; ++b) {
      tokens[b] = Argmax(&logits[static_cast<size_t>(b) * V], V);
      chunks[b].tokens = {&tokens[b], 1};
    }
    absl::Status s = model.Forward(chunks, pool, logits.data());
    if (!s.ok()) Fail(s.ToString());
  }
  const double seconds = Now() - begin;
  for (const SequenceChunk& c : chunks) pool.Release(c.slot);
  return seconds;
}

Result Workload(Model& model, const Options& o) {
  const int B = o.workload[0], P = o.workload[1], O = o.workload[2];
  std::unique_ptr<StatePool> pool = NewPool(model, B);
  RunWorkload(model, *pool, B, P, O);  // warm-up
  double best = INFINITY, total = 0;
  for (int runs = 0; runs < 2 || total < o.min_seconds; ++runs) {
    const double seconds = RunWorkload(model, *pool, B, P, O);
    best = std::min(best, seconds);
    total += seconds;
  }
  Result r;
  r.kind = "workload";
  r.size = B;
  r.step_ms = best * 1e3 / O;
  r.tokens_per_s = static_cast<double>(B) * O / best;
  const ComputeProfile profile = model.Profile();
  r.gflops = (Flops(profile, P, 0, 1) + Flops(profile, O - 1, P, O - 1)) * B /
             best * 1e-9;
  KernelPass kernel(profile, B, B);
  double kernel_best = INFINITY;
  for (int i = 0; i < 3; ++i)
    kernel_best = std::min(kernel_best, kernel.Seconds());
  r.kernel_gflops = kernel.Flops() / kernel_best * 1e-9;
  return r;
}

std::string Json(const Options& o, const ModelInfo& info, double triad_gbps,
                 const std::vector<Result>& results) {
  std::string out = absl::StrCat(
      "{\"model\": \"", o.model, "\", \"architecture\": \"", info.architecture,
      "\", \"threads\": ", cpu::NumThreads(), ", \"weights\": \"",
      cpu::WeightPrecisionName(o.weights), "\", \"matmul_isa\": \"",
      MatMulIsa(o), "\", \"vector_math_isa\": \"",
      cpu::VectorMathInstructionSet(), "\", \"triad_gbps\": ", triad_gbps,
      ", \"results\": [");
  for (size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    absl::StrAppend(
        &out, i ? ", " : "", "{\"kind\": \"", r.kind, "\", \"size\": ", r.size,
        ", \"step_ms\": ", r.step_ms, ", \"tokens_per_s\": ", r.tokens_per_s,
        ", \"gflops\": ", r.gflops, ", \"kernel_gflops\": ", r.kernel_gflops,
        ", \"kernel_fraction\": ", r.gflops / r.kernel_gflops);
    absl::StrAppend(&out, ", \"faults_per_step\": ", r.faults_per_step,
                    ", \"weight_gbps\": ", r.weight_gbps,
                    ", \"bandwidth_fraction\": ", r.weight_gbps / triad_gbps,
                    "}");
  }
  return out + "]}\n";
}

int Main(int argc, char** argv) {
  const Options o = ParseOptions(argc, argv);
  if (o.threads > 0) cpu::SetNumThreads(o.threads);
  if (!o.bf16_isa.empty()) UseBf16Isa(o.bf16_isa);
  cpu::AllowVectorMathAvx512(o.elementwise_avx512);
  LoadOptions load_options;
  load_options.weights = o.weights;
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadModel(o.model, load_options);
  if (!model.ok()) Fail(model.status().ToString());
  const ModelInfo& info = (*model)->info();
  const double triad_gbps = TriadGbps();
  std::printf(
      "%s, %d threads, %s weights, matmul tiles %s, element-wise %s, triad "
      "%.1f GB/s\n",
      info.architecture.c_str(), cpu::NumThreads(),
      cpu::WeightPrecisionName(o.weights), MatMulIsa(o),
      cpu::VectorMathInstructionSet(), triad_gbps);
  std::printf("%-8s %6s %10s %11s %8s %8s %6s %12s %8s %6s\n", "kind", "size",
              "step ms", "tok/s", "GFLOP/s", "kernel", "frac", "faults/step",
              "GB/s", "bw");
  std::vector<Result> results;
  auto print = [&](const Result& r) {
    std::printf("%-8s %6d %10.3f %11.1f %8.1f %8.1f %6.2f", r.kind.c_str(),
                r.size, r.step_ms, r.tokens_per_s, r.gflops, r.kernel_gflops,
                r.gflops / r.kernel_gflops);
    std::printf(" %12.1f", r.faults_per_step);
    if (r.kind == "decode") {
      std::printf(" %8.1f %6.2f", r.weight_gbps, r.weight_gbps / triad_gbps);
    }
    std::printf("\n");
    std::fflush(stdout);
    results.push_back(r);
  };
  for (int batch : o.batches) print(Decode(**model, batch, o));
  for (int length : o.lengths) print(Prefill(**model, length, o));
  if (!o.workload.empty()) print(Workload(**model, o));
  const std::string json = Json(o, info, triad_gbps, results);
  if (o.json.empty()) {
    std::printf("%s", json.c_str());
  } else if (FILE* f = std::fopen(o.json.c_str(), "w")) {
    std::fputs(json.c_str(), f);
    std::fclose(f);
  } else {
    Fail("cannot write " + o.json);
  }
  return 0;
}

}  // namespace
}  // namespace slabserve

int main(int argc, char** argv) { return slabserve::Main(argc, argv); }
