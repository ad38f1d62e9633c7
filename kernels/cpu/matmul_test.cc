#include "kernels/cpu/matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
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

// Shapes around every tile edge: rows past a 6-row tile and a 96-row block,
// n with a partial 16-wide panel, k over several 256-step passes.
TEST(MatMulTest, MatchesDoublePrecisionReference) {
  for (auto [rows, k, n] : {std::tuple{7, 37, 13}, std::tuple{1, 600, 100},
                            std::tuple{101, 513, 35}, std::tuple{13, 8, 400}}) {
    std::vector<float> x = Random(rows * k, 1), w = Random(n * k, 2),
                       bias = Random(n, 3), y(rows * n);
    MatMulPacked(x.data(), rows, PackedWeight(w.data(), n, k), bias.data(),
                 y.data());
    for (int r = 0; r < rows; ++r) {
      for (int j = 0; j < n; ++j) {
        double ref = bias[j];
        for (int i = 0; i < k; ++i) ref += double{x[r * k + i]} * w[j * k + i];
        ASSERT_NEAR(y[r * n + j], ref, 1e-5 * k) << r << "," << j;
      }
    }
  }
}

TEST(MatMulTest, RowResultsDoNotDependOnBatch) {
  const int k = 700, n = 300, rows = 203;
  std::vector<float> x = Random(rows * k, 4), w = Random(n * k, 5),
                     bias = Random(n, 6), batch(rows * n);
  const PackedWeight packed(w.data(), n, k);
  MatMulPacked(x.data(), rows, packed, bias.data(), batch.data());
  // Every sub-batch size hits a different tile shape for its rows.
  for (int count : {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 97}) {
    for (int r = 0; r + count <= rows; r += 37) {
      std::vector<float> part(count * n);
      MatMulPacked(x.data() + r * k, count, packed, bias.data(), part.data());
      for (int i = 0; i < count * n; ++i) {
        ASSERT_EQ(part[i], batch[r * n + i])
            << count << " rows from " << r << ", element " << i;
      }
    }
  }
}

// A slice of wider rows in and out gives the bits of the contiguous product,
// and leaves the rest of the output rows alone.
TEST(MatMulTest, StridedRowsMatchContiguousRowsBitwise) {
  const int k = 64, n = 40, rows = 23, ldx = 3 * k, ldy = 2 * n + 5;
  std::vector<float> wide = Random(rows * ldx, 7), w = Random(n * k, 8),
                     bias = Random(n, 9), x(rows * k), y(rows * n);
  for (int r = 0; r < rows; ++r) {
    std::copy_n(&wide[r * ldx + k], k, &x[r * k]);  // the middle slice
  }
  const PackedWeight packed(w.data(), n, k);
  MatMulPacked(x.data(), rows, packed, bias.data(), y.data());
  std::vector<float> strided(rows * ldy, -1.0f);
  MatMulPackedStrided(wide.data() + k, ldx, rows, packed, bias.data(),
                      strided.data() + n, ldy);
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < ldy; ++j) {
      const float want = j >= n && j < 2 * n ? y[r * n + j - n] : -1.0f;
      ASSERT_EQ(strided[r * ldy + j], want) << r << "," << j;
    }
  }
}

TEST(MatMulTest, RowRecoversTheUnpackedMatrix) {
  const int k = 19, n = 21;
  std::vector<float> w = Random(n * k, 9), row(k);
  const PackedWeight packed(w.data(), n, k);
  EXPECT_EQ(packed.n(), n);
  EXPECT_EQ(packed.k(), k);
  for (int j = 0; j < n; ++j) {
    packed.Row(j, row.data());
    EXPECT_EQ(row, std::vector<float>(w.begin() + j * k, w.begin() + j * k + k))
        << j;
  }
}

TEST(MatMulTest, EmptyInnerDimensionGivesTheBias) {
  const std::vector<float> bias = {1.5f, -2.0f, 3.0f};
  std::vector<float> y(2 * 3, 7.0f);
  MatMulPacked(nullptr, 2, PackedWeight(nullptr, 3, 0), bias.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{1.5f, -2.0f, 3.0f, 1.5f, -2.0f, 3.0f}));
}

TEST(MatMulTest, DotMatchesDoublePrecisionReference) {
  const int k = 45;
  std::vector<float> a = Random(k, 10), b = Random(k, 11);
  double ref = 0;
  for (int i = 0; i < k; ++i) ref += double{a[i]} * b[i];
  EXPECT_NEAR(Dot(a.data(), b.data(), k), ref, 1e-4);
}

}  // namespace
}  // namespace slabserve::cpu
