// The CUDA backend: state slabs in device memory (cudaMalloc, once, sized
// by the state budget), the model's forward pass on the device
// (engine/backend/cuda), logits and sampling on the device: only sampled
// ids, their logprobs and requested top logprobs come back to the host.
//
// Submit validates and plans the step on the host, enqueues it and
// returns; Wait synchronizes. So the scheduler plans step N+1 while the
// device runs step N. A stream per role: uploads of the step's description
// (from pinned host memory) and downloads of its sampled ids run on a copy
// stream, the model, snapshots, forks and sampling on a compute stream,
// ordered by events. Allocate (zeroing) and Restore between Submit and Wait
// are enqueued on the compute stream, behind the running step.
//
// Decode steps (one token per sequence) of up to graph_max_batch sequences
// run as CUDA graphs, one per batch-size bucket (powers of two), captured on
// a bucket's first step: the batch is padded to the bucket with rows that
// only read and write a scratch slot no sequence is given, and their logits
// are never sampled. Prefill and mixed steps run eagerly.
//
// A CUDA error fails the step's chunks and samples with UNAVAILABLE naming
// the error; a sticky one (the device context is lost) fails every later
// step the same way, so the server reports UNAVAILABLE instead of serving.
#ifndef SLABSERVE_ENGINE_BACKEND_CUDA_BACKEND_H_
#define SLABSERVE_ENGINE_BACKEND_CUDA_BACKEND_H_

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/backend/backend.h"
#include "engine/backend/cuda/decode_graphs.h"
#include "engine/backend/cuda/device_buffer.h"
#include "engine/backend/cuda/device_model.h"
#include "engine/backend/decode_graph_plan.h"
#include "engine/backend/plan_check.h"
#include "engine/models/model.h"
#include "engine/models/ragged_batch.h"
#include "engine/state/state_pool.h"
#include "kernels/cuda/sampling_kernels.h"

namespace slabserve {

struct CudaBackendOptions {
  cuda::DeviceModelOptions model;  // the directory `model` was loaded from
  // Largest decode batch run as a CUDA graph; 0: no graphs.
  int graph_max_batch = 1024;
};

class CudaBackend : public Backend {
 public:
  // `model` (not owned, outlives the backend) gives the model's info and
  // state layout; the device weights are read from options.model.dir.
  static absl::StatusOr<std::unique_ptr<CudaBackend>> Create(
      Model* model, size_t state_budget_bytes,
      const CudaBackendOptions& options);
  ~CudaBackend() override;

  const ModelInfo& info() const override { return model_->info(); }
  const char* name() const override { return "cuda"; }
  int capacity() const override { return slots_->capacity(); }
  int used() const override { return slots_->used(); }
  size_t bytes_per_slot() const override { return bytes_per_slot_; }

  int Allocate(const SlotSampling& sampling) override;
  void Release(int slot) override;
  absl::Status Restore(int slot, const SlotSnapshot& snapshot) override;
  // Synchronous copies through host memory (no step is in flight then).
  std::unique_ptr<SwappedSlots> SwapOut(const std::vector<int>& slots) override;
  absl::StatusOr<std::vector<int>> SwapIn(const SwappedSlots& copy) override;
  // Device slabs are allocated once and kept.
  size_t ReleaseUnusedMemory() override { return 0; }

  void Submit(StepPlan plan) override;
  StepResult Wait() override;

  // Decode graphs captured and usable now, and why graphs were turned off
  // (a capture failed) if they were: for tests and diagnostics.
  int captured_graphs() const { return graphs_.size(); }
  const absl::Status& graph_status() const { return graph_status_; }

 private:
  // What a slot samples with, and the token history its penalties need.
 public:
  struct SlotSampler {
    SamplingParams params;
    uint64_t seed = 0;
    int top_logprobs = -1;
    uint64_t draws = 0;
    absl::flat_hash_map<int32_t, int> prompt, generated;
  };

