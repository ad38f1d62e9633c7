// Device sampling against the host formulas it shares (kernels/math) and
// the CPU sampler's definitions. Skips without a CUDA device.
#include "kernels/cuda/sampling_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/cuda/test_util.h"
#include "kernels/math/sampling.h"

namespace slabserve::cuda {
namespace {

std::vector<float> Logits(int rows, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> v(static_cast<size_t>(rows) * vocab);
  for (float& x : v) x = dist(rng);
  v[5] = v[7] = 100.0f;  // a tie in row 0: the lowest id wins
  return v;
}

std::vector<int32_t> BestFirst(const float* row, int vocab) {
  std::vector<int32_t> ids(vocab);
  for (int i = 0; i < vocab; ++i) ids[i] = i;
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return math::Better(row[a], a, row[b], b);
  });
  return ids;
}

// SampleRows over `logits` ([params.size(), vocab]) without penalties, with
// RowLogSumExp's log-normalizers: each row's id and chosen logprob.
struct Sampled {
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  std::vector<double> log_z;
};

Sampled SampleWithoutPenalties(const std::vector<float>& logits, int vocab,
                               const std::vector<RowSampling>& params) {
  const int rows = static_cast<int>(params.size());
  const std::vector<int> entry_begin(rows + 1, 0);
  DeviceVector<float> dl(logits);
  DeviceVector<RowSampling> dp(params);
  DeviceVector<int> dbegin(entry_begin);
  DeviceVector<PenaltyEntry> dentries(1);
  DeviceVector<int32_t> dids(rows);
  DeviceVector<float> dlogprob(rows);
  DeviceVector<double> dz(rows);
  EXPECT_EQ(RowLogSumExp(dl.get(), rows, vocab, dz.get(), nullptr),
            cudaSuccess);
  EXPECT_EQ(
      SampleRows(dl.get(), rows, vocab, dp.get(), dbegin.get(), dentries.get(),
                 dz.get(), dids.get(), dlogprob.get(), nullptr),
      cudaSuccess);
  return {dids.Read(), dlogprob.Read(), dz.Read()};
}

TEST(SamplingKernelsTest, TopTokensAndLogSumExp) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int rows = 3, vocab = 5000, n = 10;
  const std::vector<float> logits = Logits(rows, vocab, 1);
  DeviceVector<float> dl(logits), dvalues(rows * n);
  DeviceVector<int32_t> dids(rows * n);
  DeviceVector<double> dz(rows);
  ASSERT_EQ(
      TopTokens(dl.get(), rows, vocab, n, dids.get(), dvalues.get(), nullptr),
      cudaSuccess);
  ASSERT_EQ(RowLogSumExp(dl.get(), rows, vocab, dz.get(), nullptr),
            cudaSuccess);
  const std::vector<int32_t> ids = dids.Read();
  const std::vector<double> z = dz.Read();
  for (int r = 0; r < rows; ++r) {
    const float* row = &logits[static_cast<size_t>(r) * vocab];
    const std::vector<int32_t> want = BestFirst(row, vocab);
    for (int j = 0; j < n; ++j) EXPECT_EQ(ids[r * n + j], want[j]);
    double max = row[want[0]], sum = 0.0;
    for (int i = 0; i < vocab; ++i) sum += std::exp(row[i] - max);
    EXPECT_NEAR(z[r], max + std::log(sum), 1e-9 * std::fabs(z[r]));
  }
  EXPECT_EQ(ids[0], 5);
}

// Greedy is the CPU's scan from id 0 that keeps the first strictly larger
// value: NaNs are never chosen, except that one at id 0 is never beaten.
TEST(SamplingKernelsTest, GreedyFollowsTheCpuScanWithNaNs) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int rows = 4, vocab = 600;  // more ids than threads in a block
  std::vector<float> logits = Logits(rows, vocab, 3);
  float* row = logits.data();
  row[0] = NAN;  // row 0: NaN at id 0
  row += vocab;  // row 1: NaNs where threads start, the best elsewhere
  for (int id : {1, 3, 300, 515}) row[id] = NAN;
  row[450] = 50.0f;
  row += vocab;  // row 2: every logit NaN
  std::fill(row, row + vocab, NAN);
  row += vocab;  // row 3: a NaN first in a thread's run, then the best
  row[7] = NAN;
  row[7 + 512] = 60.0f;
  std::vector<int32_t> want(rows);
  for (int r = 0; r < rows; ++r) {
    const float* x = &logits[static_cast<size_t>(r) * vocab];
    for (int i = 1; i < vocab; ++i) {
      if (x[i] > x[want[r]]) want[r] = i;
    }
  }
  EXPECT_EQ(want, (std::vector<int32_t>{0, 450, 0, 519}));
  const std::vector<RowSampling> greedy(rows);
  EXPECT_EQ(SampleWithoutPenalties(logits, vocab, greedy).ids, want);
}

