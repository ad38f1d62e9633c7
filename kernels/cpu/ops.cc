#include "kernels/cpu/ops.h"

#include <cmath>
#include <cstring>

#include "kernels/cpu/vector_math.h"
#include "kernels/math/rows.h"

namespace slabserve::cpu {

float RoundToBf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  if (std::isnan(x)) {
    bits = (bits | 0x00400000u) & 0xFFFF0000u;  // keep it a (quiet) NaN
  } else {
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    bits &= 0xFFFF0000u;
  }
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

void RmsNorm(const float* x, int64_t rows, int dim, const float* scale,
             float eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    math::RmsNormRow(x + r * dim, dim, scale, eps, y + r * dim);
  }
}

double Softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }

void RotaryAngles(int64_t position, int rotary_dims, double theta, float* cos,
                  float* sin) {
  const int half = rotary_dims / 2;
  for (int j = 0; j < half; ++j) {
    // Angles in double: positions grow without bound, and f32 angles lose
    // digits long before f32 sin/cos do.
    const double angle =
        static_cast<double>(position) * std::pow(theta, -2.0 * j / rotary_dims);
    cos[j] = static_cast<float>(std::cos(angle));
    sin[j] = static_cast<float>(std::sin(angle));
  }
}

void ApplyRotary(float* x, int rotary_dims, const float* cos,
                 const float* sin) {
  const int half = rotary_dims / 2;
  for (int j = 0; j < half; ++j) {
    const float a = x[j];
    const float b = x[j + half];
    x[j] = a * cos[j] - b * sin[j];
    x[j + half] = b * cos[j] + a * sin[j];
  }
}

void SoftmaxInPlace(float* x, int n) {
  if (n <= 0) return;
  // Not std::fmax: a library call per entry here. A NaN score makes the
  // whole row NaN either way (it reaches the sum).
  float max = x[0];
  for (int i = 1; i < n; ++i) max = x[i] > max ? x[i] : max;
  for (int i = 0; i < n; ++i) x[i] -= max;
  Exp(x, n, x);
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) sum += x[i];
  const float inv = 1.0f / sum;
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

int ArgMax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;
  }
  return best;
}

}  // namespace slabserve::cpu
