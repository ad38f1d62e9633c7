#include "kernels/cpu/norm_act.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace slabserve::cpu {
namespace {

TEST(LayerNormTest, MatchesDefinitionWithBiasedVariance) {
  const std::vector<float> x = {1.0f,  2.0f, 4.0f, 9.0f,
                                -3.0f, 0.5f, 0.0f, 7.0f};
  const std::vector<float> weight = {0.5f, 2.0f, -1.0f, 1.5f};
  const std::vector<float> bias = {0.1f, -0.2f, 0.3f, 0.0f};
  const float eps = 1e-5f;
  std::vector<float> y(x.size());
  LayerNorm(x.data(), 2, 4, weight.data(), bias.data(), eps, y.data());
  for (int r = 0; r < 2; ++r) {
    double mean = 0, var = 0;
    for (int i = 0; i < 4; ++i) mean += x[r * 4 + i] / 4.0;
    for (int i = 0; i < 4; ++i) {
      var += (x[r * 4 + i] - mean) * (x[r * 4 + i] - mean) / 4.0;
    }
    for (int i = 0; i < 4; ++i) {
      const double want =
          (x[r * 4 + i] - mean) / std::sqrt(var + eps) * weight[i] + bias[i];
      EXPECT_NEAR(y[r * 4 + i], want, 1e-5) << "row " << r << " col " << i;
    }
  }
}

TEST(LayerNormTest, InPlaceEqualsOutOfPlace) {
  std::vector<float> x = {3.0f, -1.0f, 2.5f, 0.25f};
  const std::vector<float> weight(4, 1.0f), bias(4, 0.0f);
  std::vector<float> y(4);
  LayerNorm(x.data(), 1, 4, weight.data(), bias.data(), 1e-5f, y.data());
  LayerNorm(x.data(), 1, 4, weight.data(), bias.data(), 1e-5f, x.data());
  EXPECT_EQ(x, y);
}

}  // namespace
}  // namespace slabserve::cpu
