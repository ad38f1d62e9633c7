#include <math.h>

#include "kernels/cuda/sampling_kernels.h"
#include "kernels/math/sampling.h"

namespace slabserve::cuda {
namespace {

constexpr int kThreads = 512;

struct Best {
  float value;
  int32_t id;  // −1: none
};

// NaN ranks below every number (as in the CPU's greedy scan, where a NaN
// never replaces the best so far).
__device__ Best BetterOf(Best a, Best b) {
  if (b.id < 0 || isnan(b.value)) return a.id < 0 ? b : a;
  if (a.id < 0 || isnan(a.value)) return b;
  return math::Better(b.value, b.id, a.value, a.id) ? b : a;
}

struct ReduceScratch {
  float values[kThreads];
  int32_t ids[kThreads];
  double sums[kThreads];
};

// The block's best (every thread gets it), in a fixed tree order.
__device__ Best BlockBest(Best mine, ReduceScratch& scratch) {
  scratch.values[threadIdx.x] = mine.value;
  scratch.ids[threadIdx.x] = mine.id;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      const Best merged =
          BetterOf({scratch.values[threadIdx.x], scratch.ids[threadIdx.x]},
                   {scratch.values[threadIdx.x + stride],
                    scratch.ids[threadIdx.x + stride]});
      scratch.values[threadIdx.x] = merged.value;
      scratch.ids[threadIdx.x] = merged.id;
    }
    __syncthreads();
  }
  const Best best = {scratch.values[0], scratch.ids[0]};
  __syncthreads();
  return best;
}

__device__ double BlockSum(double value, ReduceScratch& scratch) {
  scratch.sums[threadIdx.x] = value;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      scratch.sums[threadIdx.x] += scratch.sums[threadIdx.x + stride];
    }
    __syncthreads();
  }
  const double total = scratch.sums[0];
  __syncthreads();
  return total;
}

// The best entry of `row` ranked after `after` (after.id < 0: the best).
__device__ Best NextBest(const float* row, int vocab, Best after,
                         ReduceScratch& scratch) {
  Best mine = {-INFINITY, -1};
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = row[i];
    if (after.id >= 0 && !math::Better(after.value, after.id, x, i)) continue;
    mine = BetterOf(mine, {x, i});
  }
  return BlockBest(mine, scratch);
}

__global__ void LogSumExpKernel(const float* logits, int vocab, double* log_z) {
  __shared__ ReduceScratch scratch;
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  const float max = NextBest(row, vocab, {0.0f, -1}, scratch).value;
  double sum = 0.0;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    sum += exp(static_cast<double>(row[i]) - max);
  }
  const double total = BlockSum(sum, scratch);
  if (threadIdx.x == 0) log_z[blockIdx.x] = max + log(total);
}

__global__ void TopTokensKernel(const float* logits, int vocab, int n,
                                int32_t* ids, float* values) {
  __shared__ ReduceScratch scratch;
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  Best previous = {0.0f, -1};
  for (int j = 0; j < n; ++j) {
    previous = NextBest(row, vocab, previous, scratch);
    if (threadIdx.x == 0) {
      ids[static_cast<int64_t>(blockIdx.x) * n + j] = previous.id;
      values[static_cast<int64_t>(blockIdx.x) * n + j] = previous.value;
    }
  }
}

__global__ void PenaltyKernel(float* logits, int vocab,
                              const RowSampling* params, const int* entry_begin,
                              PenaltyEntry* entries) {
  float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  const RowSampling p = params[blockIdx.x];
  for (int e = entry_begin[blockIdx.x] + threadIdx.x;
       e < entry_begin[blockIdx.x + 1]; e += blockDim.x) {
    PenaltyEntry& entry = entries[e];
    if (entry.id < 0 || entry.id >= vocab) continue;
    entry.raw = row[entry.id];
    row[entry.id] = math::PenalizedLogit(
        entry.raw, entry.in_prompt != 0, entry.generated, p.repetition_penalty,
        p.presence_penalty, p.frequency_penalty);
  }
}

struct Candidates {
  float values[kMaxCandidates];
  int32_t ids[kMaxCandidates];
  double weights[kMaxCandidates];
  int32_t kept[kMaxCandidates];
};

// A draw over the whole vocabulary in id order (no top-k, no top-p): each
// thread sums the weights of a contiguous run of ids, thread 0 finds the
// run and then the id where u·total falls. Returns the id on thread 0.
__device__ int32_t DrawInIdOrder(const float* row, int vocab,
                                 const RowSampling& p, double u,
                                 ReduceScratch& scratch) {
  const float max = NextBest(row, vocab, {0.0f, -1}, scratch).value;
  const double inverse_temperature = 1.0 / p.temperature;
  const int run = (vocab + blockDim.x - 1) / blockDim.x;
  auto weight = [&](int i) {
    const double w = math::TemperedWeight(row[i], max, inverse_temperature);
    return !(w >= p.min_p) ? 0.0 : w;  // NaN dropped too
  };
  double sum = 0.0;
  const int begin = threadIdx.x * run;
  const int end = min(vocab, begin + run);
  for (int i = begin; i < end; ++i) sum += weight(i);
  scratch.sums[threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.x != 0) return -1;
  double total = 0.0;
  for (int t = 0; t < blockDim.x; ++t) total += scratch.sums[t];
  const double point = u * total;
  double cumulative = 0.0;
  int32_t last = -1;
  for (int t = 0; t < blockDim.x; ++t) {
    if (scratch.sums[t] == 0.0) continue;
    const int run_end = min(vocab, (t + 1) * run);
    for (int i = t * run; i < run_end; ++i) {
      const double w = weight(i);
      if (w == 0.0) continue;
      cumulative += w;
      last = i;
      if (point < cumulative) return i;
    }
  }
  return last;
}

