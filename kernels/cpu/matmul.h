// Dense products for x·Wᵀ with W row-major [n, k] (PyTorch Linear layout).
//
// Batch invariance: every output element is one dot product computed in a
// fixed order (8 interleaved partial sums over k, reduced in a fixed tree),
// whatever the number of rows, the tiling or the thread split. A sequence's
// results therefore do not depend on who else is in the batch.
#ifndef SLABSERVE_KERNELS_CPU_MATMUL_H_
#define SLABSERVE_KERNELS_CPU_MATMUL_H_

namespace slabserve::cpu {

// y[r, j] = bias[j] + Σ_i x[r, i] · w[j, i] for r < rows, j < n.
// x: [rows, k] (row stride k); y: [rows, n] (row stride n); bias may be null.
void MatMulTransposed(const float* x, int rows, int k, const float* w, int n,
                      const float* bias, float* y);

// The same dot product as MatMulTransposed, for one pair of vectors.
float Dot(const float* a, const float* b, int k);

}  // namespace slabserve::cpu

#endif  // SLABSERVE_KERNELS_CPU_MATMUL_H_
