#include "kernels/cpu/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace slabserve::cpu {
namespace {

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(MatMulTest, MatchesDoublePrecisionReference) {
  const int rows = 7, k = 37, n = 13;
  std::vector<float> x = Random(rows * k, 1), w = Random(n * k, 2),
                     bias = Random(n, 3), y(rows * n);
  MatMulTransposed(x.data(), rows, k, w.data(), n, bias.data(), y.data());
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < n; ++j) {
      double ref = bias[j];
      for (int i = 0; i < k; ++i) ref += double{x[r * k + i]} * w[j * k + i];
      EXPECT_NEAR(y[r * n + j], ref, 1e-4) << r << "," << j;
    }
  }
}

TEST(MatMulTest, RowResultsDoNotDependOnBatch) {
  const int k = 200, n = 300, rows = 131;
  std::vector<float> x = Random(rows * k, 4), w = Random(n * k, 5),
                     batch(rows * n), single(n);
  MatMulTransposed(x.data(), rows, k, w.data(), n, nullptr, batch.data());
  for (int r = 0; r < rows; r += 17) {
    MatMulTransposed(x.data() + r * k, 1, k, w.data(), n, nullptr,
                     single.data());
    for (int j = 0; j < n; ++j) {
      ASSERT_EQ(single[j], batch[r * n + j]) << "row " << r << " col " << j;
      ASSERT_EQ(single[j], Dot(x.data() + r * k, w.data() + j * k, k));
    }
  }
}

}  // namespace
}  // namespace slabserve::cpu
