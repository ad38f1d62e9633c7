#include "kernels/cpu/vector_math.h"

#include <cmath>
#include <cstring>
#include <limits>

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace slabserve::cpu {
namespace {

// GCC vector extensions: 8 lanes, one AVX register under --config=opt. The
// build is ISO C++ (-std=c++17), so GCC never contracts a·b + c on its own;
// MulAdd is the only fused operation, and it is explicit.
typedef float Vec __attribute__((vector_size(32)));
typedef int32_t VecI __attribute__((vector_size(32)));
constexpr int kLanes = sizeof(Vec) / sizeof(float);

inline Vec Splat(float v) { return Vec{} + v; }

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
  for (int i = 0; i < kLanes; ++i) x[i] = std::sqrt(x[i]);  // also exact
  return x;
#endif
}

inline Vec Abs(Vec x) {
  return reinterpret_cast<Vec>(reinterpret_cast<VecI>(x) & 0x7fffffff);
}

// |magnitude| with the sign of `sign`.
inline Vec CopySign(Vec magnitude, Vec sign) {
  const VecI sign_bit = reinterpret_cast<VecI>(sign) & int32_t{-0x7fffffff - 1};
  return reinterpret_cast<Vec>(reinterpret_cast<VecI>(Abs(magnitude)) |
                               sign_bit);
}

// Loads `count` floats (the rest of the vector zero).
inline Vec Load(const float* p, int count) {
  Vec v = {};
  std::memcpy(&v, p, sizeof(float) * count);
  return v;
}

inline void Store(float* p, Vec v, int count) {
  std::memcpy(p, &v, sizeof(float) * count);
}

// Calls body(i, count) for vectors of `count` elements from i covering
// [0, n): full vectors, then one padded tail through the same body.
template <typename Body>
inline void ForEachVector(int64_t n, const Body& body) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) body(i, kLanes);
  if (i < n) body(i, static_cast<int>(n - i));
}

constexpr float kExpMax = 88.72283935546875f;   // ln(FLT_MAX), rounded up
constexpr float kExpMin = -87.33654022216797f;  // ln(FLT_MIN)

// x = k·ln2 + r with |r| ≤ ln2/2 (x clamped to [kExpMin, kExpMax]):
// `scale` = 2^min(k, 127), `extra` = 2^(k - min(k, 127)) (1 or 2, so 2^128
// needs no infinite scale), `p` = expm1(r).
inline void Reduce(Vec x, Vec& scale, Vec& extra, Vec& p) {
  x = x < kExpMin ? Splat(kExpMin) : x;
  x = x > kExpMax ? Splat(kExpMax) : x;
  constexpr float kRound = 12582912.0f;  // 1.5·2^23: rounds to an integer
  const Vec k = (x * 1.44269504088896341f + kRound) - kRound;
  // Cody-Waite: k·ln2_hi is exact for |k| ≤ 2^9.
  Vec r = MulAdd(k, Splat(-0.693359375f), x);
  r = MulAdd(k, Splat(2.12194440e-4f), r);
  // Taylor series of expm1 to r^8: the truncation is below 2e-10 · |r|.
  Vec q = Splat(1.0f / 40320);
  q = MulAdd(q, r, Splat(1.0f / 5040));
  q = MulAdd(q, r, Splat(1.0f / 720));
  q = MulAdd(q, r, Splat(1.0f / 120));
  q = MulAdd(q, r, Splat(1.0f / 24));
  q = MulAdd(q, r, Splat(1.0f / 6));
  q = MulAdd(q, r, Splat(0.5f));
  p = MulAdd(q, r * r, r);
  VecI ki = __builtin_convertvector(k, VecI);
  const VecI big = ki > 127;
  ki = big ? VecI{} + 127 : ki;
  scale = reinterpret_cast<Vec>((ki + 127) << 23);
  extra = big ? Splat(2.0f) : Splat(1.0f);
}

