#include "kernels/cpu/vector_math.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/target.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace slabserve::cpu {
namespace {

// The build's own instruction set: 8 lanes, one AVX register under
// --config=opt. GCC fuses a·b + c into FMA wherever the target has it (in
// C++ even with -std=c++17), so code rounds alike across sets only where
// every set has FMA; MulAdd makes the fusion explicit where it matters.
namespace native {

typedef float Vec __attribute__((vector_size(32)));
typedef int32_t VecI __attribute__((vector_size(32)));

inline Vec MulAdd(Vec a, Vec b, Vec c) {
#if defined(__FMA__)
  return reinterpret_cast<Vec>(_mm256_fmadd_ps(reinterpret_cast<__m256>(a),
                                               reinterpret_cast<__m256>(b),
                                               reinterpret_cast<__m256>(c)));
#else
  return a * b + c;
#endif
}

inline Vec Sqrt(Vec x) {
#if defined(__AVX__)
  return reinterpret_cast<Vec>(_mm256_sqrt_ps(reinterpret_cast<__m256>(x)));
#else
  for (int i = 0; i < 8; ++i) x[i] = std::sqrt(x[i]);  // also exact
  return x;
#endif
}

#include "kernels/cpu/vector_math_impl.inc"

}  // namespace native

// AVX-512 (16 lanes), chosen at run time where the CPU has it. Only in FMA
// builds: each lane then runs exactly the operations of a native lane, so
// the results are identical bit for bit either way.
#if defined(__FMA__) && defined(__x86_64__)
#define SLABSERVE_VECTOR_MATH_AVX512 1
SLABSERVE_TARGET_PUSH("avx512f")
namespace avx512 {

typedef float Vec __attribute__((vector_size(64)));
typedef int32_t VecI __attribute__((vector_size(64)));

inline Vec MulAdd(Vec a, Vec b, Vec c) {
  return reinterpret_cast<Vec>(_mm512_fmadd_ps(reinterpret_cast<__m512>(a),
                                               reinterpret_cast<__m512>(b),
                                               reinterpret_cast<__m512>(c)));
}

inline Vec Sqrt(Vec x) {
  return reinterpret_cast<Vec>(_mm512_sqrt_ps(reinterpret_cast<__m512>(x)));
}

#include "kernels/cpu/vector_math_impl.inc"

}  // namespace avx512
SLABSERVE_TARGET_POP
#endif

bool CpuHasAvx512() {
#if defined(SLABSERVE_VECTOR_MATH_AVX512)
  return CpuHasAvx512F();
#else
  return false;
#endif
}

std::atomic<bool> avx512_allowed{true};

bool UseAvx512() {
  return CpuHasAvx512() && avx512_allowed.load(std::memory_order_relaxed);
}

}  // namespace

#if defined(SLABSERVE_VECTOR_MATH_AVX512)
#define SLABSERVE_DISPATCH(call) \
  return UseAvx512() ? avx512::call : native::call
#else
#define SLABSERVE_DISPATCH(call) return native::call
#endif

const char* VectorMathInstructionSet() {
  if (UseAvx512()) return "AVX-512+FMA";
#if defined(__AVX2__) && defined(__FMA__)
  return "AVX2+FMA";
#elif defined(__AVX__)
  return "AVX";
#else
  return "generic";
#endif
}

bool AllowVectorMathAvx512(bool allowed) {
  avx512_allowed.store(allowed, std::memory_order_relaxed);
  return CpuHasAvx512();
}

void Exp(const float* x, int64_t n, float* y) {
  SLABSERVE_DISPATCH(Exp(x, n, y));
}
void Expm1(const float* x, int64_t n, float* y) {
  SLABSERVE_DISPATCH(Expm1(x, n, y));
}
void Tanh(const float* x, int64_t n, float* y) {
  SLABSERVE_DISPATCH(Tanh(x, n, y));
}
void Sigmoid(const float* x, int64_t n, float* y) {
  SLABSERVE_DISPATCH(Sigmoid(x, n, y));
}
void Silu(const float* x, int64_t n, float* y) {
  SLABSERVE_DISPATCH(Silu(x, n, y));
}
void GeluTanh(const float* x, int64_t n, float* y) {
  SLABSERVE_DISPATCH(GeluTanh(x, n, y));
}
void GeluTanhMul(const float* gate, const float* up, int64_t n, float* out) {
  SLABSERVE_DISPATCH(GeluTanhMul(gate, up, n, out));
}
void SoftCap(const float* x, int64_t n, float cap, float* y) {
  SLABSERVE_DISPATCH(SoftCap(x, n, cap, y));
}
void RgLruCoefficients(const float* log_decay, const float* recurrence_gate,
                       const float* input_gate, const float* x, int64_t n,
                       bool reset, float* a, float* b) {
  SLABSERVE_DISPATCH(RgLruCoefficients(log_decay, recurrence_gate, input_gate,
                                       x, n, reset, a, b));
}

}  // namespace slabserve::cpu
