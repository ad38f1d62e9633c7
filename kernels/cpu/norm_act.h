// Model-agnostic row-wise kernels: LayerNorm (SiLU: vector_math.h). Each
// output is computed from its own row in a fixed order, so results never
// depend on the other rows of a batch; callers parallelize over rows.
#ifndef SLABSERVE_KERNELS_CPU_NORM_ACT_H_
#define SLABSERVE_KERNELS_CPU_NORM_ACT_H_

#include <cstdint>

namespace slabserve::cpu {

// y[r] = (x[r] − mean) / sqrt(var + eps) · weight + bias for rows of width
// `dim`, with the biased variance (divide by dim); x and y may alias.
void LayerNorm(const float* x, int64_t rows, int dim, const float* weight,
               const float* bias, float eps, float* y);

}  // namespace slabserve::cpu

#endif  // SLABSERVE_KERNELS_CPU_NORM_ACT_H_
