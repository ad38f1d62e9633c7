// The forward half of CudaBackend's step: the plan validated on the host,
// the batch description uploaded on the copy stream, and the model run on
// the compute stream, eagerly or, for a decode step, as the CUDA graph of
// its batch-size bucket.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/backend/cuda_backend.h"
#include "engine/backend/decode_graph_plan.h"
#include "spdlog/spdlog.h"

namespace slabserve {
namespace {

// A stand-in logits pointer for validating a batch on the host (the
// device writes the real logits).
float kValidationLogits = 0.0f;

cuda::DeviceBatch BatchAt(const int* ints, const BatchIntsLayout& layout,
                          int tokens, int chunks) {
  return {tokens,
          chunks,
          ints + layout.token_chunk,
          ints + layout.token_position,
          ints + layout.token_id,
          ints + layout.chunk_begin,
          ints + layout.chunk_slot,
          ints + layout.chunk_start};
}

}  // namespace

absl::Status CudaBackend::AfterCopies() {
  SLAB_CUDA_RETURN_IF_ERROR(cudaEventRecord(uploaded_, copy_stream_));
  return cuda::CudaStatus(cudaStreamWaitEvent(stream_, uploaded_, 0),
                          "ordering uploads before the step");
}

absl::Status CudaBackend::Upload(void* to, const void* from, size_t bytes) {
  SLAB_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(to, from, bytes, cudaMemcpyHostToDevice, copy_stream_));
  return AfterCopies();
}

std::vector<SequenceChunk> CudaBackend::ValidChunks(
    const std::vector<SequenceChunk>& chunks, StepResult& result) {
  // The device never sees an invalid chunk: a batch that fails validation
  // is validated chunk by chunk, and only the valid ones run.
  std::vector<SequenceChunk> valid = chunks;
  if (batch_.Build(valid, *slots_, info(), &kValidationLogits).ok()) {
    return valid;
  }
  valid.clear();
  for (size_t i = 0; i < chunks.size(); ++i) {
    result.chunks[i] = batch_.Build(absl::MakeConstSpan(&chunks[i], 1), *slots_,
                                    info(), &kValidationLogits);
    if (result.chunks[i].ok()) valid.push_back(chunks[i]);
  }
  // Chunks valid alone but not together (a slot twice): all fail.
  const absl::Status together =
      batch_.Build(valid, *slots_, info(), &kValidationLogits);
  if (!together.ok()) {
    for (absl::Status& chunk : result.chunks) {
      if (chunk.ok()) chunk = together;
    }
    valid.clear();
  }
  return valid;
}

absl::Status CudaBackend::Forward(const StepPlan& plan, StepResult& result) {
  std::vector<SequenceChunk> chunks;
  for (const PlannedChunk& chunk : plan.chunks) {
    chunks.push_back({chunk.slot, chunk.tokens, chunk.keep_logits});
  }
  result.chunks.assign(chunks.size(), absl::OkStatus());
  if (chunks.empty()) return absl::OkStatus();
  const std::vector<SequenceChunk> valid = ValidChunks(chunks, result);
  // A graph runs a whole decode step (no chunk failed validation), padded
  // up to its bucket; its logits row i belongs to chunk i.
  const int bucket =
      valid.size() == chunks.size() && IsDecodeStep(plan.chunks)
          ? DecodeBucket(buckets_, static_cast<int>(valid.size()))
          : 0;
  const size_t vocab = info().vocab_size;
  const size_t logit_rows = bucket > 0 ? bucket : batch_.head_rows().size();
  SLAB_RETURN_IF_ERROR(
      logits_.Reserve(sizeof(float) * vocab * (logit_rows + 1)));
  size_t kept = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const int slot = chunks[i].slot;
    slot_failed_[slot] = !result.chunks[i].ok();
    slot_logits_[slot] = nullptr;
    if (result.chunks[i].ok() && chunks[i].want_logits) {
      const size_t row = bucket > 0 ? i : kept++;
      slot_logits_[slot] = logits_.get<float>() + vocab * row;
    }
  }
  if (valid.empty()) return absl::OkStatus();
  SLAB_RETURN_IF_ERROR(bucket > 0 ? DecodeForward(bucket) : EagerForward());
  batch_.AdvancePositions(*slots_);
  return absl::OkStatus();
}

absl::Status CudaBackend::EagerForward() {
  const int T = batch_.tokens(), C = batch_.chunks();
  const int heads = static_cast<int>(batch_.head_rows().size());
  const BatchIntsLayout layout(T, C, heads);
  const size_t bytes = sizeof(int) * layout.size;
  SLAB_RETURN_IF_ERROR(batch_staging_.Reserve(bytes));
  SLAB_RETURN_IF_ERROR(batch_ints_.Reserve(bytes));
  FillBatchInts(batch_, batch_staging_.at<int>(0));
  SLAB_RETURN_IF_ERROR(Upload(batch_ints_.get(), batch_staging_.at(0), bytes));
  const int* ints = batch_ints_.get<int>();
  return device_model_->Forward(BatchAt(ints, layout, T, C),
                                ints + layout.head_rows, heads, slabs_,
                                logits_.get<float>());
}

absl::Status CudaBackend::DecodeForward(int bucket) {
  const BatchIntsLayout layout(bucket, bucket, bucket);
  decode_rows_.clear();
  for (int s = 0; s < batch_.chunks(); ++s) {
    decode_rows_.push_back(
        {batch_.slot(s), batch_.start(s), batch_.token(batch_.begin(s))});
  }
  const size_t bytes = sizeof(int) * layout.size;
  SLAB_RETURN_IF_ERROR(batch_staging_.Reserve(bytes));
  FillPaddedDecode(decode_rows_, bucket, scratch_slot_,
                   batch_staging_.at<int>(0));
  // graph_ints_ holds the largest bucket and never moves: every graph
  // reads its batch there.
  SLAB_RETURN_IF_ERROR(Upload(graph_ints_.get(), batch_staging_.at(0), bytes));
  const int* ints = graph_ints_.get<int>();
  const cuda::DeviceBatch batch = BatchAt(ints, layout, bucket, bucket);
  auto forward = [&]() {
    return device_model_->Forward(batch, ints + layout.head_rows, bucket,
                                  slabs_, logits_.get<float>());
  };
  if (cudaGraphExec_t graph = graphs_.Find(bucket); graph != nullptr) {
    return cuda::CudaStatus(cudaGraphLaunch(graph, stream_),
                            "launching a decode graph");
  }
  // The bucket's first step (or the first since a buffer moved) runs
  // eagerly, which grows every buffer the graph reads to its size; the
  // capture then serves the next steps.
  SLAB_RETURN_IF_ERROR(forward());
  graph_status_ = graphs_.Capture(bucket, stream_, forward);
  // A capture that fails turns graphs off; this step already ran. With no
  // buckets left no capture is tried again, so this logs once per backend.
  if (!graph_status_.ok()) {
    spdlog::warn(
        "CUDA decode graphs turned off: capturing the graph of batch bucket "
        "{} failed: {}; decode steps run eagerly from now on",
        bucket, std::string(graph_status_.message()));
    buckets_.clear();
    graphs_.Clear();
  }
  return absl::OkStatus();
}

}  // namespace slabserve
