#include "kernels/cpu/norm_act.h"

#include <cmath>

namespace slabserve::cpu {

void LayerNorm(const float* x, int64_t rows, int dim, const float* weight,
               const float* bias, float eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    // Statistics in double: cheap next to the GEMMs, and robust for wide rows.
    double sum = 0.0;
    for (int i = 0; i < dim; ++i) sum += xr[i];
    const double mean = sum / dim;
    double squares = 0.0;
    for (int i = 0; i < dim; ++i) {
      const double d = xr[i] - mean;
      squares += d * d;
    }
    const double inv_std = 1.0 / std::sqrt(squares / dim + eps);
    for (int i = 0; i < dim; ++i) {
      yr[i] =
          static_cast<float>((xr[i] - mean) * inv_std) * weight[i] + bias[i];
    }
  }
}

}  // namespace slabserve::cpu
