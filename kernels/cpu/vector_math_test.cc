#include "kernels/cpu/vector_math.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace slabserve::cpu {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Distance in units in the last place: floats between a and b, plus one.
int64_t UlpDistance(float a, float b) {
  auto ordered = [](float f) {
    int32_t i;
    std::memcpy(&i, &f, sizeof(i));
    return i < 0 ? int64_t{INT32_MIN} - i : int64_t{i};
  };
  return std::llabs(ordered(a) - ordered(b));
}

using ArrayFn = std::function<void(const float*, int64_t, float*)>;

// Points spread evenly over [lo, hi], plus their neighbours.
std::vector<float> Sweep(float lo, float hi, int count) {
  std::vector<float> x;
  for (int i = 0; i <= count; ++i) {
    const float v = lo + (hi - lo) * static_cast<float>(i) / count;
    x.push_back(v);
    x.push_back(std::nextafter(v, kInf));
  }
  return x;
}

// Largest ulp error of fn against the double-precision reference, rounded.
int64_t MaxUlpError(const ArrayFn& fn, const std::function<double(double)>& ref,
                    const std::vector<float>& x) {
  std::vector<float> y(x.size());
  fn(x.data(), static_cast<int64_t>(x.size()), y.data());
  int64_t worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = static_cast<float>(ref(x[i]));
    const int64_t error = UlpDistance(y[i], want);
    EXPECT_LE(error, 16) << "x = " << x[i] << ": " << y[i] << " vs " << want;
    worst = std::max(worst, error);
  }
  return worst;
}

float One(const ArrayFn& fn, float x) {
  float y;
  fn(&x, 1, &y);
  return y;
}

TEST(VectorMathTest, ExpWithinTwoUlp) {
  std::vector<float> x = Sweep(-87.3f, 88.7f, 400000);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, 88.72f, -87.33f}) {
    x.push_back(v);
  }
  EXPECT_LE(MaxUlpError(
                Exp, [](double v) { return std::exp(v); }, x),
            2);
  EXPECT_EQ(One(Exp, 0.0f), 1.0f);
  EXPECT_EQ(One(Exp, 89.0f), kInf);
  EXPECT_EQ(One(Exp, kInf), kInf);
  EXPECT_EQ(One(Exp, -kInf), 0.0f);
  EXPECT_EQ(One(Exp, -100.0f), 0.0f);  // below FLT_MIN: flushed
  EXPECT_TRUE(std::isnan(One(Exp, std::nanf(""))));
}

TEST(VectorMathTest, Expm1WithinTwoUlpIncludingNearZero) {
  std::vector<float> x = Sweep(-87.0f, 88.7f, 200000);
  const std::vector<float> near_zero = Sweep(-0.7f, 0.7f, 200000);
  x.insert(x.end(), near_zero.begin(), near_zero.end());
  for (float v : {1e-30f, -1e-30f, 1e-10f, -1e-10f, 3e-5f, -3e-5f}) {
    x.push_back(v);
  }
  EXPECT_LE(MaxUlpError(
                Expm1, [](double v) { return std::expm1(v); }, x),
            2);
  EXPECT_EQ(One(Expm1, 0.0f), 0.0f);
  EXPECT_EQ(One(Expm1, -100.0f), -1.0f);
  EXPECT_EQ(One(Expm1, -kInf), -1.0f);
  EXPECT_EQ(One(Expm1, 100.0f), kInf);
  EXPECT_TRUE(std::isnan(One(Expm1, std::nanf(""))));
}

TEST(VectorMathTest, TanhWithinThreeUlp) {
  std::vector<float> x = Sweep(-12.0f, 12.0f, 400000);
  for (float v : {1e-30f, -1e-30f, 1e-6f, -1e-6f, 9.0f, 9.1f}) x.push_back(v);
  EXPECT_LE(MaxUlpError(
                Tanh, [](double v) { return std::tanh(v); }, x),
            3);
  EXPECT_EQ(One(Tanh, kInf), 1.0f);
  EXPECT_EQ(One(Tanh, -kInf), -1.0f);
  EXPECT_EQ(One(Tanh, 0.0f), 0.0f);
  EXPECT_TRUE(std::isnan(One(Tanh, std::nanf(""))));
}

TEST(VectorMathTest, SigmoidWithinThreeUlp) {
  const std::vector<float> x = Sweep(-80.0f, 80.0f, 400000);
  EXPECT_LE(
      MaxUlpError(
          Sigmoid, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }, x),
      3);
  EXPECT_EQ(One(Sigmoid, -kInf), 0.0f);
  EXPECT_EQ(One(Sigmoid, kInf), 1.0f);
}

// The composites against their double-precision formulas.
TEST(VectorMathTest, ActivationsMatchTheirFormulas) {
  const std::vector<float> x = Sweep(-12.0f, 12.0f, 100000);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<float> gelu(n), silu(n), capped(n), mul(n);
  GeluTanh(x.data(), n, gelu.data());
  Silu(x.data(), n, silu.data());
  SoftCap(x.data(), n, 5.0f, capped.data());
  GeluTanhMul(x.data(), x.data(), n, mul.data());
  for (int64_t i = 0; i < n; ++i) {
    const double z = x[i];
    const double g =
        0.5 * z *
        (1.0 + std::tanh(0.7978845608028654 * (z + 0.044715 * z * z * z)));
    EXPECT_NEAR(gelu[i], g, 1e-6 * std::max(1.0, std::fabs(g))) << z;
    EXPECT_NEAR(mul[i], g * z, 2e-6 * std::max(1.0, std::fabs(g * z))) << z;
    const double s = z / (1.0 + std::exp(-z));
    EXPECT_NEAR(silu[i], s, 1e-6 * std::max(1.0, std::fabs(s))) << z;
    EXPECT_NEAR(capped[i], 5.0 * std::tanh(z / 5.0), 2e-6) << z;
  }
}

