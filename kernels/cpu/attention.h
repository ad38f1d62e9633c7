// One token's attention for the query heads that share one key/value head
// (grouped-query attention). Keys are scored eight at a time, their eight
// lane sums reduced together, and each output block stays in registers over
// all keys: per-key dot products cost more in reductions than in arithmetic.
#ifndef SLABSERVE_KERNELS_CPU_ATTENTION_H_
#define SLABSERVE_KERNELS_CPU_ATTENTION_H_

#include <cstddef>

namespace slabserve::cpu {

// out[h] = Σ_j softmax_j(scale · q[h]·k_j) · v_j for h < heads, where
// k_j = keys[j] + column and v_j = values[j] + column, each `dim` floats.
// q and out hold `heads` rows of `dim` floats; `scores` is scratch of n
// floats. Each q·k is Dot's arithmetic (matmul.h), the softmax is
// SoftmaxInPlace's, and each output element sums its keys in index order, so
// a result depends only on its own query, keys and values.
void AttendHeads(const float* q, int heads, int dim, const float* const* keys,
                 const float* const* values, size_t column, int n, float scale,
                 float* scores, float* out);

}  // namespace slabserve::cpu

#endif  // SLABSERVE_KERNELS_CPU_ATTENTION_H_
