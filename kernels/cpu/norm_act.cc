#include "kernels/cpu/norm_act.h"

#include "kernels/math/rows.h"

namespace slabserve::cpu {

void LayerNorm(const float* x, int64_t rows, int dim, const float* weight,
               const float* bias, float eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    math::LayerNormRow(x + r * dim, dim, weight, bias, eps, y + r * dim);
  }
}

}  // namespace slabserve::cpu
