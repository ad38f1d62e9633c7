// The sampling half of CudaBackend's step: the rows to sample gathered on
// the device, penalties and draws there, and only ids and logprobs copied
// back.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/backend/cuda_backend.h"

namespace slabserve {
namespace {

// Offsets aligned to 16 bytes.
size_t Take(size_t& at, size_t bytes) {
  const size_t offset = at;
  at += (bytes + 15) / 16 * 16;
  return offset;
}

bool HasPenalties(const SamplingParams& p) {
  return p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f ||
         p.frequency_penalty != 0.0f;
}

}  // namespace

CudaBackend::ResultLayout::ResultLayout(size_t rows, size_t top_n) {
  size_t at = 0;
  log_z = Take(at, sizeof(double) * rows);
  ids = Take(at, sizeof(int32_t) * rows);
  logprobs = Take(at, sizeof(float) * rows);
  top_ids = Take(at, sizeof(int32_t) * rows * top_n);
  top_values = Take(at, sizeof(float) * rows * top_n);
  bytes = at + 16;
}

absl::Status CudaBackend::Samples(Pending& pending) {
  const StepPlan& plan = pending.plan;
  const size_t vocab = info().vocab_size;
  pending.result.samples.assign(plan.samples.size(),
                                absl::FailedPreconditionError("not sampled"));
  pending.sample_rows.assign(plan.samples.size(), -1);
  SLAB_RETURN_IF_ERROR(sample_logits_.Reserve(sizeof(float) * vocab *
                                              (plan.samples.size() + 1)));
  std::vector<cuda::RowSampling> params;
  std::vector<int> entry_begin = {0};
  std::vector<cuda::PenaltyEntry> entries;
  int top_n = 0;
  bool want_logprobs = false;
  for (size_t i = 0; i < plan.samples.size(); ++i) {
    const int slot = plan.samples[i];
    const float* logits = slot_logits_[slot];
    if (slot_failed_[slot] || logits == nullptr) {
      pending.result.samples[i] = absl::FailedPreconditionError(
          absl::StrCat("slot ", slot, " has no logits to sample from"));
      continue;
    }
    const int row = static_cast<int>(params.size());
    pending.sample_rows[i] = row;
    // A private copy: penalties change the row in place.
    SLAB_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(
        sample_logits_.get<float>() + vocab * row, logits,
        sizeof(float) * vocab, cudaMemcpyDeviceToDevice, stream_));
    SlotSampler& s = *samplers_[slot];
    cuda::RowSampling p;
    p.temperature = s.params.temperature;
    p.top_k = s.params.top_k;
    p.top_p = s.params.top_p;
    p.min_p = s.params.min_p;
    p.repetition_penalty = s.params.repetition_penalty;
    p.presence_penalty = s.params.presence_penalty;
    p.frequency_penalty = s.params.frequency_penalty;
    p.seed = s.seed;
    p.draw_index = s.draws++;
    params.push_back(p);
    if (HasPenalties(s.params)) {
      for (const auto& [id, count] : s.prompt) {
        auto it = s.generated.find(id);
        entries.push_back({id, 1, it == s.generated.end() ? 0 : it->second});
      }
      for (const auto& [id, count] : s.generated) {
        if (!s.prompt.contains(id)) entries.push_back({id, 0, count});
      }
    }
    entry_begin.push_back(static_cast<int>(entries.size()));
    top_n = std::max(top_n, s.top_logprobs);
    want_logprobs = want_logprobs || s.top_logprobs >= 0;
  }
  pending.rows = static_cast<int>(params.size());
  pending.top_n =
      std::min<int>({top_n, cuda::kMaxCandidates, static_cast<int>(vocab)});
  if (params.empty()) return absl::OkStatus();
  SLAB_RETURN_IF_ERROR(UploadSampling(params, entry_begin, entries));
  return LaunchSampling(pending, want_logprobs);
}

absl::Status CudaBackend::UploadSampling(
    const std::vector<cuda::RowSampling>& params,
    const std::vector<int>& entry_begin,
    const std::vector<cuda::PenaltyEntry>& entries) {
  size_t at = 0;
  const size_t params_bytes = sizeof(cuda::RowSampling) * params.size();
  const size_t begin_bytes = sizeof(int) * entry_begin.size();
  const size_t entry_bytes = sizeof(cuda::PenaltyEntry) * (entries.size() + 1);
  const size_t params_at = Take(at, params_bytes);
  const size_t begin_at = Take(at, begin_bytes);
  const size_t entries_at = Take(at, entry_bytes);
  SLAB_RETURN_IF_ERROR(sample_staging_.Reserve(at));
  std::copy(params.begin(), params.end(),
            sample_staging_.at<cuda::RowSampling>(params_at));
  std::copy(entry_begin.begin(), entry_begin.end(),
            sample_staging_.at<int>(begin_at));
  std::copy(entries.begin(), entries.end(),
            sample_staging_.at<cuda::PenaltyEntry>(entries_at));
  const struct {
    cuda::DeviceBuffer* to;
    size_t from, bytes;
  } copies[] = {{&sample_params_, params_at, params_bytes},
                {&penalty_begin_, begin_at, begin_bytes},
                {&penalties_, entries_at, entry_bytes}};
  for (const auto& copy : copies) {
    SLAB_RETURN_IF_ERROR(copy.to->Reserve(copy.bytes));
    SLAB_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(copy.to->get(), sample_staging_.at(copy.from),
                        copy.bytes, cudaMemcpyHostToDevice, copy_stream_));
  }
  return AfterCopies();
}

