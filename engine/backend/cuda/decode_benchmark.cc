// Decode step time and throughput of a device model against batch size, with
// the achieved fraction of the memory-bandwidth and BF16 compute rooflines
// (FLOP and byte counts as in the Griffin spec's cost model: every weight
// read once per step, each sequence's state read and written, keys and
// values read over the window).
//
//   decode_benchmark [--model=DIR]... [--griffin_2b] [--bf16]
//       [--batches=1,2,...,16384] [--steps=8] [--position=512]
//       [--peak_gbs=3350] [--peak_tflops=989]
//
// Every batch runs `steps` timed decode steps (forward pass plus greedy
// sampling on the device) after two warm-up steps, each sequence one token
// at `position`, eagerly (step_ms) and then replayed as one captured CUDA
// graph (graph_ms); tok/s and the roofline fractions use the faster.
// --griffin_2b builds a RecurrentGemma-2B-shaped model with random weights
// filled on the device. A batch whose state, activations or logits do not fit
// in device memory is reported and ends that model's sweep; any other error,
// or the first batch failing, makes the exit status non-zero.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "engine/backend/cuda/decode_graphs.h"
#include "engine/backend/cuda/device_buffer.h"
#include "engine/backend/cuda/device_model.h"
#include "engine/backend/cuda/griffin_device.h"
#include "engine/backend/cuda/weight_source.h"
#include "kernels/cuda/sampling_kernels.h"

