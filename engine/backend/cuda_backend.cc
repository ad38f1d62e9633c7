#include "engine/backend/cuda_backend.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/device.h"

namespace slabserve {
namespace {

// A device copy of one slot: its slab rows, position and optionally the
// logits of its last token.
class CudaSnapshot : public SlotSnapshot {
 public:
  size_t bytes() const override { return state.bytes() + logits.bytes(); }
  bool has_logits() const override { return logits.bytes() > 0; }

  cuda::DeviceBuffer state;
  cuda::DeviceBuffer logits;
  int32_t position = 0;
};

}  // namespace

// Swapped-out slots in host memory: rows, position, sampler and any
// restored logits per slot.
class CudaSwapped : public SwappedSlots {
 public:
  struct Slot {
    CudaBackend::SlotSampler sampler;
    int32_t position = 0;
    std::vector<char> state;
    std::vector<float> logits;
  };
  int slots() const override { return static_cast<int>(saved.size()); }
  size_t bytes() const override {
    size_t total = sizeof(*this);
    for (const Slot& slot : saved) {
      total +=
          sizeof(Slot) + slot.state.size() + slot.logits.size() * sizeof(float);
    }
    return total;
  }
  int blocks() const override { return 0; }

  std::vector<Slot> saved;
};

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(
    Model* model, size_t state_budget_bytes,
    const CudaBackendOptions& options) {
  if (model == nullptr) return absl::InvalidArgumentError("model is null");
  std::string reason;
  if (cuda::DeviceCount(&reason) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("backend 'cuda': no CUDA device (", reason, ")"));
  }
  if (options.graph_max_batch < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "graph_max_batch must be >= 0, got ", options.graph_max_batch));
  }
  SLAB_CUDA_RETURN_IF_ERROR(cudaSetDevice(0));
  cudaStream_t streams[2] = {nullptr, nullptr};
  cudaEvent_t events[2] = {nullptr, nullptr};
  // Made before the backend, which then owns (and frees) whatever was made
  // even when a later one failed.
  cudaError_t error = cudaSuccess;
  for (cudaStream_t& stream : streams) {
    if (error == cudaSuccess) {
      error = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    }
  }
  for (cudaEvent_t& event : events) {
    if (error == cudaSuccess) {
      error = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
    }
  }
  std::unique_ptr<CudaBackend> backend(
      new CudaBackend(model, streams[0], streams[1], events[0], events[1]));
  SLAB_RETURN_IF_ERROR(cuda::CudaStatus(error, "creating streams and events"));
  SLAB_RETURN_IF_ERROR(backend->Init(state_budget_bytes, options));
  return backend;
}

CudaBackend::CudaBackend(Model* model, cudaStream_t stream,
                         cudaStream_t copy_stream, cudaEvent_t uploaded,
                         cudaEvent_t sampled)
    : model_(model),
      stream_(stream),
      copy_stream_(copy_stream),
      uploaded_(uploaded),
      sampled_(sampled) {}

CudaBackend::~CudaBackend() {
  graphs_.Clear();
  for (cudaStream_t stream : {stream_, copy_stream_}) {
    if (stream == nullptr) continue;
    cudaStreamSynchronize(stream);
    cudaStreamDestroy(stream);
  }
  for (cudaEvent_t event : {uploaded_, sampled_}) {
    if (event != nullptr) cudaEventDestroy(event);
  }
}