// As the CPU sampler: a row with an infinite logit, or none finite, takes
// the greedy choice whatever the filters; NaN logits are never drawn.
TEST(SamplingKernelsTest, NonFiniteRowsTakeTheGreedyChoiceAndNeverDrawNaN) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int vocab = 3000;  // top-p over all of it: the bisected draw
  std::vector<RowSampling> params(8);
  for (RowSampling& p : params) p.temperature = 0.9f;
  params[1].top_p = 0.9f;
  params[2].min_p = 0.1f;
  params[2].top_k = 2000;
  params[4].top_p = 0.5f;
  params[6].top_p = 0.9f;
  params[7].top_k = 50;
  std::vector<float> logits = Logits(8, vocab, 4);
  auto row = [&](int r) {
    return logits.data() + static_cast<size_t>(r) * vocab;
  };
  for (int r = 0; r < 3; ++r) row(r)[2000] = row(r)[2500] = INFINITY;
  std::fill(row(3), row(3) + vocab, -INFINITY);
  std::fill(row(4), row(4) + vocab, NAN);
  for (int r = 5; r < 8; ++r) {
    for (int id = r; id < vocab; id += 7) row(r)[id] = NAN;
  }
  const std::vector<int32_t> ids =
      SampleWithoutPenalties(logits, vocab, params).ids;
  EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + 5),
            (std::vector<int32_t>{2000, 2000, 2000, 0, 0}));
  for (int r = 5; r < 8; ++r) {
    ASSERT_GE(ids[r], 0);
    ASSERT_LT(ids[r], vocab);
    EXPECT_FALSE(std::isnan(row(r)[ids[r]])) << "row " << r;
  }
}

TEST(SamplingKernelsTest, DrawsMatchHostDrawForTheSameCounter) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int vocab = 3000;
  std::vector<RowSampling> params(8);
  params[0].temperature = 0.0f;
  params[1].temperature = 0.8f;
  params[1].top_k = 40;
  params[2].temperature = 1.1f;
  params[2].top_k = 200;
  params[2].top_p = 0.7f;
  params[3].temperature = 1.0f;
  params[3].top_k = 100;
  params[3].min_p = 0.05f;
  params[4].temperature = 0.9f;  // whole vocabulary in id order
  // More candidates than shared memory holds: drawn by bisection.
  params[5].temperature = 1.0f;
  params[5].top_p = 0.9f;  // top-p over all 3000 ids
  params[6].temperature = 0.8f;
  params[6].top_k = 2000;
  params[6].top_p = 0.95f;
  params[6].min_p = 0.01f;
  params[7].temperature = 1.2f;
  params[7].top_k = 1500;
  const int rows = static_cast<int>(params.size());
  for (int r = 0; r < rows; ++r) {
    params[r].seed = 77 + r;
    params[r].draw_index = 3 * r;
  }
  const std::vector<float> logits = Logits(rows, vocab, 2);
  const Sampled sampled = SampleWithoutPenalties(logits, vocab, params);
  for (int r = 0; r < rows; ++r) {
    const RowSampling& p = params[r];
    const float* row = &logits[static_cast<size_t>(r) * vocab];
    std::vector<int32_t> order = BestFirst(row, vocab);
    int32_t want = order[0];
    if (p.temperature > 0.0f) {
      if (p.top_k > 0) {
        order.resize(p.top_k);
      } else if (p.top_p == 1.0f) {
        for (int i = 0; i < vocab; ++i) order[i] = i;
      }
      std::vector<float> values;
      for (int32_t id : order) values.push_back(row[id]);
      std::vector<double> weights(order.size());
      std::vector<int32_t> kept(order.size());
      want = math::DrawFromCandidates(
          values.data(), order.data(), static_cast<int>(order.size()),
          p.temperature, p.min_p, p.top_p,
          math::UniformDraw(p.seed, p.draw_index), weights.data(), kept.data());
    }
    EXPECT_EQ(sampled.ids[r], want) << "row " << r;
    EXPECT_NEAR(sampled.logprobs[r], row[want] - sampled.log_z[r], 1e-5)
        << "row " << r;
  }
}

TEST(SamplingKernelsTest, PenaltiesApplyBeforeTheDraw) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int vocab = 50;
  std::vector<float> logits(vocab, 0.0f);
  logits[3] = 5.0f;
  logits[4] = 4.0f;
  RowSampling p;
  p.repetition_penalty = 2.0f;  // 5 → 2.5: token 4 wins
  std::vector<PenaltyEntry> entries = {{3, 1, 0, 0.0f}};
  const std::vector<int> begin = {0, 1};
  DeviceVector<float> dl(logits);
  DeviceVector<RowSampling> dp(std::vector<RowSampling>{p});
  DeviceVector<int> dbegin(begin);
  DeviceVector<PenaltyEntry> dentries(entries);
  DeviceVector<int32_t> dids(1);
  DeviceVector<float> dlogprob(1);
  DeviceVector<double> dz(1);
  ASSERT_EQ(RowLogSumExp(dl.get(), 1, vocab, dz.get(), nullptr), cudaSuccess);
  ASSERT_EQ(ApplyPenalties(dl.get(), 1, vocab, dp.get(), dbegin.get(),
                           dentries.get(), nullptr),
            cudaSuccess);
  ASSERT_EQ(
      SampleRows(dl.get(), 1, vocab, dp.get(), dbegin.get(), dentries.get(),
                 dz.get(), dids.get(), dlogprob.get(), nullptr),
      cudaSuccess);
  EXPECT_EQ(dids.Read()[0], 4);
  EXPECT_FLOAT_EQ(dl.Read()[3],
                  math::PenalizedLogit(5.0f, true, 0, 2.0f, 0, 0));
  EXPECT_EQ(dentries.Read()[0].raw, 5.0f);
}

}  // namespace
}  // namespace slabserve::cuda