TEST(VectorMathTest, KnownValuesAndCapEdgeCases) {
  EXPECT_EQ(One(GeluTanh, 0.0f), 0.0f);
  EXPECT_NEAR(One(GeluTanh, 1.0f), 0.8411920, 1e-6);
  EXPECT_NEAR(One(GeluTanh, -1.0f), -0.1588080, 1e-6);
  const float gate[2] = {1.0f, -1.0f}, up[2] = {2.0f, 3.0f};
  float out[2];
  GeluTanhMul(gate, up, 2, out);
  EXPECT_NEAR(out[0], 2 * 0.8411920, 1e-6);
  EXPECT_NEAR(out[1], 3 * -0.1588080, 1e-6);
  EXPECT_EQ(One(Sigmoid, 0.0f), 0.5f);
  EXPECT_EQ(One(Silu, 0.0f), 0.0f);
  float x[3] = {1000.0f, -1000.0f, 3.0f};
  SoftCap(x, 3, 30.0f, x);
  EXPECT_EQ(x[0], 30.0f);
  EXPECT_EQ(x[1], -30.0f);
  EXPECT_NEAR(x[2], 30.0 * std::tanh(0.1), 1e-6);
  float y[1] = {1000.0f};
  SoftCap(y, 1, 0.0f, y);
  EXPECT_EQ(y[0], 1000.0f);
}

TEST(VectorMathTest, RgLruCoefficientsMatchTheScalarFormula) {
  const int n = 37;  // four vectors and a tail
  std::vector<float> log_decay(n), rg(n), ig(n), x(n), a(n), b(n), b0(n);
  for (int i = 0; i < n; ++i) {
    log_decay[i] = -8.0f * std::log1p(std::exp(-3.0f + 0.15f * i));
    rg[i] = -4.0f + 0.2f * i;
    ig[i] = 3.0f - 0.17f * i;
    x[i] = std::sin(0.7f * i);
  }
  RgLruCoefficients(log_decay.data(), rg.data(), ig.data(), x.data(), n, false,
                    a.data(), b.data());
  RgLruCoefficients(log_decay.data(), rg.data(), ig.data(), x.data(), n, true,
                    a.data(), b0.data());
  for (int i = 0; i < n; ++i) {
    const double r = 1.0 / (1.0 + std::exp(-static_cast<double>(rg[i])));
    const double g = 1.0 / (1.0 + std::exp(-static_cast<double>(ig[i])));
    const double log_a = log_decay[i] * r;
    EXPECT_NEAR(a[i], std::exp(log_a), 3e-7) << i;
    const double want = std::sqrt(-std::expm1(2 * log_a)) * g * x[i];
    EXPECT_NEAR(b[i], want, 1e-6 * std::max(1.0, std::fabs(want))) << i;
    EXPECT_NEAR(b0[i], g * x[i], 1e-6) << i;
  }
}

// An element's result does not depend on where it sits: in a full vector or
// in the padded tail, at any offset, in arrays of any length.
TEST(VectorMathTest, ResultsDoNotDependOnPositionOrLength) {
  const ArrayFn fns[] = {Exp, Expm1, Tanh, Sigmoid, Silu, GeluTanh};
  const std::vector<float> values = {-3.7f, -0.31f, 1e-4f, 0.52f, 2.9f, 7.5f};
  for (const ArrayFn& fn : fns) {
    for (float v : values) {
      const float alone = One(fn, v);
      for (int length = 1; length <= 20; ++length) {
        for (int at = 0; at < length; ++at) {
          std::vector<float> x(length, 0.25f * at), y(length);
          x[at] = v;
          fn(x.data(), length, y.data());
          ASSERT_EQ(UlpDistance(y[at], alone), 0)
              << "value " << v << " at " << at << " of " << length;
        }
      }
    }
  }
}

// Every function gives the same bits at every vector width: AVX-512 (where
// the CPU has it) against the build's own 8 lanes, over all lengths' tails.
TEST(VectorMathTest, Avx512EqualsTheNativeWidthBitwise) {
  if (!AllowVectorMathAvx512(true)) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::vector<float> x = Sweep(-100.0f, 100.0f, 4000);
  for (float special : {0.0f, -0.0f, kInf, -kInf, 1e-30f, -1e-30f,
                        std::numeric_limits<float>::quiet_NaN()}) {
    x.push_back(special);
  }
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<float> up(x.rbegin(), x.rend());
  std::vector<float> decay(n, -0.7f);
  auto all = [&](bool avx512) {
    AllowVectorMathAvx512(avx512);
    std::vector<std::vector<float>> out(11, std::vector<float>(n));
    Exp(x.data(), n, out[0].data());
    Expm1(x.data(), n, out[1].data());
    Tanh(x.data(), n, out[2].data());
    Sigmoid(x.data(), n, out[3].data());
    Silu(x.data(), n, out[4].data());
    GeluTanh(x.data(), n, out[5].data());
    GeluTanhMul(x.data(), up.data(), n, out[6].data());
    SoftCap(x.data(), n, 30.0f, out[7].data());
    RgLruCoefficients(decay.data(), x.data(), up.data(), x.data(), n, false,
                      out[8].data(), out[9].data());
    Tanh(x.data(), 13, out[10].data());  // one padded tail
    return out;
  };
  const auto wide = all(true);
  const auto native = all(false);
  AllowVectorMathAvx512(true);
  for (size_t f = 0; f < wide.size(); ++f) {
    EXPECT_EQ(std::memcmp(wide[f].data(), native[f].data(), n * sizeof(float)),
              0)
        << "function " << f;
  }
}

}  // namespace
}  // namespace slabserve::cpu
