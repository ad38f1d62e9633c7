// BF16 products for x·Wᵀ: W stored as bfloat16, each row of x rounded to
// bfloat16 (nearest, ties to even: math::Bf16Bits, as the CUDA backend
// rounds), products summed in F32. Half the weight bytes of MatMulPacked,
// so small-batch decode, which streams every weight once per step, runs up
// to twice as fast; CPUs with AVX-512-BF16 or AMX also multiply faster.
//
// Batch invariance: an output element depends only on its own row of x, W
// and the instruction set (one per process, chosen by the CPU's features),
// never on the other rows, the tiling or the thread split. The instruction
// sets that convert to F32 (generic, AVX2, AVX-512) give identical bits:
// each bf16 product is exact in F32, and the sums run over k in order. The
// dot-product instructions (AVX-512-BF16, AMX) sum pairs in their own way
// (AMX also starts its sums at the bias, so that whole tiles store straight
// into y), so their results may differ from those in the last bits.
#ifndef SLABSERVE_KERNELS_CPU_MATMUL_BF16_H_
#define SLABSERVE_KERNELS_CPU_MATMUL_BF16_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/cpu/aligned_array.h"

namespace slabserve::cpu {

enum class Bf16Isa { kGeneric, kAvx2, kAvx512, kAvx512Bf16, kAmx };

// "generic", "AVX2", "AVX-512", "AVX-512-BF16" or "AMX-BF16".
const char* Bf16IsaName(Bf16Isa isa);
// Whether this build and CPU can run `isa` (AMX also needs the kernel's
// permission for tile data, requested once here).
bool Bf16IsaSupported(Bf16Isa isa);
// The fastest supported instruction set.
Bf16Isa BestBf16Isa();
// The set MatMulBf16 uses unless told: BestBf16Isa() unless SetBf16Isa
// chose another (benchmarks and tests comparing sets; set it before
// products run, not while they do).
Bf16Isa ActiveBf16Isa();
// Fails (returns false, changes nothing) if `isa` is not supported.
bool SetBf16Isa(Bf16Isa isa);

// W [n, k] rounded to bfloat16 and rearranged once (at model load): panels
// of kPanelWidth rows of W; within a panel, for each pair of steps
// (k = 2i, 2i + 1) one 32-bit word per row holding W[j][2i] in its low half
// and W[j][2i + 1] in its high half (the layout AMX and AVX-512-BF16 read).
// k is padded with zeros to a multiple of kDepthBlock, n to a whole panel.
class PackedWeightBf16 {
 public:
  static constexpr int kPanelWidth = 16;
  static constexpr int kDepthBlock = 32;

  PackedWeightBf16() = default;
  // Rounds and copies w [n, k] (row stride k); n, k >= 0.
  PackedWeightBf16(const float* w, int n, int k);

  int n() const { return n_; }
  int k() const { return k_; }
  // Word pairs per panel row: padded k / 2.
  int pairs() const { return pairs_; }
  bool empty() const { return n_ == 0; }
  // Row j of W as F32 (the rounded values), e.g. for a tied embedding.
  void Row(int j, float* out) const;
  // Panel p: pairs() × kPanelWidth words.
  const uint32_t* panel(int p) const {
    return data_.get() + static_cast<size_t>(p) * pairs_ * kPanelWidth;
  }

 private:
  int n_ = 0;
  int k_ = 0;
  int pairs_ = 0;
  AlignedArray<uint32_t> data_;
};

// Rows of x rounded to bf16 in the layout the products read: each row padded
// with zeros to the weight's padded depth, rows padded to a multiple of 16
// (AMX tiles). Filled row by row, so the loop that produces the rows can
// round each while it is in cache instead of a pass of its own. Grow-only:
// steady-state steps allocate nothing.
class Bf16Rows {
 public:
  // Room for `rows` rows for products with `w`'s depth; the contents are
  // undefined until Round() writes them. Not concurrent with Round().
  void Reserve(int rows, const PackedWeightBf16& w);
  // Row r = x[0, k) rounded (math::Bf16Bits), then its padding zeroed. Rows
  // may be rounded concurrently.
  void Round(int r, const float* x);
  // The rows, after zeroing the padding rows from `rows` up to a multiple of
  // 16.
  const uint16_t* Padded(int rows);
  // Row stride in 32-bit words: the weight's pairs().
  int pairs() const { return static_cast<int>(width_ / 2); }
  // Whether Reserve() made room for `rows` rows of `w`'s depth: products
  // check it, since rows rounded for one weight often feed several.
  bool Fits(int rows, const PackedWeightBf16& w) const;

 private:
  std::vector<uint16_t> data_;
  int k_ = 0;
  size_t width_ = 0;  // padded depth
};

// y[r, j] = bias[j] + Σ_i bf16(x[r, i]) · W[j, i] for r < rows, j < w.n().
// x: [rows, w.k()]; y: [rows, n]; bias (F32, not rounded) may be null.
// `isa` must be supported. Reuses a per-thread buffer for the rounded rows,
// which grows to the largest product a thread has run and is then kept.
void MatMulBf16(const float* x, int rows, const PackedWeightBf16& w,
                const float* bias, float* y, Bf16Isa isa = ActiveBf16Isa());
// The same for rows already rounded: x.Round() called for every r < rows
// since x.Reserve(≥ rows, w).
void MatMulBf16(Bf16Rows& x, int rows, const PackedWeightBf16& w,
                const float* bias, float* y, Bf16Isa isa = ActiveBf16Isa());
// Rows [begin, end) of that product on the calling thread, row r of y at
// y + r·ldy (ldy >= w.n()): for callers that split rows over threads
// themselves, e.g. a per-row loop making one head's small product. The same
// bits as MatMulBf16. Tiles read rows in blocks of kBf16RowBlock: begin must be
// a multiple of it, and rows from end up to the next multiple are zeroed
// here, so end must be one too unless no caller rounds rows past it.
constexpr int kBf16RowBlock = 16;
void MatMulBf16RowBlock(Bf16Rows& x, int begin, int end,
                        const PackedWeightBf16& w, const float* bias, float* y,
                        size_t ldy, Bf16Isa isa = ActiveBf16Isa());

}  // namespace slabserve::cpu

#endif  // SLABSERVE_KERNELS_CPU_MATMUL_BF16_H_