absl::Status CudaBackend::InitSlabs(size_t capacity, int graph_max_batch) {
  absl::StatusOr<std::unique_ptr<StatePool>> slots =
      StatePool::CreateWithCapacity({{"slot", sizeof(int32_t)}},
                                    static_cast<int>(capacity));
  if (!slots.ok()) return slots.status();
  slots_ = *std::move(slots);
  plan_checker_ = PlanChecker(static_cast<int>(capacity));
  samplers_.resize(capacity);
  slot_logits_.assign(capacity, nullptr);
  slot_failed_.assign(capacity, false);
  const size_t rows = capacity + (graph_max_batch > 0 ? 1 : 0);
  slab_storage_.resize(layout_.size());
  for (size_t i = 0; i < layout_.size(); ++i) {
    const size_t row = layout_[i].bytes_per_slot;
    SLAB_RETURN_IF_ERROR(slab_storage_[i].Reserve(row * rows));
    slabs_.slabs.push_back(slab_storage_[i].get<float>());
  }
  if (graph_max_batch == 0) return absl::OkStatus();
  buckets_ = DecodeBuckets(graph_max_batch);
  scratch_slot_ = static_cast<int>(capacity);
  const BatchIntsLayout largest(graph_max_batch, graph_max_batch,
                                graph_max_batch);
  SLAB_RETURN_IF_ERROR(graph_ints_.Reserve(sizeof(int) * largest.size));
  // Padding rows read the scratch rows: start them clean.
  for (size_t i = 0; i < layout_.size(); ++i) {
    const size_t row = layout_[i].bytes_per_slot;
    SLAB_CUDA_RETURN_IF_ERROR(
        cudaMemset(slab_storage_[i].get<char>() + row * scratch_slot_, 0, row));
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::Init(size_t state_budget_bytes,
                               const CudaBackendOptions& options) {
  if (!model_->TokenLayout().kinds.empty()) {
    return absl::FailedPreconditionError(
        "backend 'cuda' does not hold per-token state (full-attention keys "
        "and values in blocks) yet; use backend \"cpu\"");
  }
  layout_ = model_->StateLayout();
  bytes_per_slot_ = sizeof(int32_t);  // the position, as StatePool counts
  for (const StateSlabSpec& slab : layout_) {
    if (slab.bytes_per_slot % sizeof(float) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("slab ", slab.name, " is not whole floats"));
    }
    bytes_per_slot_ += slab.bytes_per_slot;
  }
  // With graphs, one slot of the budget is the padding rows' scratch.
  const size_t scratch = options.graph_max_batch > 0 ? 1 : 0;
  const size_t slots_in_budget = state_budget_bytes / bytes_per_slot_;
  if (slots_in_budget <= scratch) {
    return absl::InvalidArgumentError(
        absl::StrCat("state budget of ", state_budget_bytes,
                     " bytes holds no slot of ", bytes_per_slot_, " bytes",
                     scratch ? " beside the graphs' scratch" : ""));
  }
  SLAB_RETURN_IF_ERROR(
      InitSlabs(slots_in_budget - scratch, options.graph_max_batch));
  absl::StatusOr<std::unique_ptr<cuda::DeviceModel>> device_model =
      cuda::LoadDeviceModel(options.model, stream_);
  if (!device_model.ok()) return device_model.status();
  device_model_ = *std::move(device_model);
  const std::vector<size_t>& rows = device_model_->shape().slab_row_bytes;
  bool same_layout = rows.size() == layout_.size();
  for (size_t i = 0; same_layout && i < rows.size(); ++i) {
    same_layout = rows[i] == layout_[i].bytes_per_slot;
  }
  if (!same_layout) {
    return absl::FailedPreconditionError(
        absl::StrCat("the device model of ", options.model.dir,
                     " keeps a different state layout than the loaded model"));
  }
  // Weights were uploaded with synchronous copies on the legacy stream,
  // which a non-blocking stream does not wait for.
  return cuda::CudaStatus(cudaDeviceSynchronize(), "loading weights");
}

int CudaBackend::Allocate(const SlotSampling& sampling) {
  const int slot = slots_->Allocate();
  if (slot < 0) return slot;
  auto sampler = std::make_unique<SlotSampler>();
  sampler->params = sampling.params;
  sampler->seed = sampling.seed;
  sampler->top_logprobs = sampling.top_logprobs;
  for (int32_t id : sampling.prompt) ++sampler->prompt[id];
  samplers_[slot] = std::move(sampler);
  // Behind any running step, which does not touch a free slot.
  for (size_t i = 0; i < layout_.size(); ++i) {
    const size_t row = layout_[i].bytes_per_slot;
    const cudaError_t error = cudaMemsetAsync(
        slab_storage_[i].get<char>() + row * slot, 0, row, stream_);
    if (error != cudaSuccess && broken_.ok()) {
      broken_ = cuda::CudaStatus(error, "zeroing a slot");
    }
  }
  return slot;
}

void CudaBackend::Release(int slot) {
  slots_->Release(slot);
  samplers_[slot].reset();
  restored_logits_.erase(slot);
}

absl::Status CudaBackend::CopySlot(int from, int to, const char* what) {
  for (size_t i = 0; i < layout_.size(); ++i) {
    const size_t row = layout_[i].bytes_per_slot;
    char* base = slab_storage_[i].get<char>();
    SLAB_RETURN_IF_ERROR(cuda::CudaStatus(
        cudaMemcpyAsync(base + row * to, base + row * from, row,
                        cudaMemcpyDeviceToDevice, stream_),
        what));
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::Restore(int slot, const SlotSnapshot& snapshot) {
  const auto& device = static_cast<const CudaSnapshot&>(snapshot);
  size_t offset = 0;
  for (size_t i = 0; i < layout_.size(); ++i) {
    const size_t row = layout_[i].bytes_per_slot;
    SLAB_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(slab_storage_[i].get<char>() + row * slot,
                        device.state.get<char>() + offset, row,
                        cudaMemcpyDeviceToDevice, stream_));
    offset += row;
  }
  slots_->set_position(slot, device.position);
  restored_logits_.erase(slot);
  if (device.has_logits()) {
    cuda::DeviceBuffer logits;
    SLAB_RETURN_IF_ERROR(logits.Reserve(device.logits.bytes()));
    SLAB_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(
        logits.get(), device.logits.get(), device.logits.bytes(),
        cudaMemcpyDeviceToDevice, stream_));
    restored_logits_[slot] = std::move(logits);
  }
  return absl::OkStatus();
}

std::unique_ptr<SwappedSlots> CudaBackend::SwapOut(
    const std::vector<int>& slots) {
  auto copy = std::make_unique<CudaSwapped>();
  absl::Status status =
      cuda::CudaStatus(cudaStreamSynchronize(stream_), "swapping out");
  for (int slot : slots) {
    CudaSwapped::Slot saved{*samplers_[slot], slots_->position(slot), {}, {}};
    saved.state.resize(bytes_per_slot_ - sizeof(int32_t));
    size_t offset = 0;
    for (size_t i = 0; i < layout_.size() && status.ok(); ++i) {
      const size_t row = layout_[i].bytes_per_slot;
      status =
          cuda::CudaStatus(cudaMemcpy(saved.state.data() + offset,
                                      slab_storage_[i].get<char>() + row * slot,
                                      row, cudaMemcpyDeviceToHost),
                           "swapping out");
      offset += row;
    }
    if (auto restored = restored_logits_.find(slot);
        restored != restored_logits_.end() && status.ok()) {
      saved.logits.resize(restored->second.bytes() / sizeof(float));
      status = cuda::CudaStatus(
          cudaMemcpy(saved.logits.data(), restored->second.get(),
                     restored->second.bytes(), cudaMemcpyDeviceToHost),
          "swapping out logits");
    }
    copy->saved.push_back(std::move(saved));
  }
  // A copy that failed cannot come back: later steps report the error.
  if (!status.ok() && broken_.ok()) broken_ = status;
  for (int slot : slots) Release(slot);
  return copy;
}

absl::StatusOr<std::vector<int>> CudaBackend::SwapIn(const SwappedSlots& copy) {
  SLAB_RETURN_IF_ERROR(broken_);
  const auto& host = static_cast<const CudaSwapped&>(copy);
  if (host.slots() > slots_->free_slots()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "swapping in needs ", host.slots(), " slots; ", slots_->free_slots(),
        " of ", slots_->capacity(), " are free"));
  }
  SLAB_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  std::vector<int> slots;
  for (const CudaSwapped::Slot& saved : host.saved) {
    const int slot = slots_->Allocate();
    slots.push_back(slot);
    samplers_[slot] = std::make_unique<SlotSampler>(saved.sampler);
    slots_->set_position(slot, saved.position);
    size_t offset = 0;
    absl::Status status;
    for (size_t i = 0; i < layout_.size() && status.ok(); ++i) {
      const size_t row = layout_[i].bytes_per_slot;
      status = cuda::CudaStatus(
          cudaMemcpy(slab_storage_[i].get<char>() + row * slot,
                     saved.state.data() + offset, row, cudaMemcpyHostToDevice),
          "swapping in");
      offset += row;
    }
    if (status.ok() && !saved.logits.empty()) {
      cuda::DeviceBuffer logits;
      status = logits.Upload(saved.logits.data(),
                             sizeof(float) * saved.logits.size());
      restored_logits_[slot] = std::move(logits);
    }
    if (!status.ok()) {
      for (int taken : slots) Release(taken);
      return status;
    }
  }
  // cudaMemcpy from pageable memory may return before its DMA lands, and
  // the compute stream does not wait for the legacy stream it ran on.
  if (absl::Status landed =
          cuda::CudaStatus(cudaDeviceSynchronize(), "swapping in");
      !landed.ok()) {
    for (int taken : slots) Release(taken);
    return landed;
  }
  return slots;
}

