// Token selection on the device, one block per row of logits, so full
// logits never cross to the host: log-normalizers and top log-probabilities
// of the raw rows, penalties, then greedy or seeded random draws following
// engine/sampling/sampler.cc through the shared formulas of
// kernels/math/sampling.h (draws use Philox keyed by seed and draw index,
// see there). Up to kMaxCandidates candidates (top-k, or top-p over a
// vocabulary that small) are selected best first one at a time, O(k·V) per
// row, into shared memory; more (top-p over a large vocabulary, a larger
// top-k) are found by bisection, some 50 passes over the row per filter.
#ifndef SLABSERVE_KERNELS_CUDA_SAMPLING_KERNELS_H_
#define SLABSERVE_KERNELS_CUDA_SAMPLING_KERNELS_H_

#include <cuda_runtime.h>

#include <cstdint>

namespace slabserve::cuda {

inline constexpr int kMaxCandidates = 1024;
inline constexpr int kMaxTopLogprobs = 64;

// One sampled row's parameters (device array, one per row).
struct RowSampling {
  float temperature = 0.0f;  // 0: greedy
  int top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
  uint64_t draw_index = 0;  // tokens the sequence has sampled before
};

// A token the row's sequence has seen: penalized before sampling. `raw`
// receives the logit before the penalty (for the chosen logprob).
struct PenaltyEntry {
  int32_t id = 0;
  int32_t in_prompt = 0;
  int32_t generated = 0;
  float raw = 0.0f;
};

// log Σ exp(logits[r]) per row, in double.
cudaError_t RowLogSumExp(const float* logits, int rows, int vocab,
                         double* log_z, cudaStream_t stream);
// The n best ids and values of each row, best first (ties: lowest id);
// n <= kMaxCandidates. ids and values are [rows, n].
cudaError_t TopTokens(const float* logits, int rows, int vocab, int n,
                      int32_t* ids, float* values, cudaStream_t stream);
// Penalizes each row's listed tokens in place: row r's entries are
// entries[entry_begin[r] .. entry_begin[r + 1]), each id listed once.
cudaError_t ApplyPenalties(float* logits, int rows, int vocab,
                           const RowSampling* params, const int* entry_begin,
                           PenaltyEntry* entries, cudaStream_t stream);
// Picks one token per row from its (penalized) logits: ids[r], and
// logprob[r] = raw logit of that token − log_z[r] when log_z is not null.
// Rows whose parameters break the limits above get id −1.
cudaError_t SampleRows(const float* logits, int rows, int vocab,
                       const RowSampling* params, const int* entry_begin,
                       const PenaltyEntry* entries, const double* log_z,
                       int32_t* ids, float* logprob, cudaStream_t stream);

}  // namespace slabserve::cuda

#endif  // SLABSERVE_KERNELS_CUDA_SAMPLING_KERNELS_H_
