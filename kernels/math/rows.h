// Row normalizations split into a reduction and a per-element formula: the
// CPU sums a row in 16 interleaved lanes (SumInLanes), a CUDA block sums it
// as a tree, both in double, and both then apply the same per-element
// formula below. In double the sum order changes the statistic by far less
// than one f32 ulp, so the results match the CPU engine's to an ulp or two.
#ifndef SLABSERVE_KERNELS_MATH_ROWS_H_
#define SLABSERVE_KERNELS_MATH_ROWS_H_

#include <math.h>

#include "kernels/math/host_device.h"

namespace slabserve::math {

// RMSNorm: y = x · inv · scale with inv from Σx² (scale is the full
// multiplier, 1 + w for Griffin).
SLAB_HD float RmsNormInverse(double sum_squares, int dim, float eps) {
  return static_cast<float>(1.0 /
                            sqrt(sum_squares / dim + static_cast<double>(eps)));
}

SLAB_HD float RmsNormElement(float x, float inverse, float scale) {
  return x * inverse * scale;
}

// LayerNorm with the biased variance: mean = Σx / dim, then
// inv_std = 1 / sqrt(Σ(x − mean)² / dim + eps).
SLAB_HD double LayerNormInverseStd(double centered_squares, int dim,
                                   float eps) {
  return 1.0 / sqrt(centered_squares / dim + eps);
}

SLAB_HD float LayerNormElement(float x, double mean, double inverse_std,
                               float weight, float bias) {
  return static_cast<float>((x - mean) * inverse_std) * weight + bias;
}

// Σ term(x[i]) in double: element i joins partial sum i % 16, and the 16
// partial sums are added in a fixed tree. The order is fixed by dim alone,
// and, unlike one left-to-right chain, compilers may vectorise it.
template <typename Term>
inline double SumInLanes(const float* x, int dim, Term term) {
  constexpr int kLanes = 16;
  double lane[kLanes] = {};
  const int whole = dim / kLanes * kLanes;
  for (int i = 0; i < whole; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) lane[j] += term(x[i + j]);
  }
  for (int i = whole; i < dim; ++i) lane[i - whole] += term(x[i]);
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int j = 0; j < width; ++j) lane[j] += lane[j + width];
  }
  return lane[0];
}

// Host versions of whole rows (the CPU engine's: kernels/cpu).
inline void RmsNormRow(const float* x, int dim, const float* scale, float eps,
                       float* y) {
  const double sum_squares =
      SumInLanes(x, dim, [](float v) { return static_cast<double>(v) * v; });
  const float inverse = RmsNormInverse(sum_squares, dim, eps);
  for (int i = 0; i < dim; ++i) y[i] = RmsNormElement(x[i], inverse, scale[i]);
}

inline void LayerNormRow(const float* x, int dim, const float* weight,
                         const float* bias, float eps, float* y) {
  const double mean =
      SumInLanes(x, dim, [](float v) { return static_cast<double>(v); }) / dim;
  const double squares = SumInLanes(x, dim, [mean](float v) {
    const double d = v - mean;
    return d * d;
  });
  const double inverse_std = LayerNormInverseStd(squares, dim, eps);
  for (int i = 0; i < dim; ++i) {
    y[i] = LayerNormElement(x[i], mean, inverse_std, weight[i], bias[i]);
  }
}

}  // namespace slabserve::math

#endif  // SLABSERVE_KERNELS_MATH_ROWS_H_
