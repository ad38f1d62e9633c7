#include "kernels/cpu/ops.h"

#include <cmath>
#include <cstring>

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
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    // Double accumulation keeps the statistic exact to f32 at any width.
    double sumsq = 0.0;
    for (int i = 0; i < dim; ++i) sumsq += static_cast<double>(xr[i]) * xr[i];
    const float inv = static_cast<float>(
        1.0 / std::sqrt(sumsq / dim + static_cast<double>(eps)));
    for (int i = 0; i < dim; ++i) yr[i] = xr[i] * inv * scale[i];
  }
}

float GeluTanh(float z) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * z *
         (1.0f + std::tanh(kSqrt2OverPi * (z + 0.044715f * z * z * z)));
}

void GeluTanhInPlace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = GeluTanh(x[i]);
}

void GeluTanhMul(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = GeluTanh(gate[i]) * up[i];
}

float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

double Softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }

void SoftCap(float* x, int64_t n, float cap) {
  if (cap <= 0.0f) return;
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

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
  float max = x[0];
  for (int i = 1; i < n; ++i) max = std::fmax(max, x[i]);
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
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