absl::Status CudaBackend::LaunchSampling(const Pending& pending,
                                         bool want_logprobs) {
  const int rows = pending.rows, n = pending.top_n;
  const int vocab = info().vocab_size;
  float* logits = sample_logits_.get<float>();
  SLAB_RETURN_IF_ERROR(log_z_.Reserve(sizeof(double) * rows));
  SLAB_RETURN_IF_ERROR(sampled_ids_.Reserve(sizeof(int32_t) * rows));
  SLAB_RETURN_IF_ERROR(sampled_logprobs_.Reserve(sizeof(float) * rows));
  SLAB_RETURN_IF_ERROR(top_ids_.Reserve(sizeof(int32_t) * (rows * n + 1)));
  SLAB_RETURN_IF_ERROR(top_values_.Reserve(sizeof(float) * (rows * n + 1)));
  const auto* params = sample_params_.get<cuda::RowSampling>();
  const int* begin = penalty_begin_.get<int>();
  auto* entries = penalties_.get<cuda::PenaltyEntry>();
  double* log_z = log_z_.get<double>();
  // Log-probabilities describe the raw distribution: before penalties.
  if (want_logprobs) {
    SLAB_CUDA_RETURN_IF_ERROR(
        cuda::RowLogSumExp(logits, rows, vocab, log_z, stream_));
  }
  if (n > 0) {
    SLAB_CUDA_RETURN_IF_ERROR(
        cuda::TopTokens(logits, rows, vocab, n, top_ids_.get<int32_t>(),
                        top_values_.get<float>(), stream_));
  }
  SLAB_CUDA_RETURN_IF_ERROR(cuda::ApplyPenalties(logits, rows, vocab, params,
                                                 begin, entries, stream_));
  SLAB_CUDA_RETURN_IF_ERROR(cuda::SampleRows(
      logits, rows, vocab, params, begin, entries,
      want_logprobs ? log_z : nullptr, sampled_ids_.get<int32_t>(),
      sampled_logprobs_.get<float>(), stream_));
  // The results go back on the copy stream once sampling is done.
  SLAB_CUDA_RETURN_IF_ERROR(cudaEventRecord(sampled_, stream_));
  SLAB_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(copy_stream_, sampled_, 0));
  const ResultLayout layout(rows, n);
  SLAB_RETURN_IF_ERROR(results_.Reserve(layout.bytes));
  const struct {
    size_t to;
    const cuda::DeviceBuffer* from;
    size_t bytes;
  } copies[] = {
      {layout.log_z, &log_z_, want_logprobs ? sizeof(double) * rows : 0},
      {layout.ids, &sampled_ids_, sizeof(int32_t) * rows},
      {layout.logprobs, &sampled_logprobs_, sizeof(float) * rows},
      {layout.top_ids, &top_ids_, sizeof(int32_t) * rows * n},
      {layout.top_values, &top_values_, sizeof(float) * rows * n}};
  for (const auto& copy : copies) {
    if (copy.bytes == 0) continue;
    SLAB_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(results_.at(copy.to), copy.from->get(), copy.bytes,
                        cudaMemcpyDeviceToHost, copy_stream_));
  }
  return absl::OkStatus();
}

void CudaBackend::CollectSamples(Pending& pending) {
  const ResultLayout layout(pending.rows, pending.top_n);
  const auto* ids = results_.at<int32_t>(layout.ids);
  const auto* logprobs = results_.at<float>(layout.logprobs);
  const auto* log_z = results_.at<double>(layout.log_z);
  const auto* top_ids = results_.at<int32_t>(layout.top_ids);
  const auto* top_values = results_.at<float>(layout.top_values);
  for (size_t i = 0; i < pending.sample_rows.size(); ++i) {
    const int r = pending.sample_rows[i];
    if (r < 0) continue;
    SlotSampler& s = *samplers_[pending.plan.samples[i]];
    if (ids[r] < 0 || ids[r] >= info().vocab_size) {
      // Every draw returns an id; anything else is a fault of the device.
      pending.result.samples[i] = absl::InternalError(
          absl::StrCat("the device sampler returned id ", ids[r]));
      continue;
    }
    SampledToken token;
    token.id = ids[r];
    if (s.top_logprobs >= 0) {
      token.logprob = logprobs[r];
      const int n = std::min(s.top_logprobs, pending.top_n);
      for (int j = 0; j < n; ++j) {
        const size_t at = static_cast<size_t>(r) * pending.top_n + j;
        token.top.push_back(
            {top_ids[at], static_cast<float>(
                              static_cast<double>(top_values[at]) - log_z[r])});
      }
    }
    ++s.generated[token.id];
    pending.result.samples[i] = std::move(token);
  }
}

}  // namespace slabserve
