// Attention arithmetic shared by the full-attention and B'MOJO-F layers:
// query/key projection with per-head RMSNorm and RoPE, and a softmax-weighted
// sum accumulated over key streams with a running maximum.
#ifndef SLABSERVE_ENGINE_MODELS_BMOJO_ATTENTION_H_
#define SLABSERVE_ENGINE_MODELS_BMOJO_ATTENTION_H_

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/models/bmojo_layers.h"
#include "kernels/cpu/vector_math.h"

namespace slabserve::bmojo {

// Keys scored per tile: the scores of one tile are exponentiated together.
constexpr int kKeyTile = 32;

// q·k over n floats: 8 lanes of partial sums, then a fixed tree, then the
// tail in order; inline, since heads are short and scored per key.
inline float HeadDot(const float* q, const float* k, int n) {
  typedef float Lanes __attribute__((vector_size(32)));
  Lanes sum = {};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    Lanes a, b;
    std::memcpy(&a, q + i, sizeof(a));
    std::memcpy(&b, k + i, sizeof(b));
    sum += a * b;
  }
  float total = ((sum[0] + sum[4]) + (sum[1] + sum[5])) +
                ((sum[2] + sum[6]) + (sum[3] + sum[7]));
  for (; i < n; ++i) total += q[i] * k[i];
  return total;
}

// Per-head RMSNorm (`weight`, [D]) then RoPE at each row's position, in
// place, for `heads` heads of rows of `width` = heads·D floats.
void NormAndRope(const BmojoConfig& config, const RaggedBatch& plan,
                 const std::vector<float>& weight, int heads, float* x);

// Σ softmax(s·q·k_j)·v_j over every key of every stream added, as one
// softmax: the running maximum rescales what was summed before it grows.
// Keys are visited in the order added, in tiles of kKeyTile, so the result
// depends only on that order. Scores are never exponentiated raw.
class SoftmaxSum {
 public:
  // `out` receives dim floats; `scores` is scratch of kKeyTile floats.
  SoftmaxSum(const float* q, int dim, float scale, float* out, float* scores)
      : q_(q), dim_(dim), scale_(scale), out_(out), scores_(scores) {
    std::fill(out_, out_ + dim_, 0.0f);
  }

  // Adds `count` keys; at(j, &key, &value) gives the j-th.
  template <typename At>
  void Add(int count, const At& at) {
    const float* key;
    const float* value;
    for (int begin = 0; begin < count; begin += kKeyTile) {
      const int n = std::min(kKeyTile, count - begin);
      float tile_max = -std::numeric_limits<float>::infinity();
      for (int j = 0; j < n; ++j) {
        at(begin + j, &key, &value);
        scores_[j] = HeadDot(q_, key, dim_) * scale_;
        tile_max = std::max(tile_max, scores_[j]);
      }
      if (tile_max > max_) {
        float factor = max_ - tile_max;  // −inf on the first tile: zero
        cpu::Exp(&factor, 1, &factor);
        sum_ *= factor;
        for (int d = 0; d < dim_; ++d) out_[d] *= factor;
        max_ = tile_max;
      }
      for (int j = 0; j < n; ++j) scores_[j] -= max_;
      cpu::Exp(scores_, n, scores_);
      float* __restrict out = out_;
      for (int j = 0; j < n; ++j) {
        at(begin + j, &key, &value);
        const float* __restrict v = value;
        const float p = scores_[j];
        sum_ += p;
        for (int d = 0; d < dim_; ++d) out[d] += p * v[d];
      }
    }
  }

  // Divides by the softmax denominator (at least one key was added).
  void Finish() {
    const float inv = 1.0f / sum_;
    for (int d = 0; d < dim_; ++d) out_[d] *= inv;
  }

 private:
  const float* q_;
  int dim_;
  float scale_;
  float* out_;
  float* scores_;
  float max_ = -std::numeric_limits<float>::infinity();
  float sum_ = 0.0f;
};

}  // namespace slabserve::bmojo

#endif  // SLABSERVE_ENGINE_MODELS_BMOJO_ATTENTION_H_