 private:
  // Where a step's sampling results sit in results_ (bytes), for `rows`
  // sampled rows with `top_n` top logprobs each.
  struct ResultLayout {
    ResultLayout(size_t rows, size_t top_n);
    size_t ids, logprobs, log_z, top_ids, top_values, bytes;
  };
  // The in-flight step's bookkeeping, finished by Wait.
  struct Pending {
    StepPlan plan;
    StepResult result;
    std::vector<int> sample_rows;  // by sample: row in the outputs, or -1
    int rows = 0;
    int top_n = 0;
    bool failed = false;  // Submit already failed the whole step
    // The plan broke PlanChecker's rules: nothing may index its slots.
    bool plan_broken = false;
    // Logits restored before Submit, for this step only (a Restore while
    // the step runs serves the next one).
    absl::flat_hash_map<int, cuda::DeviceBuffer> restored;
  };

  CudaBackend(Model* model, cudaStream_t stream, cudaStream_t copy_stream,
              cudaEvent_t uploaded, cudaEvent_t sampled);

  absl::Status Init(size_t state_budget_bytes,
                    const CudaBackendOptions& options);
  absl::Status InitSlabs(size_t capacity, int graph_max_batch);
  // Copies queued on the copy stream come before the compute stream's
  // next work.
  absl::Status AfterCopies();
  // A host-to-device copy on the copy stream, then AfterCopies.
  absl::Status Upload(void* to, const void* from, size_t bytes);
  std::vector<SequenceChunk> ValidChunks(
      const std::vector<SequenceChunk>& chunks, StepResult& result);
  absl::Status Forward(const StepPlan& plan, StepResult& result);
  absl::Status EagerForward();
  absl::Status DecodeForward(int bucket);
  absl::Status Snapshots(const StepPlan& plan, StepResult& result);
  absl::Status Forks(const StepPlan& plan);
  absl::Status Samples(Pending& pending);
  absl::Status UploadSampling(const std::vector<cuda::RowSampling>& params,
                              const std::vector<int>& entry_begin,
                              const std::vector<cuda::PenaltyEntry>& entries);
  absl::Status LaunchSampling(const Pending& pending, bool want_logprobs);
  void CollectSamples(Pending& pending);
  absl::Status CopySlot(int from, int to, const char* what);
  void FailStep(const absl::Status& status, Pending& pending);
  void EndStep(Pending& pending);

  Model* const model_;
  cudaStream_t stream_;       // compute
  cudaStream_t copy_stream_;  // host <-> device transfers
  // Recorded after the step's uploads (copy stream), after its sampling
  // (compute stream).
  cudaEvent_t uploaded_, sampled_;
  std::unique_ptr<cuda::DeviceModel> device_model_;
  // Slot accounting and positions on the host (a 4-byte dummy row each).
  std::unique_ptr<StatePool> slots_;
  PlanChecker plan_checker_;
  std::vector<StateSlabSpec> layout_;
  std::vector<cuda::DeviceBuffer> slab_storage_;
  cuda::DeviceSlabs slabs_;
  size_t bytes_per_slot_ = 0;
  std::vector<std::unique_ptr<SlotSampler>> samplers_;  // by slot

  RaggedBatch batch_;
  // Host-pinned staging for the step's uploads (batch, then sampling) and
  // its results, each grown before the step's first copy from it.
  cuda::PinnedBuffer batch_staging_, sample_staging_, results_;
  cuda::DeviceBuffer batch_ints_;
  // Decode graphs: the buckets (ascending; empty: graphs off), the slot
  // padding rows use (one past the last real slot), the fixed batch
  // description every graph reads, sized for the largest bucket.
  std::vector<int> buckets_;
  int scratch_slot_ = -1;
  cuda::DeviceBuffer graph_ints_;
  std::vector<DecodeRow> decode_rows_;
  cuda::DecodeGraphs graphs_;
  absl::Status graph_status_;
  cuda::DeviceBuffer logits_;       // [rows that keep logits (graphs: all), V]
  cuda::DeviceBuffer fork_logits_;  // [forks, V]
  cuda::DeviceBuffer sample_logits_;  // [samples, V]
  cuda::DeviceBuffer sample_params_, penalty_begin_, penalties_, log_z_;
  cuda::DeviceBuffer sampled_ids_, sampled_logprobs_, top_ids_, top_values_;

  // Step scratch by slot: its device logits row this step, whether its
  // chunk failed.
  std::vector<const float*> slot_logits_;
  std::vector<bool> slot_failed_;
  absl::flat_hash_map<int, cuda::DeviceBuffer> restored_logits_;
  std::optional<Pending> pending_;
  absl::Status broken_;  // the first sticky CUDA error
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_BACKEND_CUDA_BACKEND_H_
