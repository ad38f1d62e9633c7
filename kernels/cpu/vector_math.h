// Vectorised transcendental functions on f32 arrays (8 lanes, AVX2 + FMA
// under --config=opt; 16 lanes where the CPU has AVX-512, chosen at run
// time). Every element goes through the same polynomial with the same
// operations, whether it sits in a full vector or in the padded tail, and
// whatever the width, so a result depends only on its own input: never on
// the array length, the element's offset, the thread that computed it or
// the CPU's vector width (in FMA builds; without FMA there is no AVX-512
// path).
//
// Accuracy against the correctly rounded result (vector_math_test checks
// these bounds): Exp and Expm1 within 2 ulp, Tanh within 3 ulp, Sigmoid
// within 3 ulp. Exp flushes results below FLT_MIN (x < -87.33) to zero.
#ifndef SLABSERVE_KERNELS_CPU_VECTOR_MATH_H_
#define SLABSERVE_KERNELS_CPU_VECTOR_MATH_H_

#include <cstdint>

namespace slabserve::cpu {

// The instruction set these functions run on: "AVX-512+FMA", "AVX2+FMA",
// "AVX" or "generic" (for benchmark reports).
const char* VectorMathInstructionSet();
// Allows (the default) or forbids the AVX-512 path, for tests and benchmarks
// comparing widths; returns whether the CPU has it. Set it before the
// functions run, not while they do.
bool AllowVectorMathAvx512(bool allowed);

// y[i] = f(x[i]) for i < n; y may alias x.
void Exp(const float* x, int64_t n, float* y);
void Expm1(const float* x, int64_t n, float* y);
void Tanh(const float* x, int64_t n, float* y);
void Sigmoid(const float* x, int64_t n, float* y);  // 1 / (1 + exp(-x))
void Silu(const float* x, int64_t n, float* y);     // x / (1 + exp(-x))
// gelu(z) = 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))).
void GeluTanh(const float* x, int64_t n, float* y);
// out[i] = gelu(gate[i]) · up[i]; out may alias either input.
void GeluTanhMul(const float* gate, const float* up, int64_t n, float* out);
// y[i] = cap · tanh(x[i] / cap); a copy when cap <= 0 (no cap).
void SoftCap(const float* x, int64_t n, float cap, float* y);

// The RG-LRU's per-token coefficients for n channels, fusing the gates'
// sigmoids with the decay: with r = sigmoid(recurrence_gate[i]) and
// g = sigmoid(input_gate[i]), log_a = log_decay[i]·r,
//   a[i] = exp(log_a),
//   b[i] = g·x[i] · (reset ? 1 : sqrt(1 − exp(2·log_a))),
// so that the scan is h = a·h + b (h = b at a reset). a may alias
// recurrence_gate and b input_gate.
void RgLruCoefficients(const float* log_decay, const float* recurrence_gate,
                       const float* input_gate, const float* x, int64_t n,
                       bool reset, float* a, float* b);

}  // namespace slabserve::cpu

#endif  // SLABSERVE_KERNELS_CPU_VECTOR_MATH_H_
