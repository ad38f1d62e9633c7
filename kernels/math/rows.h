// Row normalizations split into a reduction and a per-element formula: the
// CPU sums a row sequentially, a CUDA block sums it as a tree, both in
// double, and both then apply the same per-element formula below. In double
// the sum order changes the statistic by far less than one f32 ulp, so the
// results match the CPU engine's to an ulp or two.
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

// Sequential host versions of whole rows (the CPU engine's order).
inline void RmsNormRow(const float* x, int dim, const float* scale, float eps,
                       float* y) {
  double sum_squares = 0.0;
  for (int i = 0; i < dim; ++i) sum_squares += static_cast<double>(x[i]) * x[i];
  const float inverse = RmsNormInverse(sum_squares, dim, eps);
  for (int i = 0; i < dim; ++i) y[i] = RmsNormElement(x[i], inverse, scale[i]);
}

inline void LayerNormRow(const float* x, int dim, const float* weight,
                         const float* bias, float eps, float* y) {
  double sum = 0.0;
  for (int i = 0; i < dim; ++i) sum += x[i];
  const double mean = sum / dim;
  double squares = 0.0;
  for (int i = 0; i < dim; ++i) {
    const double d = x[i] - mean;
    squares += d * d;
  }
  const double inverse_std = LayerNormInverseStd(squares, dim, eps);
  for (int i = 0; i < dim; ++i) {
    y[i] = LayerNormElement(x[i], mean, inverse_std, weight[i], bias[i]);
  }
}

}  // namespace slabserve::math

#endif  // SLABSERVE_KERNELS_MATH_ROWS_H_
