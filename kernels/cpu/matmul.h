// Dense products for x·Wᵀ with W row-major [n, k] (PyTorch Linear layout).
//
// Batch invariance: every output element is one chain of fused (or, without
// FMA, separate) multiply-adds over i = 0, 1, ..., k-1 in that order, plus the
// bias at the end, whatever the number of rows, the tiling or the thread
// split. A sequence's results therefore do not depend on who else is in the
// batch. (Where the CPU has AVX-512, FMA builds use it; its fused
// multiply-adds round exactly like AVX2's, so results are the same.)
#ifndef SLABSERVE_KERNELS_CPU_MATMUL_H_
#define SLABSERVE_KERNELS_CPU_MATMUL_H_

#include <cstddef>
#include <memory>

#include "kernels/cpu/aligned_array.h"

namespace slabserve::cpu {

// W [n, k] rearranged once (at model load) for MatMulPacked: panels of
// kPanelWidth consecutive rows of W, each stored k-major
// ([n / kPanelWidth][k][kPanelWidth], the last panel zero-padded), so the
// product streams W contiguously and cache-line aligned.
class PackedWeight {
 public:
  static constexpr int kPanelWidth = 16;

  PackedWeight() = default;
  // Copies w [n, k] (row stride k); n, k >= 0.
  PackedWeight(const float* w, int n, int k);

  int n() const { return n_; }
  int k() const { return k_; }
  bool empty() const { return n_ == 0; }
  // Row j of W (k floats) into out, e.g. for an embedding tied to an LM head.
  void Row(int j, float* out) const;

  // Panel p: k × kPanelWidth floats.
  const float* panel(int p) const {
    return data_.get() + static_cast<size_t>(p) * k_ * kPanelWidth;
  }

 private:
  int n_ = 0;
  int k_ = 0;
  AlignedArray<float> data_;
};

// y[r, j] = bias[j] + Σ_i x[r, i] · W[j, i] for r < rows, j < w.n().
// x: [rows, w.k()] (row stride k); y: [rows, n] (row stride n); bias may be
// null.
void MatMulPacked(const float* x, int rows, const PackedWeight& w,
                  const float* bias, float* y);

// The same product on strided rows: row r of x at x + r·ldx (ldx >= w.k()),
// row r of y at y + r·ldy (ldy >= w.n()); e.g. one head's slice of wider
// rows. Every output is computed exactly as MatMulPacked computes it.
void MatMulPackedStrided(const float* x, size_t ldx, int rows,
                         const PackedWeight& w, const float* bias, float* y,
                         size_t ldy);

// The tiles MatMulPacked runs on this CPU: "AVX-512", "AVX2+FMA" or
// "generic" (for benchmark reports).
const char* MatMulInstructionSet();

// A dot product in a fixed order (8 interleaved partial sums over k, reduced
// in a fixed tree): deterministic, but not the order of MatMulPacked.
float Dot(const float* a, const float* b, int k);

}  // namespace slabserve::cpu

#endif  // SLABSERVE_KERNELS_CPU_MATMUL_H_
