// Steady-state decode cost against the number of concurrent sequences: N
// requests decode together on a tiny model; reports step time, tokens per
// second, state memory and process RSS.
//
// Usage (from the workspace root, after bazel build --config=opt):
//   scheduler_benchmark [model_dir] [max_sequences]
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "engine/backend/cpu_backend.h"
#include "engine/models/registry.h"
#include "engine/scheduler/scheduler.h"
#include "kernels/cpu/parallel.h"

namespace slabserve {
namespace {

double RssMib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024;
  }
  return 0.0;
}

struct Row {
  int sequences = 0;
  int steps = 0;
  double step_ms = 0.0;  // forward pass plus sampling
  double loop_ms = 0.0;  // wall time from one step to the next
  double tokens_per_s = 0.0;
  double state_mib = 0.0;
  size_t bytes_per_sequence = 0;
  double rss_mib = 0.0;
};

absl::StatusOr<Row> Measure(Model* model, int sequences) {
  SchedulerOptions options;
  options.max_batch = sequences;
  options.step_token_budget = 8192;
  options.stream_buffer_tokens = 1 << 20;
  absl::Mutex mu;
  // Steps where every sequence decoded, and when each ended.
  std::vector<StepMetrics> steady;
  std::vector<absl::Time> ended;
  options.on_step = [&](const StepMetrics& metrics) {
    if (metrics.decode_tokens != sequences) return;
    absl::MutexLock lock(&mu);
    steady.push_back(metrics);
    ended.push_back(absl::Now());
  };
  size_t bytes_per_sequence = 0;
  {
    auto probe = CpuBackend::Create(model, size_t{1} << 30);
    if (!probe.ok()) return probe.status();
    bytes_per_sequence = (*probe)->bytes_per_slot();
  }
  auto backend = CpuBackend::Create(model, bytes_per_sequence * sequences);
  if (!backend.ok()) return backend.status();
  auto scheduler = Scheduler::Create(*std::move(backend), options);
  if (!scheduler.ok()) return scheduler.status();

  std::mt19937 rng(sequences);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < sequences; ++i) {
    GenerationRequest request;
    request.prompt = {2};
    for (int t = 0; t < 7; ++t) request.prompt.push_back(4 + rng() % 500);
    request.max_new_tokens = 1 << 30;
    request.ignore_eos = true;
    auto stream = (*scheduler)->Submit(request);
    if (!stream.ok()) return stream.status();
    streams.push_back(*stream);
  }
  // One reader drains every stream, as a server's handlers would.
  std::atomic<bool> done{false};
  std::thread reader([&] {
    std::vector<StreamEvent> events;
    while (!done.load()) {
      for (auto& stream : streams) {
        events.clear();
        stream->Read(&events, absl::ZeroDuration());
      }
      // Leave the cores to the step loop between sweeps.
      absl::SleepFor(absl::Milliseconds(sequences >= 1000 ? 20 : 1));
    }
  });
  // At least 10 steady steps and 2 s, at most 200 steps.
  const absl::Time start = absl::Now();
  while (true) {
    absl::SleepFor(absl::Milliseconds(20));
    absl::MutexLock lock(&mu);
    const int n = static_cast<int>(steady.size());
    if (n >= 200 || (n >= 10 && absl::Now() - start > absl::Seconds(2))) break;
  }
  Row row;
  row.sequences = sequences;
  row.rss_mib = RssMib();
  const SchedulerStats stats = (*scheduler)->stats();
  row.state_mib = stats.state_bytes_in_use / 1048576.0;
  row.bytes_per_sequence = stats.state_bytes_per_sequence;
  {
    absl::MutexLock lock(&mu);
    // Skip the first steady steps (caches and pages still warming up).
    const size_t skip = steady.size() / 5;
    absl::Duration total;
    for (size_t i = skip; i < steady.size(); ++i) total += steady[i].step_time;
    row.steps = static_cast<int>(steady.size() - skip);
    row.step_ms = absl::ToDoubleMilliseconds(total) / row.steps;
    row.loop_ms = absl::ToDoubleMilliseconds(ended.back() - ended[skip]) /
                  std::max<size_t>(1, steady.size() - 1 - skip);
  }
  row.tokens_per_s = sequences / (row.loop_ms / 1000.0);
  (*scheduler)->Drain(absl::ZeroDuration());
  done = true;
  reader.join();
  return row;
}

int Main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "tests/golden/griffin_tiny";
  const int max_sequences = argc > 2 ? std::atoi(argv[2]) : 10000;
  auto model = LoadModel(dir);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  std::printf("model %s (%s), %d threads\n", dir.c_str(),
              (*model)->info().architecture.c_str(), cpu::NumThreads());
  std::printf("%10s %7s %10s %10s %12s %12s %10s %9s\n", "sequences", "steps",
              "step ms", "loop ms", "tokens/s", "state MiB", "B/seq",
              "RSS MiB");
  for (int sequences : {1, 10, 100, 1000, 10000}) {
    if (sequences > max_sequences) break;
    absl::StatusOr<Row> row = Measure(model->get(), sequences);
    if (!row.ok()) {
      std::fprintf(stderr, "%d sequences: %s\n", sequences,
                   std::string(row.status().message()).c_str());
      return 1;
    }
    std::printf("%10d %7d %10.3f %10.3f %12.0f %12.2f %10zu %9.1f\n",
                row->sequences, row->steps, row->step_ms, row->loop_ms,
                row->tokens_per_s, row->state_mib, row->bytes_per_sequence,
                row->rss_mib);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace slabserve

int main(int argc, char** argv) { return slabserve::Main(argc, argv); }