void CudaBackend::FailStep(const absl::Status& status, Pending& pending) {
  // A sticky error (the context is lost) fails every later step too; an
  // error the device recovers from (out of memory) fails this step only.
  if (broken_.ok() && cudaDeviceSynchronize() != cudaSuccess) broken_ = status;
  pending.result = FailedStep(pending.plan, status);
  pending.sample_rows.assign(pending.plan.samples.size(), -1);
}

void CudaBackend::Submit(StepPlan plan) {
  pending_.emplace();
  Pending& pending = *pending_;
  pending.plan = std::move(plan);
  if (!broken_.ok()) {
    FailStep(broken_, pending);
    pending.failed = true;
    return;
  }
  pending.restored = std::move(restored_logits_);
  restored_logits_.clear();
  if (absl::Status status = plan_checker_.Check(
          pending.plan, [&](int slot) { return slots_->IsAllocated(slot); });
      !status.ok()) {
    FailStep(status, pending);
    pending.failed = true;
    pending.plan_broken = true;
    return;
  }
  for (auto& [slot, logits] : pending.restored) {
    slot_logits_[slot] = logits.get<float>();
  }
  absl::Status status = Forward(pending.plan, pending.result);
  if (status.ok()) status = Snapshots(pending.plan, pending.result);
  if (status.ok()) status = Forks(pending.plan);
  if (status.ok()) status = Samples(pending);
  if (!status.ok()) {
    FailStep(status, pending);
    pending.failed = true;
  }
}

