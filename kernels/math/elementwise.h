// Per-element and per-channel formulas of Griffin, Hawk and SRM, shared by
// the CUDA kernels and the CPU tests that check them against the CPU
// engine (kernels/cpu). Scalar f32 arithmetic through the C math library
// (tanhf, expf, ...): on the host glibc's, on the device CUDA's (within 2
// ulp), while the CPU engine uses its own vector polynomials
// (kernels/cpu/vector_math.h, within 3 ulp), so the two agree to a few ulp,
// not bitwise. Formulas with no transcendental function and the same
// operation order (conv, scan, SRM mixer, RoPE rotation, norm scaling) match
// the CPU engine bitwise on the host; nvcc contracts a·b + c into FMA on the
// device, which changes the last bit.
#ifndef SLABSERVE_KERNELS_MATH_ELEMENTWISE_H_
#define SLABSERVE_KERNELS_MATH_ELEMENTWISE_H_

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/math/host_device.h"

namespace slabserve::math {

SLAB_HD float Sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

SLAB_HD float Silu(float x) { return x / (1.0f + expf(-x)); }

// gelu(z) = 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))).
SLAB_HD float GeluTanh(float z) {
  const float inner = 0.7978845608028654f * (z + 0.044715f * z * z * z);
  return 0.5f * z * (1.0f + tanhf(inner));
}

// Griffin's MLP: gelu(gate) · up.
SLAB_HD float GeGlu(float gate, float up) { return GeluTanh(gate) * up; }

// cap · tanh(x / cap); x itself when cap <= 0 (no cap).
SLAB_HD float SoftCap(float x, float cap) {
  return cap > 0.0f ? cap * tanhf(x / cap) : x;
}

// log(1 + exp(x)) without overflow (as cpu::Softplus).
SLAB_HD double Softplus(double x) { return x > 20.0 ? x : log1p(exp(x)); }

// The RG-LRU's per-channel constant −8·softplus(Λ), computed at load.
SLAB_HD float RgLruLogDecay(float lambda) {
  return static_cast<float>(-8.0 * Softplus(lambda));
}

// One token's scan coefficients for one RG-LRU channel (the scan is
// h = a·h + b, and h = b at a reset): with r = sigmoid(recurrence_gate),
// g = sigmoid(input_gate), log_a = log_decay·r, a = exp(log_a) and
// b = g·x·(reset ? 1 : sqrt(1 − exp(2·log_a))).
struct ScanStep {
  float a;
  float b;
};

SLAB_HD ScanStep RgLruCoefficients(float log_decay, float recurrence_gate,
                                   float input_gate, float x, bool reset) {
  const float log_a = log_decay * Sigmoid(recurrence_gate);
  const float gated = Sigmoid(input_gate) * x;
  ScanStep step;
  step.a = expf(log_a);
  step.b = reset ? gated : sqrtf(-expm1f(log_a + log_a)) * gated;
  return step;
}

// The next RG-LRU state (f32).
SLAB_HD float RgLruUpdate(float h, ScanStep step, bool reset) {
  return reset ? step.b : step.a * h + step.b;
}

// The widest depthwise conv the kernels support (Griffin's K is 4).
constexpr int kMaxConvWidth = 8;

// Causal depthwise conv of one channel: bias + Σ_k taps[k·stride]·window[k],
// window[k] the input K−1−k tokens back (window[K−1] the current token),
// summed in tap order as the CPU engine does.
SLAB_HD float CausalConvChannel(const float* taps, int stride, int width,
                                float bias, const float* window) {
  float c = bias;
  for (int k = 0; k < width; ++k) c += taps[k * stride] * window[k];
  return c;
}

// SRM token mixing for one channel of one head at one position: the state
// advances and the head's output is returned. Column-repeat heads weight on
// the way out, row-repeat heads on the way in.
SLAB_HD float SrmColumnStep(float& state, float p, float decay, float weight,
                            float bias) {
  state = p + decay * state;
  return weight * state + bias;
}

SLAB_HD float SrmRowStep(float& state, float p, float decay, float weight,
                         float bias) {
  state = weight * p + decay * state;
  return state + bias;
}

// cos and sin of RoPE's angle θ_j = position · theta^(−2j/rotary_dims), in
// double before rounding (as cpu::RotaryAngles).
SLAB_HD void RotaryAngle(int64_t position, int j, int rotary_dims, double theta,
                         float* cos_out, float* sin_out) {
  const double angle =
      static_cast<double>(position) * pow(theta, -2.0 * j / rotary_dims);
  *cos_out = static_cast<float>(cos(angle));
  *sin_out = static_cast<float>(sin(angle));
}

// NeoX rotate-half of the pair (x[j], x[j + rotary_dims/2]).
SLAB_HD void RotatePair(float& first, float& second, float cos_t, float sin_t) {
  const float a = first;
  const float b = second;
  first = a * cos_t - b * sin_t;
  second = b * cos_t + a * sin_t;
}

// The f32 value rounded to bfloat16 (nearest, ties to even) as raw bits; a
// NaN stays a (quiet) NaN. Without a branch, so that loops over it
// vectorise.
SLAB_HD uint16_t Bf16Bits(float x) {
  uint32_t bits;
  memcpy(&bits, &x, sizeof(bits));
  const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (bits | 0x00400000u) >> 16;
  return static_cast<uint16_t>((bits & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan
                                                                  : rounded);
}

SLAB_HD float Bf16ToFloat(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float x;
  memcpy(&x, &wide, sizeof(x));
  return x;
}

}  // namespace slabserve::math

#endif  // SLABSERVE_KERNELS_MATH_ELEMENTWISE_H_
