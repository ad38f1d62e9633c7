#include "kernels/cpu/ops.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace slabserve::cpu {
namespace {

TEST(RoundToBf16, RoundsToNearestEven) {
  // sqrt(96) = 9.798: truncation gives 9.75, nearest gives 9.8125.
  EXPECT_EQ(RoundToBf16(std::sqrt(96.0f)), 9.8125f);
  EXPECT_EQ(RoundToBf16(std::sqrt(2560.0f)), 50.5f);
  EXPECT_EQ(RoundToBf16(std::sqrt(4096.0f)), 64.0f);
  EXPECT_EQ(RoundToBf16(std::sqrt(64.0f)), 8.0f);
  // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties to even (1).
  EXPECT_EQ(RoundToBf16(1.0f + 1.0f / 256), 1.0f);
  EXPECT_EQ(RoundToBf16(1.0f + 3.0f / 256), 1.0f + 4.0f / 256);
}

TEST(RmsNorm, ScalesByInverseRootMeanSquare) {
  const std::vector<float> x = {3.0f, -4.0f, 0.0f, 0.0f};  // mean sq = 6.25
  const std::vector<float> scale = {1.0f, 2.0f, 1.0f, 1.0f};
  std::vector<float> y(4);
  RmsNorm(x.data(), 1, 4, scale.data(), 0.0f, y.data());
  EXPECT_FLOAT_EQ(y[0], 1.2f);
  EXPECT_FLOAT_EQ(y[1], -3.2f);
  EXPECT_FLOAT_EQ(y[2], 0.0f);
}

TEST(Softplus, StableForLargeInputs) {
  EXPECT_NEAR(Softplus(0.0), std::log(2.0), 1e-15);
  EXPECT_EQ(Softplus(1000.0), 1000.0);
  EXPECT_NEAR(Softplus(-30.0), std::exp(-30.0), 1e-25);
}

TEST(Rotary, RotatesPairsInsideTheSliceOnly) {
  // rotary_dims 4: pairs (0, 2) and (1, 3); entries 4.. pass through.
  float cos[2], sin[2];
  RotaryAngles(3, 4, 10000.0, cos, sin);
  EXPECT_NEAR(cos[0], std::cos(3.0), 1e-7);
  EXPECT_NEAR(sin[1], std::sin(3.0 * std::pow(10000.0, -0.5)), 1e-7);
  float x[6] = {1, 2, 3, 4, 5, 6};
  ApplyRotary(x, 4, cos, sin);
  EXPECT_NEAR(x[0], 1 * cos[0] - 3 * sin[0], 1e-6);
  EXPECT_NEAR(x[2], 3 * cos[0] + 1 * sin[0], 1e-6);
  EXPECT_NEAR(x[1], 2 * cos[1] - 4 * sin[1], 1e-6);
  EXPECT_NEAR(x[3], 4 * cos[1] + 2 * sin[1], 1e-6);
  EXPECT_EQ(x[4], 5);
  EXPECT_EQ(x[5], 6);
  // Position 0 is the identity.
  RotaryAngles(0, 4, 10000.0, cos, sin);
  float z[4] = {1, 2, 3, 4};
  ApplyRotary(z, 4, cos, sin);
  EXPECT_EQ(z[0], 1);
  EXPECT_EQ(z[3], 4);
}

TEST(Softmax, NormalizesAndArgMaxTakesLowestTie) {
  float x[3] = {1.0f, 2.0f, 3.0f};
  SoftmaxInPlace(x, 3);
  EXPECT_NEAR(x[0] + x[1] + x[2], 1.0f, 1e-6);
  EXPECT_NEAR(x[2] / x[1], std::exp(1.0), 1e-5);
  const float ties[4] = {0.5f, 2.0f, 2.0f, 1.0f};
  EXPECT_EQ(ArgMax(ties, 4), 1);
}

// A NaN score poisons its row wherever it stands, rather than vanishing.
TEST(Softmax, ANanAnywhereMakesTheRowNan) {
  for (int at = 0; at < 3; ++at) {
    float x[3] = {1.0f, 2.0f, 3.0f};
    x[at] = std::nanf("");
    SoftmaxInPlace(x, 3);
    for (float v : x) EXPECT_TRUE(std::isnan(v)) << "NaN at " << at;
  }
}

}  // namespace
}  // namespace slabserve::cpu