StepResult CudaBackend::Wait() {
  Pending pending = *std::move(pending_);
  pending_.reset();
  absl::Status synced =
      cuda::CudaStatus(cudaStreamSynchronize(stream_), "the step");
  if (synced.ok()) {
    synced = cuda::CudaStatus(cudaStreamSynchronize(copy_stream_),
                              "the step's copies");
  }
  if (!synced.ok()) {
    FailStep(synced, pending);
  } else if (!pending.failed) {
    CollectSamples(pending);
  }
  EndStep(pending);
  return std::move(pending.result);
}

void CudaBackend::EndStep(Pending& pending) {
  // A broken plan ran nothing, and its slots may be out of range.
  if (!pending.plan_broken) {
    for (const PlannedChunk& chunk : pending.plan.chunks) {
      slot_logits_[chunk.slot] = nullptr;
      slot_failed_[chunk.slot] = false;
    }
    for (const PlannedFork& fork : pending.plan.forks) {
      slot_logits_[fork.to] = nullptr;
      slot_failed_[fork.to] = false;
    }
  }
  for (auto& [slot, logits] : pending.restored) slot_logits_[slot] = nullptr;
  pending.restored.clear();
}

absl::Status CudaBackend::Snapshots(const StepPlan& plan, StepResult& result) {
  const size_t vocab = info().vocab_size;
  for (const PlannedSnapshot& wanted : plan.snapshots) {
    const float* logits = slot_logits_[wanted.slot];
    if (slot_failed_[wanted.slot] || (wanted.with_logits && !logits)) {
      result.snapshots.push_back(nullptr);
      continue;
    }
    auto snapshot = std::make_shared<CudaSnapshot>();
    snapshot->position = slots_->position(wanted.slot);
    SLAB_RETURN_IF_ERROR(
        snapshot->state.Reserve(bytes_per_slot_ - sizeof(int32_t)));
    size_t offset = 0;
    for (size_t i = 0; i < layout_.size(); ++i) {
      const size_t row = layout_[i].bytes_per_slot;
      SLAB_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(snapshot->state.get<char>() + offset,
                          slab_storage_[i].get<char>() + row * wanted.slot, row,
                          cudaMemcpyDeviceToDevice, stream_));
      offset += row;
    }
    if (wanted.with_logits) {
      SLAB_RETURN_IF_ERROR(snapshot->logits.Reserve(sizeof(float) * vocab));
      SLAB_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(snapshot->logits.get(), logits, sizeof(float) * vocab,
                          cudaMemcpyDeviceToDevice, stream_));
    }
    result.snapshots.push_back(std::move(snapshot));
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::Forks(const StepPlan& plan) {
  const size_t vocab = info().vocab_size;
  SLAB_RETURN_IF_ERROR(
      fork_logits_.Reserve(sizeof(float) * vocab * (plan.forks.size() + 1)));
  size_t row = 0;
  for (const PlannedFork& fork : plan.forks) {
    slot_failed_[fork.to] = slot_failed_[fork.from];
    slot_logits_[fork.to] = nullptr;
    if (slot_failed_[fork.from]) continue;
    SLAB_RETURN_IF_ERROR(CopySlot(fork.from, fork.to, "forking a slot"));
    slots_->set_position(fork.to, slots_->position(fork.from));
    if (const float* logits = slot_logits_[fork.from]; logits != nullptr) {
      float* copy = fork_logits_.get<float>() + vocab * row++;
      SLAB_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(copy, logits, sizeof(float) * vocab,
                          cudaMemcpyDeviceToDevice, stream_));
      slot_logits_[fork.to] = copy;
    }
  }
  return absl::OkStatus();
}

}  // namespace slabserve
