// The shared formulas against the CPU engine's kernels: bitwise where both
// run the same operations (norms, RoPE, bf16 rounding), within the stated
// ulp bounds where the CPU uses its vector polynomials, and against the
// specs' own definitions (conv taps, SRM's parallel form).
#include "kernels/math/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/norm_act.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/vector_math.h"
#include "kernels/math/rows.h"

namespace slabserve::math {
namespace {

std::vector<float> RandomVector(int n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

uint32_t Bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof(b));
  return b;
}

// |a − b| within `ulps` units of the larger magnitude's spacing, or an
// absolute `floor` for results near zero.
void ExpectClose(float a, float b, int ulps, float floor, const char* what,
                 int i) {
  const float spacing =
      std::nextafter(std::fmax(std::fabs(a), std::fabs(b)), INFINITY) -
      std::fmax(std::fabs(a), std::fabs(b));
  EXPECT_LE(std::fabs(a - b), std::fmax(ulps * spacing, floor))
      << what << " at " << i << ": " << a << " vs " << b;
}

TEST(ElementwiseTest, ActivationsMatchCpuWithinUlps) {
  const int n = 4096;
  std::vector<float> x = RandomVector(n, 12.0f, 1);
  std::vector<float> up = RandomVector(n, 3.0f, 2);
  std::vector<float> sig(n), silu(n), gelu(n), geglu(n), cap(n);
  cpu::Sigmoid(x.data(), n, sig.data());
  cpu::Silu(x.data(), n, silu.data());
  cpu::GeluTanh(x.data(), n, gelu.data());
  cpu::GeluTanhMul(x.data(), up.data(), n, geglu.data());
  std::vector<float> logits = RandomVector(n, 90.0f, 3);
  cpu::SoftCap(logits.data(), n, 30.0f, cap.data());
  for (int i = 0; i < n; ++i) {
    // CPU within 3 ulp of exact, libm within 1: 4 ulp apart at most, plus
    // one rounding of the surrounding products.
    ExpectClose(Sigmoid(x[i]), sig[i], 6, 1e-7f, "sigmoid", i);
    ExpectClose(Silu(x[i]), silu[i], 6, 1e-7f, "silu", i);
    // gelu = 0.5·z·(1 + tanh(·)): for negative z, 1 + tanh cancels, and
    // each tanh's error (a few ulp of 1) is scaled by 0.5·|z| instead.
    const float gelu_floor = 2.4e-7f * std::fabs(x[i]) + 1e-7f;
    ExpectClose(GeluTanh(x[i]), gelu[i], 6, gelu_floor, "gelu", i);
    ExpectClose(GeGlu(x[i], up[i]), geglu[i], 12, gelu_floor * std::fabs(up[i]),
                "geglu", i);
    ExpectClose(SoftCap(logits[i], 30.0f), cap[i], 6, 1e-6f, "softcap", i);
  }
  EXPECT_EQ(SoftCap(123.0f, 0.0f), 123.0f);  // no cap
}

TEST(ElementwiseTest, RgLruCoefficientsMatchCpu) {
  const int n = 2048;
  std::vector<float> lambda = RandomVector(n, 6.0f, 4);
  std::vector<float> log_decay(n);
  for (int i = 0; i < n; ++i) {
    log_decay[i] = RgLruLogDecay(lambda[i]);
    EXPECT_EQ(Bits(log_decay[i]),
              Bits(static_cast<float>(-8.0 * cpu::Softplus(lambda[i]))));
  }
  std::vector<float> r = RandomVector(n, 5.0f, 5);
  std::vector<float> g = RandomVector(n, 5.0f, 6);
  std::vector<float> x = RandomVector(n, 2.0f, 7);
  for (bool reset : {false, true}) {
    std::vector<float> a(n), b(n);
    cpu::RgLruCoefficients(log_decay.data(), r.data(), g.data(), x.data(), n,
                           reset, a.data(), b.data());
    for (int i = 0; i < n; ++i) {
      const ScanStep step =
          RgLruCoefficients(log_decay[i], r[i], g[i], x[i], reset);
      ExpectClose(step.a, a[i], 8, 1e-7f, "a", i);
      ExpectClose(step.b, b[i], 12, 1e-7f, "b", i);
      EXPECT_EQ(RgLruUpdate(0.5f, step, reset),
                reset ? step.b : step.a * 0.5f + step.b);
    }
  }
}

TEST(ElementwiseTest, CausalConvTapOrder) {
  // Tap K−1 multiplies the current token, tap 0 the token K−1 back.
  const int K = 4, R = 3;
  const float taps[K * R] = {1, 0, 0, 10, 0, 0, 100, 0, 0, 1000, 0, 0};
  const float window[K] = {1, 2, 3, 4};  // oldest first
  EXPECT_EQ(CausalConvChannel(taps, R, K, 0.5f, window),
            0.5f + 1 + 20 + 300 + 4000);
}

TEST(ElementwiseTest, SrmStepsMatchParallelForm) {
  // Y[t] = Σ_{s≤t} M[s,t]·P[s] + b[t] with M[s,t] = w[t]·a^(t−s) (column)
  // or w[s]·a^(t−s) (row), in double.
  const int N = 40;
  std::vector<float> p = RandomVector(N, 2.0f, 8);
  std::vector<float> w = RandomVector(N, 1.5f, 9);
  std::vector<float> b = RandomVector(N, 0.5f, 10);
  const float a = 0.97f;
  float column_state = 0.0f, row_state = 0.0f;
  for (int t = 0; t < N; ++t) {
    double column = b[t], row = b[t];
    for (int s = 0; s <= t; ++s) {
      const double decay = std::pow(static_cast<double>(a), t - s);
      column += w[t] * decay * p[s];
      row += w[s] * decay * p[s];
    }
    EXPECT_NEAR(SrmColumnStep(column_state, p[t], a, w[t], b[t]), column, 1e-4);
    EXPECT_NEAR(SrmRowStep(row_state, p[t], a, w[t], b[t]), row, 1e-4);
  }
}

TEST(ElementwiseTest, RotaryMatchesCpuBitwise) {
  const int rot = 16, hd = 24;
  for (int64_t position : {0, 1, 7, 2047, 100000}) {
    std::vector<float> cpu_x = RandomVector(hd, 3.0f, 11);
    std::vector<float> x = cpu_x;
    std::vector<float> cos(rot / 2), sin(rot / 2);
    cpu::RotaryAngles(position, rot, 10000.0, cos.data(), sin.data());
    cpu::ApplyRotary(cpu_x.data(), rot, cos.data(), sin.data());
    for (int j = 0; j < rot / 2; ++j) {
      float c, s;
      RotaryAngle(position, j, rot, 10000.0, &c, &s);
      RotatePair(x[j], x[j + rot / 2], c, s);
    }
    for (int i = 0; i < hd; ++i) EXPECT_EQ(Bits(x[i]), Bits(cpu_x[i])) << i;
  }
}

TEST(ElementwiseTest, NormRowsMatchCpuBitwise) {
  const int D = 2560;
  std::vector<float> x = RandomVector(D, 40.0f, 12);
  std::vector<float> scale = RandomVector(D, 2.0f, 13);
  std::vector<float> bias = RandomVector(D, 1.0f, 14);
  std::vector<float> cpu_y(D), y(D);
  cpu::RmsNorm(x.data(), 1, D, scale.data(), 1e-6f, cpu_y.data());
  RmsNormRow(x.data(), D, scale.data(), 1e-6f, y.data());
  for (int i = 0; i < D; ++i) ASSERT_EQ(Bits(y[i]), Bits(cpu_y[i])) << i;
  cpu::LayerNorm(x.data(), 1, D, scale.data(), bias.data(), 1e-5f,
                 cpu_y.data());
  LayerNormRow(x.data(), D, scale.data(), bias.data(), 1e-5f, y.data());
  for (int i = 0; i < D; ++i) ASSERT_EQ(Bits(y[i]), Bits(cpu_y[i])) << i;
}

TEST(ElementwiseTest, TreeOrderedSumGivesTheSameRmsNorm) {
  // A CUDA block sums in a tree, the CPU in 16 lanes; in double that moves
  // the f32 inverse by at most one ulp.
  const int D = 4096;
  for (uint32_t seed = 20; seed < 40; ++seed) {
    std::vector<float> x = RandomVector(D, 100.0f, seed);
    std::vector<double> partial(D);
    for (int i = 0; i < D; ++i) partial[i] = static_cast<double>(x[i]) * x[i];
    for (int stride = D / 2; stride > 0; stride /= 2) {
      for (int i = 0; i < stride; ++i) partial[i] += partial[i + stride];
    }
    double sequential = 0.0;
    for (int i = 0; i < D; ++i) sequential += static_cast<double>(x[i]) * x[i];
    const double lanes = SumInLanes(
        x.data(), D, [](float v) { return static_cast<double>(v) * v; });
    const float tree = RmsNormInverse(partial[0], D, 1e-6f);
    const float cpu = RmsNormInverse(lanes, D, 1e-6f);
    EXPECT_LE(std::abs(static_cast<int64_t>(Bits(tree)) - Bits(cpu)), 1);
    // Nor does the CPU's lane order move it from a left-to-right sum.
    const float in_order = RmsNormInverse(sequential, D, 1e-6f);
    EXPECT_LE(std::abs(static_cast<int64_t>(Bits(in_order)) - Bits(cpu)), 1);
  }
}

TEST(ElementwiseTest, Bf16RoundingMatchesCpu) {
  std::vector<float> values = RandomVector(1000, 1e4f, 15);
  values.push_back(1.00390625f);  // a tie: rounds to even (1.0)
  values.push_back(1.01171875f);  // a tie: rounds up to even
  values.push_back(std::numeric_limits<float>::quiet_NaN());
  values.push_back(std::numeric_limits<float>::infinity());
  for (float v : values) {
    EXPECT_EQ(Bits(Bf16ToFloat(Bf16Bits(v))), Bits(cpu::RoundToBf16(v))) << v;
  }
}

}  // namespace
}  // namespace slabserve::math
