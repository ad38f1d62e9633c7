// Replays sequences fed in chunks of random lengths through the shared
// index arithmetic (as the CUDA kernels use it) and checks every conv input
// and every attention key against the sequence's full history.
#include "kernels/math/ragged.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace slabserve::math {
namespace {

TEST(RaggedTest, ConvInputsAndTailsMatchTheFullHistory) {
  const int K = 4;
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    // Position p's input is p + 1; the sequence starts with a zero tail.
    std::vector<float> tail(K - 1, 0.0f);
    int t0 = 0;
    while (t0 < 60) {
      const int length = 1 + static_cast<int>(rng() % 9);
      std::vector<float> chunk(length);
      for (int j = 0; j < length; ++j)
        chunk[j] = static_cast<float>(t0 + j + 1);
      for (int j = 0; j < length; ++j) {
        for (int back = 0; back < K; ++back) {
          const RowSource s = ConvInputSource(j, back, K);
          const float got = s.in_chunk ? chunk[s.row] : tail[s.row];
          const int pos = t0 + j - back;
          ASSERT_EQ(got, pos >= 0 ? pos + 1 : 0)
              << t0 << " " << j << " " << back;
        }
      }
      std::vector<float> next(K - 1);
      for (int r = 0; r < K - 1; ++r) {
        const RowSource s = NewTailSource(r, length, K);
        next[r] = s.in_chunk ? chunk[s.row] : tail[s.row];
      }
      tail = next;
      t0 += length;
      for (int r = 0; r < K - 1; ++r) {
        const int pos = t0 - (K - 1) + r;
        ASSERT_EQ(tail[r], pos >= 0 ? pos + 1 : 0);
      }
    }
  }
}

TEST(RaggedTest, AttentionKeysAndRingMatchTheWindow) {
  const int W = 5;
  std::mt19937 rng(8);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<int> ring(W, -1);  // the position each slot holds
    int t0 = 0;
    while (t0 < 40) {
      const int length = 1 + static_cast<int>(rng() % 12);
      for (int t = t0; t < t0 + length; ++t) {
        std::vector<int> seen;
        for (int pos = FirstKeyPosition(t, W); pos <= t; ++pos) {
          const RowSource s = KeySource(pos, t0, W);
          seen.push_back(s.in_chunk ? t0 + s.row : ring[s.row]);
        }
        ASSERT_EQ(static_cast<int>(seen.size()), t + 1 < W ? t + 1 : W);
        for (size_t i = 0; i < seen.size(); ++i) {
          ASSERT_EQ(seen[i], FirstKeyPosition(t, W) + static_cast<int>(i));
        }
      }
      for (int pos = FirstRingWrite(t0, length, W); pos < t0 + length; ++pos) {
        ring[pos % W] = pos;
      }
      t0 += length;
      for (int pos = FirstKeyPosition(t0 - 1, W); pos < t0; ++pos) {
        ASSERT_EQ(ring[pos % W], pos);
      }
    }
  }
}

}  // namespace
}  // namespace slabserve::math
