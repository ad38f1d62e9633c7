// A linear layer's weight [n, k] packed once for the CPU products, in the
// precision the model was loaded with: F32 (MatMulPacked) or BF16 weights
// and activations with F32 sums (MatMulBf16). Every model's projections go
// through it, so one option switches a whole model.
#ifndef SLABSERVE_KERNELS_CPU_PROJECTION_H_
#define SLABSERVE_KERNELS_CPU_PROJECTION_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_bf16.h"

namespace slabserve::cpu {

enum class WeightPrecision { kF32, kBf16 };

// "f32" or "bf16"; anything else is INVALID_ARGUMENT naming the value.
absl::StatusOr<WeightPrecision> ParseWeightPrecision(const std::string& name);
const char* WeightPrecisionName(WeightPrecision precision);

class Projection {
 public:
  Projection() = default;
  Projection(const float* w, int n, int k, WeightPrecision precision);

  int n() const {
    return precision_ == WeightPrecision::kBf16 ? bf16_.n() : f32_.n();
  }
  int k() const {
    return precision_ == WeightPrecision::kBf16 ? bf16_.k() : f32_.k();
  }
  WeightPrecision precision() const { return precision_; }

  // y = x·Wᵀ (+ bias): x [rows, k], y [rows, n], bias [n] or null.
  void Apply(const float* x, int rows, const float* bias, float* y) const;
  // For an input written row by row: Reserve(rows, prepared) before the
  // rows are written, Prepare(r, x_r, prepared) as row r is written (BF16:
  // rounds it while it is in cache; F32: nothing), then ApplyPrepared. The
  // result is Apply's, bit for bit; in BF16 ApplyPrepared reads only
  // `prepared`, not x. Rows of `prepared` are rounded for this projection's
  // depth only.
  void Reserve(int rows, Bf16Rows& prepared) const;
  void Prepare(int r, const float* x_r, Bf16Rows& prepared) const {
    if (precision_ == WeightPrecision::kBf16) prepared.Round(r, x_r);
  }
  void ApplyPrepared(const float* x, int rows, const float* bias,
                     Bf16Rows& prepared, float* y) const;
  // Rows [begin, end) of ApplyPrepared with strided rows (row r of x at
  // x + r·ldx, of y at y + r·ldy), run by a caller that splits rows over
  // threads itself: BF16 on the calling thread (MatMulBf16RowBlock), F32 as
  // MatMulPackedStrided. begin, and end unless it is the input's last row,
  // must be multiples of row_alignment().
  void ApplyPreparedRows(const float* x, size_t ldx, int begin, int end,
                         const float* bias, Bf16Rows& prepared, float* y,
                         size_t ldy) const;
  int row_alignment() const {
    return precision_ == WeightPrecision::kBf16 ? kBf16RowBlock : 1;
  }
  // Row j of W (k floats, as stored: rounded in BF16), e.g. for a tied
  // embedding.
  void Row(int j, float* out) const;

 private:
  WeightPrecision precision_ = WeightPrecision::kF32;
  PackedWeight f32_;
  PackedWeightBf16 bf16_;
};

}  // namespace slabserve::cpu

#endif  // SLABSERVE_KERNELS_CPU_PROJECTION_H_