// More candidates than fit in shared memory: the same draw by bisection
// (math::DrawBestFirst), its sums block reductions in a fixed order, so
// every thread takes the same path and returns the chosen id.
__device__ int32_t DrawBestFirst(const float* row, int vocab,
                                 const RowSampling& p, double u,
                                 ReduceScratch& scratch) {
  const float max = NextBest(row, vocab, {0.0f, -1}, scratch).value;
  const auto sum = [&](const auto& f) {
    double mine = 0.0;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) mine += f(i);
    return BlockSum(mine, scratch);
  };
  return math::DrawBestFirst(row, vocab, max, p.top_k, p.temperature, p.min_p,
                             p.top_p, u, sum);
}

__global__ void SampleKernel(const float* logits, int vocab,
                             const RowSampling* params, const int* entry_begin,
                             const PenaltyEntry* entries, const double* log_z,
                             int32_t* ids, float* logprob) {
  __shared__ ReduceScratch scratch;
  __shared__ Candidates candidates;
  const int r = blockIdx.x;
  const float* row = logits + static_cast<int64_t>(r) * vocab;
  const RowSampling p = params[r];
  const double u = math::UniformDraw(p.seed, p.draw_index);
  const Best best = NextBest(row, vocab, {0.0f, -1}, scratch);
  int32_t chosen = -1;
  // Greedy, or a row with an infinite logit or none finite, which leaves no
  // weights to draw by (the CPU sampler takes the greedy choice there too).
  // The CPU's greedy is the scan from id 0 keeping the first strictly
  // larger value: a NaN at id 0 is never beaten.
  if (p.temperature == 0.0f || !isfinite(best.value)) {
    chosen = isnan(row[0]) ? 0 : best.id;
  } else if (p.top_k > 0 || p.top_p < 1.0f) {
    const int k = p.top_k > 0 ? min(p.top_k, vocab) : vocab;
    if (k <= kMaxCandidates) {
      Best previous = {0.0f, -1};
      for (int j = 0; j < k; ++j) {
        previous = NextBest(row, vocab, previous, scratch);
        candidates.values[j] = previous.value;
        candidates.ids[j] = previous.id;
      }
      if (threadIdx.x == 0) {
        chosen = math::DrawFromCandidates(candidates.values, candidates.ids, k,
                                          p.temperature, p.min_p, p.top_p, u,
                                          candidates.weights, candidates.kept);
      }
    } else {
      chosen = DrawBestFirst(row, vocab, p, u, scratch);
    }
  } else {
    chosen = DrawInIdOrder(row, vocab, p, u, scratch);
  }
  if (threadIdx.x != 0) return;
  ids[r] = chosen;
  if (log_z == nullptr || chosen < 0) return;
  float raw = row[chosen];
  for (int e = entry_begin[r]; e < entry_begin[r + 1]; ++e) {
    if (entries[e].id == chosen) raw = entries[e].raw;
  }
  logprob[r] = static_cast<float>(static_cast<double>(raw) - log_z[r]);
}

}  // namespace

cudaError_t RowLogSumExp(const float* logits, int rows, int vocab,
                         double* log_z, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  LogSumExpKernel<<<rows, kThreads, 0, stream>>>(logits, vocab, log_z);
  return cudaGetLastError();
}

cudaError_t TopTokens(const float* logits, int rows, int vocab, int n,
                      int32_t* ids, float* values, cudaStream_t stream) {
  if (n > kMaxCandidates || n > vocab) return cudaErrorInvalidValue;
  if (rows == 0 || n == 0) return cudaSuccess;
  TopTokensKernel<<<rows, kThreads, 0, stream>>>(logits, vocab, n, ids, values);
  return cudaGetLastError();
}

cudaError_t ApplyPenalties(float* logits, int rows, int vocab,
                           const RowSampling* params, const int* entry_begin,
                           PenaltyEntry* entries, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  PenaltyKernel<<<rows, 128, 0, stream>>>(logits, vocab, params, entry_begin,
                                          entries);
  return cudaGetLastError();
}

cudaError_t SampleRows(const float* logits, int rows, int vocab,
                       const RowSampling* params, const int* entry_begin,
                       const PenaltyEntry* entries, const double* log_z,
                       int32_t* ids, float* logprob, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  SampleKernel<<<rows, kThreads, 0, stream>>>(
      logits, vocab, params, entry_begin, entries, log_z, ids, logprob);
  return cudaGetLastError();
}

}  // namespace slabserve::cuda
