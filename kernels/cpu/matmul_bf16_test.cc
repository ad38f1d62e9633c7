#include "kernels/cpu/matmul_bf16.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/math/elementwise.h"

namespace slabserve::cpu {
namespace {

constexpr Bf16Isa kAllIsas[] = {Bf16Isa::kGeneric, Bf16Isa::kAvx2,
                                Bf16Isa::kAvx512, Bf16Isa::kAvx512Bf16,
                                Bf16Isa::kAmx};

float Rounded(float v) { return math::Bf16ToFloat(math::Bf16Bits(v)); }

std::vector<float> Random(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(count);
  for (float& x : v) x = dist(rng);
  return v;
}

struct Case {
  int rows, k, n;
};

// Sizes around every tile and block edge: odd k, partial panels, rows past
// whole tiles and parallel blocks.
constexpr Case kCases[] = {{1, 1, 1},     {1, 64, 192},   {3, 33, 17},
                           {8, 31, 48},   {17, 65, 40},   {33, 128, 97},
                           {100, 96, 64}, {130, 200, 50}, {7, 512, 1536}};

std::vector<float> Product(const Case& c, const std::vector<float>& x,
                           const std::vector<float>& w,
                           const std::vector<float>& bias, Bf16Isa isa) {
  const PackedWeightBf16 packed(w.data(), c.n, c.k);
  std::vector<float> y(static_cast<size_t>(c.rows) * c.n, NAN);
  MatMulBf16(x.data(), c.rows, packed, bias.data(), y.data(), isa);
  return y;
}

TEST(MatMulBf16Test, EveryInstructionSetMatchesARoundedReference) {
  for (const Case& c : kCases) {
    const auto x = Random(static_cast<size_t>(c.rows) * c.k, 1);
    const auto w = Random(static_cast<size_t>(c.n) * c.k, 2);
    const auto bias = Random(c.n, 3);
    for (Bf16Isa isa : kAllIsas) {
      if (!Bf16IsaSupported(isa)) continue;
      SCOPED_TRACE(std::string(Bf16IsaName(isa)) + " rows " +
                   std::to_string(c.rows) + " k " + std::to_string(c.k) +
                   " n " + std::to_string(c.n));
      const auto y = Product(c, x, w, bias, isa);
      for (int r = 0; r < c.rows; ++r) {
        for (int j = 0; j < c.n; ++j) {
          double sum = bias[j], magnitude = std::fabs(bias[j]);
          for (int i = 0; i < c.k; ++i) {
            const double term = double{Rounded(x[r * c.k + i])} *
                                Rounded(w[static_cast<size_t>(j) * c.k + i]);
            sum += term;
            magnitude += std::fabs(term);
          }
          ASSERT_NEAR(y[r * c.n + j], sum, 1e-6 * magnitude + 1e-7)
              << "row " << r << " column " << j;
        }
      }
    }
  }
}

// The converting sets sum exact products in order: the same bits as this
// scalar loop, whatever the width.
TEST(MatMulBf16Test, ConvertingSetsAreBitwiseTheInOrderSum) {
  for (const Case& c : kCases) {
    const auto x = Random(static_cast<size_t>(c.rows) * c.k, 4);
    const auto w = Random(static_cast<size_t>(c.n) * c.k, 5);
    const auto bias = Random(c.n, 6);
    std::vector<float> expected(static_cast<size_t>(c.rows) * c.n);
    for (int r = 0; r < c.rows; ++r) {
      for (int j = 0; j < c.n; ++j) {
        float acc = 0.0f;
        for (int i = 0; i < c.k; ++i) {
          acc += Rounded(x[r * c.k + i]) *
                 Rounded(w[static_cast<size_t>(j) * c.k + i]);
        }
        expected[r * c.n + j] = acc + bias[j];
      }
    }
    for (Bf16Isa isa : {Bf16Isa::kGeneric, Bf16Isa::kAvx2, Bf16Isa::kAvx512}) {
      if (!Bf16IsaSupported(isa)) continue;
      SCOPED_TRACE(Bf16IsaName(isa));
      const auto y = Product(c, x, w, bias, isa);
      ASSERT_EQ(std::memcmp(y.data(), expected.data(), y.size() * 4), 0)
          << "rows " << c.rows << " k " << c.k << " n " << c.n;
    }
  }
}

// A row's outputs do not depend on the rows beside it.
TEST(MatMulBf16Test, RowsAreBatchInvariant) {
  const Case c{150, 96, 80};
  const auto x = Random(static_cast<size_t>(c.rows) * c.k, 7);
  const auto w = Random(static_cast<size_t>(c.n) * c.k, 8);
  const auto bias = Random(c.n, 9);
  const PackedWeightBf16 packed(w.data(), c.n, c.k);
  for (Bf16Isa isa : kAllIsas) {
    if (!Bf16IsaSupported(isa)) continue;
    SCOPED_TRACE(Bf16IsaName(isa));
    std::vector<float> all(static_cast<size_t>(c.rows) * c.n);
    MatMulBf16(x.data(), c.rows, packed, bias.data(), all.data(), isa);
    for (int first : {0, 1, 16, 37, 96, 149}) {
      for (int count : {1, 3, 17, 33}) {
        if (first + count > c.rows) continue;
        std::vector<float> part(static_cast<size_t>(count) * c.n);
        MatMulBf16(x.data() + first * c.k, count, packed, bias.data(),
                   part.data(), isa);
        ASSERT_EQ(
            std::memcmp(part.data(), all.data() + first * c.n, part.size() * 4),
            0)
            << "rows " << first << "+" << count;
      }
    }
  }
}

TEST(MatMulBf16Test, RowReturnsTheRoundedWeights) {
  const int n = 21, k = 37;
  const auto w = Random(n * k, 10);
  const PackedWeightBf16 packed(w.data(), n, k);
  EXPECT_EQ(packed.pairs() % 16, 0);
  std::vector<float> row(k);
  for (int j = 0; j < n; ++j) {
    packed.Row(j, row.data());
    for (int i = 0; i < k; ++i) ASSERT_EQ(row[i], Rounded(w[j * k + i]));
  }
}

TEST(MatMulBf16Test, TheBestSetIsSupported) {
  EXPECT_TRUE(Bf16IsaSupported(BestBf16Isa()));
  EXPECT_TRUE(Bf16IsaSupported(Bf16Isa::kGeneric));
}

// Rounds `count` rows of x into `rows` for `w`, last row first (any order).
void RoundInto(Bf16Rows& rows, const PackedWeightBf16& w,
               const std::vector<float>& x, int count) {
  rows.Reserve(count, w);
  for (int r = count - 1; r >= 0; --r) {
    rows.Round(r, x.data() + static_cast<size_t>(r) * w.k());
  }
}

TEST(MatMulBf16Test, RowsRoundedAsWrittenGiveTheSameBits) {
  Bf16Rows prepared;
  // A deeper product with more rows first leaves stale values behind.
  const auto stale_w = Random(33 * 200, 8);
  const PackedWeightBf16 stale(stale_w.data(), 33, 200);
  RoundInto(prepared, stale, Random(40 * 200, 7), 40);
  for (const Case& c : kCases) {
    const auto x = Random(static_cast<size_t>(c.rows) * c.k, 4);
    const auto w = Random(static_cast<size_t>(c.n) * c.k, 5);
    const auto bias = Random(c.n, 6);
    const PackedWeightBf16 packed(w.data(), c.n, c.k);
    for (Bf16Isa isa : kAllIsas) {
      if (!Bf16IsaSupported(isa)) continue;
      SCOPED_TRACE(std::string(Bf16IsaName(isa)) + " rows " +
                   std::to_string(c.rows) + " k " + std::to_string(c.k));
      RoundInto(prepared, packed, x, c.rows);
      std::vector<float> y(static_cast<size_t>(c.rows) * c.n, NAN);
      MatMulBf16(prepared, c.rows, packed, bias.data(), y.data(), isa);
      const auto want = Product(c, x, w, bias, isa);
      EXPECT_EQ(std::memcmp(y.data(), want.data(), sizeof(float) * y.size()),
                0);
    }
  }
}

// Rows rounded for another depth, or fewer than the product reads, are a
// bug in the caller; the product stops the process instead of reading past
// them.
TEST(MatMulBf16DeathTest, RowsReservedForAnotherProductStop) {
  const auto w64 = Random(16 * 64, 1);
  const auto w96 = Random(16 * 96, 2);
  const PackedWeightBf16 depth64(w64.data(), 16, 64);
  const PackedWeightBf16 depth96(w96.data(), 16, 96);
  Bf16Rows prepared;
  RoundInto(prepared, depth64, Random(20 * 64, 3), 20);
  std::vector<float> y(64 * 16);
  EXPECT_TRUE(prepared.Fits(20, depth64));
  EXPECT_TRUE(prepared.Fits(32, depth64));  // 20 rows take two row tiles
  EXPECT_FALSE(prepared.Fits(33, depth64));
  EXPECT_FALSE(prepared.Fits(20, depth96));
  EXPECT_DEATH(MatMulBf16(prepared, 20, depth96, nullptr, y.data()),
               "not reserved");
  EXPECT_DEATH(MatMulBf16(prepared, 40, depth64, nullptr, y.data()),
               "not reserved");
  EXPECT_DEATH(
      MatMulBf16RowBlock(prepared, 32, 48, depth64, nullptr, y.data(), 16),
      "not reserved");
}

// Rows split into blocks of kBf16RowBlock (the last one short), each run on
// its own into wider y rows: the same bits as the whole product, columns
// beside y's untouched.
TEST(MatMulBf16Test, RowBlocksIntoStridedRowsGiveTheSameBits) {
  for (const Case& c : kCases) {
    const auto x = Random(static_cast<size_t>(c.rows) * c.k, 9);
    const auto w = Random(static_cast<size_t>(c.n) * c.k, 10);
    const auto bias = Random(c.n, 11);
    const PackedWeightBf16 packed(w.data(), c.n, c.k);
    const size_t ldy = c.n + 5;
    for (Bf16Isa isa : kAllIsas) {
      if (!Bf16IsaSupported(isa)) continue;
      SCOPED_TRACE(std::string(Bf16IsaName(isa)) + " rows " +
                   std::to_string(c.rows) + " k " + std::to_string(c.k));
      Bf16Rows prepared;
      prepared.Reserve(c.rows, packed);
      std::vector<float> y(c.rows * ldy, -7.0f);
      for (int begin = 0; begin < c.rows; begin += kBf16RowBlock) {
        const int end = std::min(c.rows, begin + kBf16RowBlock);
        for (int r = begin; r < end; ++r) {
          prepared.Round(r, x.data() + static_cast<size_t>(r) * c.k);
        }
        MatMulBf16RowBlock(prepared, begin, end, packed, bias.data(), y.data(),
                           ldy, isa);
      }
      const auto want = Product(c, x, w, bias, isa);
      for (int r = 0; r < c.rows; ++r) {
        EXPECT_EQ(std::memcmp(&y[r * ldy], &want[static_cast<size_t>(r) * c.n],
                              sizeof(float) * c.n),
                  0)
            << "row " << r;
        for (size_t j = c.n; j < ldy; ++j) ASSERT_EQ(y[r * ldy + j], -7.0f);
      }
    }
  }
}

// Rows are rounded as math::Bf16Bits rounds, on every class of value:
// ties to even, carries into the exponent and to infinity, subnormals,
// infinities, and NaNs (quietened, payload's top bits kept). The first 16
// values hold no subnormal and the next 16 do: vector code may treat a run
// of 16 with a subnormal apart.
TEST(Bf16RowsTest, RoundIsBf16BitsForEveryKindOfValue) {
  std::vector<uint32_t> bits = {
      0x00000000u, 0x80000000u, 0x00800000u, 0x3F808000u, 0x3F818000u,
      0x3F80FFFFu, 0x7F7FFFFFu, 0xFF7FFFFFu, 0x7F800000u, 0xFF800000u,
      0x7F800001u, 0xFF810000u, 0x7FC00000u, 0x7FFFFFFFu, 0x3F7FFFFFu,
      0x4049FFFFu, 0x00000001u, 0x807FFFFFu, 0x00008000u, 0x00018000u,
      0x007FFFFFu, 0x807F8000u, 0xC0490FDBu};
  std::mt19937 rng(12);
  while (bits.size() < 67) bits.push_back(rng());
  std::vector<float> x(bits.size());
  std::memcpy(x.data(), bits.data(), bits.size() * sizeof(float));
  const int k = static_cast<int>(x.size());
  const PackedWeightBf16 w(std::vector<float>(k, 0.0f).data(), 1, k);
  Bf16Rows rows;
  rows.Reserve(1, w);
  rows.Round(0, x.data());
  const uint16_t* got = rows.Padded(1);
  for (int i = 0; i < k; ++i) {
    EXPECT_EQ(got[i], math::Bf16Bits(x[i])) << std::hex << bits[i];
  }
  for (int i = k; i < 2 * w.pairs(); ++i) EXPECT_EQ(got[i], 0) << i;
}

}  // namespace
}  // namespace slabserve::cpu
