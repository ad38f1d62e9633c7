#include "kernels/cpu/projection.h"

#include "absl/strings/str_cat.h"

namespace slabserve::cpu {

absl::StatusOr<WeightPrecision> ParseWeightPrecision(const std::string& name) {
  if (name == "f32") return WeightPrecision::kF32;
  if (name == "bf16") return WeightPrecision::kBf16;
  return absl::InvalidArgumentError(absl::StrCat(
      "weight precision \"", name, "\" is not supported (f32 or bf16)"));
}

const char* WeightPrecisionName(WeightPrecision precision) {
  return precision == WeightPrecision::kBf16 ? "bf16" : "f32";
}

Projection::Projection(const float* w, int n, int k, WeightPrecision precision)
    : precision_(precision) {
  if (precision == WeightPrecision::kBf16) {
    bf16_ = PackedWeightBf16(w, n, k);
  } else {
    f32_ = PackedWeight(w, n, k);
  }
}

void Projection::Apply(const float* x, int rows, const float* bias,
                       float* y) const {
  if (precision_ == WeightPrecision::kBf16) {
    MatMulBf16(x, rows, bf16_, bias, y);
  } else {
    MatMulPacked(x, rows, f32_, bias, y);
  }
}

void Projection::Reserve(int rows, Bf16Rows& prepared) const {
  if (precision_ == WeightPrecision::kBf16) prepared.Reserve(rows, bf16_);
}

void Projection::ApplyPrepared(const float* x, int rows, const float* bias,
                               Bf16Rows& prepared, float* y) const {
  if (precision_ == WeightPrecision::kBf16) {
    MatMulBf16(prepared, rows, bf16_, bias, y);
  } else {
    MatMulPacked(x, rows, f32_, bias, y);
  }
}

void Projection::ApplyPreparedRows(const float* x, size_t ldx, int begin,
                                   int end, const float* bias,
                                   Bf16Rows& prepared, float* y,
                                   size_t ldy) const {
  if (precision_ == WeightPrecision::kBf16) {
    MatMulBf16RowBlock(prepared, begin, end, bf16_, bias, y, ldy);
  } else {
    MatMulPackedStrided(x + begin * ldx, ldx, end - begin, f32_, bias,
                        y + begin * ldy, ldy);
  }
}

void Projection::Row(int j, float* out) const {
  if (precision_ == WeightPrecision::kBf16) {
    bf16_.Row(j, out);
  } else {
    f32_.Row(j, out);
  }
}

}  // namespace slabserve::cpu
