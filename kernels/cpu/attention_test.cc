#include "kernels/cpu/attention.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"

namespace slabserve::cpu {
namespace {

// The definition, one key and one output element at a time.
void AttendOneByOne(const float* q, int heads, int dim,
                    const float* const* keys, const float* const* values,
                    size_t column, int n, float scale, float* out) {
  std::vector<float> p(n);
  for (int h = 0; h < heads; ++h) {
    const float* qh = q + h * dim;
    for (int j = 0; j < n; ++j) p[j] = Dot(qh, keys[j] + column, dim) * scale;
    SoftmaxInPlace(p.data(), n);
    float* oh = out + h * dim;
    for (int d = 0; d < dim; ++d) oh[d] = 0.0f;
    for (int j = 0; j < n; ++j) {
      for (int d = 0; d < dim; ++d) oh[d] += p[j] * values[j][column + d];
    }
  }
}

struct Case {
  int heads, dim, n;
};

TEST(AttendHeads, BitwiseTheDefinitionForEveryShape) {
  const Case cases[] = {{1, 8, 1},   {1, 12, 7},   {3, 64, 8}, {8, 64, 64},
                        {2, 72, 9},  {4, 128, 17}, {2, 5, 3},  {1, 256, 40},
                        {8, 64, 63}, {1, 16, 16}};
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << c.heads << " heads, dim " << c.dim
                                      << ", " << c.n << " keys");
    // Rows wider than one head, read at a column, as in a KV row.
    const size_t width = 3 * c.dim, column = c.dim;
    std::vector<float> q(c.heads * c.dim), kv(2 * c.n * width);
    for (float& x : q) x = normal(rng);
    for (float& x : kv) x = normal(rng);
    std::vector<const float*> keys(c.n), values(c.n);
    for (int j = 0; j < c.n; ++j) {
      // Out of order in memory, as ring slots are.
      const int slot = (j * 5 + 3) % c.n;
      keys[j] = &kv[2 * slot * width];
      values[j] = &kv[(2 * slot + 1) * width];
    }
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.dim));
    std::vector<float> want(q.size()), got(q.size()), scores(c.n);
    AttendOneByOne(q.data(), c.heads, c.dim, keys.data(), values.data(), column,
                   c.n, scale, want.data());
    AttendHeads(q.data(), c.heads, c.dim, keys.data(), values.data(), column,
                c.n, scale, scores.data(), got.data());
    EXPECT_EQ(std::memcmp(want.data(), got.data(), sizeof(float) * q.size()),
              0);
  }
}

TEST(AttendHeads, OneKeyReturnsItsValue) {
  const float q[2] = {1.0f, 2.0f}, key[2] = {3.0f, -1.0f};
  const float value[2] = {0.5f, -4.0f};
  const float* keys[1] = {key};
  const float* values[1] = {value};
  float scores[1], out[2];
  AttendHeads(q, 1, 2, keys, values, 0, 1, 1.0f, scores, out);
  EXPECT_EQ(out[0], 0.5f);
  EXPECT_EQ(out[1], -4.0f);
}

TEST(AttendHeads, WeighsKeysBySoftmaxOfScores) {
  // Scores 0 and log 3: weights 1/4 and 3/4.
  const float q[1] = {1.0f};
  const float k0[1] = {0.0f}, k1[1] = {std::log(3.0f)};
  const float v0[1] = {4.0f}, v1[1] = {8.0f};
  const float* keys[2] = {k0, k1};
  const float* values[2] = {v0, v1};
  float scores[2], out[1];
  AttendHeads(q, 1, 1, keys, values, 0, 2, 1.0f, scores, out);
  EXPECT_NEAR(out[0], 7.0f, 1e-5f);
}

}  // namespace
}  // namespace slabserve::cpu