namespace slabserve::cuda {
namespace {

struct Options {
  std::vector<std::string> models;
  bool griffin_2b = false;
  bool bf16 = false;
  std::vector<int> batches = {1,   2,   4,    8,    16,   32,   64,   128,
                              256, 512, 1024, 2048, 4096, 8192, 16384};
  int steps = 8;
  int position = 512;
  double peak_gbs = 3350.0;
  double peak_tflops = 989.0;
};

GriffinConfig Griffin2B() {
  GriffinConfig c;
  c.vocab_size = 256000;
  c.num_layers = 26;
  c.hidden_size = 2560;
  c.lru_width = 2560;
  c.num_heads = 10;
  c.head_dim = 256;
  c.num_kv_heads = 1;
  c.mlp_width = 7680;
  c.attention_window = 2048;
  c.conv_width = 4;
  c.rotary_dims = 128;
  c.rope_theta = 10000.0;
  c.rms_norm_eps = 1e-6f;
  c.logits_soft_cap = 30.0f;
  c.embedding_scale = 50.5f;
  for (int i = 0; i < c.num_layers; ++i) {
    c.layers.push_back(i % 3 == 2 ? GriffinBlock::kAttention
                                  : GriffinBlock::kRecurrent);
  }
  return c;
}

// The mean time in ms of `steps` runs of `step` on `stream`.
absl::StatusOr<double> TimeSteps(absl::FunctionRef<absl::Status()> step,
                                 int steps, cudaStream_t stream) {
  cudaEvent_t start, stop;
  SLAB_CUDA_RETURN_IF_ERROR(cudaEventCreate(&start));
  SLAB_CUDA_RETURN_IF_ERROR(cudaEventCreate(&stop));
  absl::Status status = CudaStatus(cudaEventRecord(start, stream), "timing");
  for (int i = 0; i < steps && status.ok(); ++i) status = step();
  if (status.ok()) status = CudaStatus(cudaEventRecord(stop, stream), "timing");
  if (status.ok()) status = CudaStatus(cudaEventSynchronize(stop), "a step");
  float ms = 0.0f;
  if (status.ok()) {
    status = CudaStatus(cudaEventElapsedTime(&ms, start, stop), "timing");
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  if (!status.ok()) return status;
  return static_cast<double>(ms) / steps;
}

// Step times in ms: run eagerly, and replayed as a CUDA graph (what the
// backend does for decode steps; no host work between the replays).
struct StepTimes {
  double eager_ms = 0.0;
  double graph_ms = 0.0;
};

// One batch: state for `batch` slots, the decode batch arrays, logits and
// sampling buffers, then timed steps.
absl::StatusOr<StepTimes> TimeBatch(DeviceModel& model, int batch,
                                    const Options& options,
                                    cudaStream_t stream) {
  const DeviceModelShape& shape = model.shape();
  std::vector<DeviceBuffer> storage(shape.slab_row_bytes.size());
  DeviceSlabs slabs;
  for (size_t i = 0; i < storage.size(); ++i) {
    const size_t bytes = shape.slab_row_bytes[i] * batch;
    SLAB_RETURN_IF_ERROR(storage[i].Reserve(bytes));
    SLAB_CUDA_RETURN_IF_ERROR(cudaMemset(storage[i].get(), 0, bytes));
    slabs.slabs.push_back(storage[i].get<float>());
  }
  std::vector<int> ints(7 * batch + 1);
  for (int i = 0; i < batch; ++i) {
    ints[i] = i;                                 // token_chunk
    ints[batch + i] = options.position;          // token_position
    ints[2 * batch + i] = i % shape.vocab_size;  // token_id
    ints[3 * batch + i] = i;                     // chunk_begin
    ints[4 * batch + 1 + i] = i;                 // chunk_slot
    ints[5 * batch + 1 + i] = options.position;  // chunk_start
    ints[6 * batch + 1 + i] = i;                 // head_rows
  }
  ints[4 * batch] = batch;
  DeviceBuffer device_ints, logits, params, begin, entries, ids, logprobs;
  SLAB_RETURN_IF_ERROR(
      device_ints.Upload(ints.data(), sizeof(int) * ints.size()));
  const int* d = device_ints.get<int>();
  const DeviceBatch decode = {batch,
                              batch,
                              d,
                              d + batch,
                              d + 2 * batch,
                              d + 3 * batch,
                              d + 4 * batch + 1,
                              d + 5 * batch + 1};
  SLAB_RETURN_IF_ERROR(logits.Reserve(sizeof(float) * batch *
                                      static_cast<size_t>(shape.vocab_size)));
  const std::vector<RowSampling> greedy(batch);
  const std::vector<int> no_entries(batch + 1, 0);
  SLAB_RETURN_IF_ERROR(
      params.Upload(greedy.data(), sizeof(RowSampling) * batch));
  SLAB_RETURN_IF_ERROR(
      begin.Upload(no_entries.data(), sizeof(int) * no_entries.size()));
  SLAB_RETURN_IF_ERROR(entries.Reserve(sizeof(PenaltyEntry)));
  SLAB_RETURN_IF_ERROR(ids.Reserve(sizeof(int32_t) * batch));
  SLAB_RETURN_IF_ERROR(logprobs.Reserve(sizeof(float) * batch));
  auto step = [&]() -> absl::Status {
    SLAB_RETURN_IF_ERROR(model.Forward(decode, d + 6 * batch + 1, batch, slabs,
                                       logits.get<float>()));
    return CudaStatus(
        SampleRows(logits.get<float>(), batch, shape.vocab_size,
                   params.get<RowSampling>(), begin.get<int>(),
                   entries.get<PenaltyEntry>(), nullptr, ids.get<int32_t>(),
                   logprobs.get<float>(), stream),
        "SampleRows");
  };
  for (int i = 0; i < 2; ++i) SLAB_RETURN_IF_ERROR(step());
  absl::StatusOr<double> eager_ms = TimeSteps(step, options.steps, stream);
  if (!eager_ms.ok()) return eager_ms.status();
  DecodeGraphs graphs;
  SLAB_RETURN_IF_ERROR(graphs.Capture(batch, stream, step));
  cudaGraphExec_t graph = graphs.Find(batch);
  if (graph == nullptr) return absl::InternalError("the graph was dropped");
  auto replay = [&]() {
    return CudaStatus(cudaGraphLaunch(graph, stream), "cudaGraphLaunch");
  };
  SLAB_RETURN_IF_ERROR(replay());
  absl::StatusOr<double> graph_ms = TimeSteps(replay, options.steps, stream);
  if (!graph_ms.ok()) return graph_ms.status();
  return StepTimes{*eager_ms, *graph_ms};
}

// Whether a batch failed only for want of device memory: the expected end of
// a sweep. Any other error (a launch, cuBLAS or illegal-address error) is a
// failure of the backend.
bool OutOfDeviceMemory(const absl::Status& status) {
  return absl::StrContains(status.message(), "cudaErrorMemoryAllocation") ||
         absl::StrContains(status.message(), "CUBLAS_STATUS_ALLOC_FAILED");
}

// Returns false where a batch failed for a reason other than running out of
// device memory after at least one batch ran.
bool Sweep(const std::string& name, DeviceModel& model, const Options& options,
           cudaStream_t stream) {
  const DeviceModelShape& s = model.shape();
  const double weight_bytes =
      static_cast<double>(s.matmul_params + s.head_params) *
      (options.bf16 ? 2.0 : 4.0);
  double state_bytes = 0.0;
  for (size_t b : s.slab_row_bytes) state_bytes += b;
  const int keys = s.window > 0 ? std::min(options.position + 1, s.window) : 0;
  // Per sequence and step: recurrent state read and written; keys and
  // values read over the window and one row of each written.
  const double ring_bytes = 2.0 * s.attention_layers * s.window *
                            static_cast<double>(s.kv_width) * sizeof(float);
  const double kv_row = static_cast<double>(s.kv_width) * sizeof(float);
  const double per_sequence_bytes =
      2.0 * (state_bytes - ring_bytes) +
      s.attention_layers * (2.0 * keys * kv_row + 2.0 * kv_row);
  std::printf(
      "\n%s (%s weights; %.3f GB of weights, %.2f MB state/seq, "
      "%d keys)\n",
      name.c_str(), options.bf16 ? "bf16" : "f32", weight_bytes / 1e9,
      state_bytes / 1e6, keys);
  std::printf("%8s %12s %12s %14s %10s %10s\n", "batch", "step_ms", "graph_ms",
              "tok/s", "bw_frac", "bf16_frac");
  bool first = true;
  for (int batch : options.batches) {
    absl::StatusOr<StepTimes> times = TimeBatch(model, batch, options, stream);
    if (!times.ok()) {
      const bool memory = !first && OutOfDeviceMemory(times.status());
      std::printf("%8d  %s: %s\n", batch, memory ? "stops here" : "FAILED",
                  std::string(times.status().message()).c_str());
      cudaGetLastError();  // clear a failed allocation
      return memory;
    }
    first = false;
    const double bytes = weight_bytes + batch * per_sequence_bytes;
    const double flops =
        batch * (2.0 * (s.matmul_params + s.head_params) +
                 4.0 * s.attention_width * keys * s.attention_layers);
    // Rates from the faster of the two: what a decode step costs.
    const double ms = std::min(times->eager_ms, times->graph_ms);
    const double seconds = ms / 1e3;
    std::printf("%8d %12.3f %12.3f %14.0f %10.3f %10.3f\n", batch,
                times->eager_ms, times->graph_ms, batch / seconds,
                bytes / seconds / (options.peak_gbs * 1e9),
                flops / seconds / (options.peak_tflops * 1e12));
  }
  return true;
}

int Run(const Options& options) {
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    std::fprintf(stderr, "no CUDA device\n");
    return 1;
  }
  std::printf("device: %s; rooflines: %.0f GB/s, %.0f BF16 TFLOP/s\n",
              prop.name, options.peak_gbs, options.peak_tflops);
  cudaStream_t stream;
  if (cudaStreamCreate(&stream) != cudaSuccess) return 1;
  const GemmType type = options.bf16 ? GemmType::kBf16 : GemmType::kF32;
  int failures = 0;
  for (const std::string& dir : options.models) {
    auto model = LoadDeviceModel({dir, "", type}, stream);
    if (!model.ok()) {
      std::fprintf(stderr, "%s: %s\n", dir.c_str(),
                   std::string(model.status().message()).c_str());
      ++failures;
      continue;
    }
    if (!Sweep(dir, **model, options, stream)) ++failures;
  }
  if (options.griffin_2b) {
    std::unique_ptr<WeightSource> random = RandomWeights(2026, stream);
    auto model = CreateDeviceGriffin(Griffin2B(), *random, type, stream);
    if (!model.ok()) {
      std::fprintf(stderr, "griffin-2b: %s\n",
                   std::string(model.status().message()).c_str());
      ++failures;
    } else if (!Sweep("griffin-2b-shaped (random weights)", **model, options,
                      stream)) {
      ++failures;
    }
  }
  cudaStreamDestroy(stream);
  return failures == 0 ? 0 : 1;
}

bool Parse(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const std::string value = arg.substr(arg.find('=') + 1);
    bool ok = true;
    if (arg.rfind("--model=", 0) == 0) {
      options.models.push_back(value);
    } else if (arg == "--griffin_2b") {
      options.griffin_2b = true;
    } else if (arg == "--bf16") {
      options.bf16 = true;
    } else if (arg.rfind("--batches=", 0) == 0) {
      options.batches.clear();
      for (absl::string_view b : absl::StrSplit(value, ',')) {
        int n = 0;
        ok = ok && absl::SimpleAtoi(b, &n) && n > 0;
        options.batches.push_back(n);
      }
    } else if (arg.rfind("--steps=", 0) == 0) {
      ok = absl::SimpleAtoi(value, &options.steps) && options.steps > 0;
    } else if (arg.rfind("--position=", 0) == 0) {
      ok = absl::SimpleAtoi(value, &options.position) && options.position >= 0;
    } else if (arg.rfind("--peak_gbs=", 0) == 0) {
      ok = absl::SimpleAtod(value, &options.peak_gbs);
    } else if (arg.rfind("--peak_tflops=", 0) == 0) {
      ok = absl::SimpleAtod(value, &options.peak_tflops);
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "bad argument: %s\n", arg.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace
}  // namespace slabserve::cuda

int main(int argc, char** argv) {
  // Line by line, also into a file: a run stopped by a time limit keeps the
  // batches it measured.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  slabserve::cuda::Options options;
  if (!slabserve::cuda::Parse(argc, argv, options)) return 2;
  return slabserve::cuda::Run(options);
}