inline Vec ExpV(Vec x) {
  Vec scale, extra, p;
  Reduce(x, scale, extra, p);
  Vec y = MulAdd(scale, p, scale) * extra;
  y = x > kExpMax ? Splat(std::numeric_limits<float>::infinity()) : y;
  y = x < kExpMin ? Splat(0.0f) : y;
  return x != x ? x : y;  // NaN stays NaN
}

inline Vec Expm1V(Vec x) {
  Vec scale, extra, p;
  Reduce(x, scale, extra, p);
  // 2^k·(1 + p) − 1 = 2^k·p + (2^k − 1); exactly p when k = 0.
  Vec y = MulAdd(scale, p, scale - 1.0f) * extra;
  y = x > kExpMax ? Splat(std::numeric_limits<float>::infinity()) : y;
  return x != x ? x : y;
}

inline Vec TanhV(Vec x) {
  // tanh|x| = e / (e + 2) with e = expm1(2|x|): accurate near zero, and
  // exactly 1 in f32 from |x| = 9.01 on (10 keeps e finite).
  Vec ax = Abs(x);
  ax = ax > 10.0f ? Splat(10.0f) : ax;
  const Vec e = Expm1V(ax + ax);
  return CopySign(e / (e + 2.0f), x);
}

inline Vec SigmoidV(Vec x) { return 1.0f / (1.0f + ExpV(-x)); }

inline Vec GeluTanhV(Vec z) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  const Vec inner = kSqrt2OverPi * (z + 0.044715f * z * z * z);
  return 0.5f * z * (1.0f + TanhV(inner));
}

template <typename Op>
void Map(const float* x, int64_t n, float* y, const Op& op) {
  ForEachVector(n, [&](int64_t i, int count) {
    Store(y + i, op(Load(x + i, count)), count);
  });
}

}  // namespace

const char* VectorMathInstructionSet() {
#if defined(__AVX2__) && defined(__FMA__)
  return "AVX2+FMA";
#elif defined(__AVX__)
  return "AVX";
#else
  return "generic";
#endif
}

void Exp(const float* x, int64_t n, float* y) { Map(x, n, y, ExpV); }
void Expm1(const float* x, int64_t n, float* y) { Map(x, n, y, Expm1V); }
void Tanh(const float* x, int64_t n, float* y) { Map(x, n, y, TanhV); }
void Sigmoid(const float* x, int64_t n, float* y) { Map(x, n, y, SigmoidV); }
void GeluTanh(const float* x, int64_t n, float* y) { Map(x, n, y, GeluTanhV); }

void Silu(const float* x, int64_t n, float* y) {
  Map(x, n, y, [](Vec z) { return z / (1.0f + ExpV(-z)); });
}

void GeluTanhMul(const float* gate, const float* up, int64_t n, float* out) {
  ForEachVector(n, [&](int64_t i, int count) {
    Store(out + i, GeluTanhV(Load(gate + i, count)) * Load(up + i, count),
          count);
  });
}

void SoftCap(const float* x, int64_t n, float cap, float* y) {
  if (cap <= 0.0f) {
    if (y != x) std::memmove(y, x, sizeof(float) * n);
    return;
  }
  Map(x, n, y, [cap](Vec v) { return cap * TanhV(v / cap); });
}

void RgLruCoefficients(const float* log_decay, const float* recurrence_gate,
                       const float* input_gate, const float* x, int64_t n,
                       bool reset, float* a, float* b) {
  ForEachVector(n, [&](int64_t i, int count) {
    const Vec log_a =
        Load(log_decay + i, count) * SigmoidV(Load(recurrence_gate + i, count));
    const Vec gated =
        SigmoidV(Load(input_gate + i, count)) * Load(x + i, count);
    Store(a + i, ExpV(log_a), count);
    Store(b + i, reset ? gated : Sqrt(-Expm1V(log_a + log_a)) * gated, count);
  });
}

}  // namespace slabserve::cpu
