#include "kernels/cpu/attention.h"

#include <cstring>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/target.h"

namespace slabserve::cpu {
namespace {

typedef float Lanes __attribute__((vector_size(32)));

inline Lanes Load(const float* p) {
  Lanes v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void Store(Lanes v, float* p) { std::memcpy(p, &v, sizeof(v)); }

// Lane i: a[2i] + a[2i+1] for i < 4, then b's pairs likewise.
inline Lanes PairSums(Lanes a, Lanes b) {
  return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14) +
         __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
}

// Lane k: acc[k] summed as ((x0+x1)+(x2+x3))+((x4+x5)+(x6+x7)), Dot's tree.
inline Lanes SumEach(const Lanes* acc) {
  const Lanes t0123 =
      PairSums(PairSums(acc[0], acc[1]), PairSums(acc[2], acc[3]));
  const Lanes t4567 =
      PairSums(PairSums(acc[4], acc[5]), PairSums(acc[6], acc[7]));
  return PairSums(t0123, t4567);
}

// Dot's remainder: the last dim % 8 products, added in order.
inline float AddTail(float sum, const float* q, const float* k, int from,
                     int dim) {
  for (int i = from; i < dim; ++i) sum += q[i] * k[i];
  return sum;
}

void ScoreKeys(const float* q, int dim, const float* const* keys, size_t column,
               int n, float scale, float* scores) {
  const int d8 = dim & ~7;
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    const float* k[8];
    for (int u = 0; u < 8; ++u) k[u] = keys[j + u] + column;
    Lanes acc[8] = {};
    for (int i = 0; i < d8; i += 8) {
      const Lanes qi = Load(q + i);
      for (int u = 0; u < 8; ++u) acc[u] += qi * Load(k[u] + i);
    }
    const Lanes sums = SumEach(acc);
    if (d8 == dim) {  // no tail: the eight scores at once
      Store(sums * scale, scores + j);
      continue;
    }
    for (int u = 0; u < 8; ++u) {
      scores[j + u] = AddTail(sums[u], q, k[u], d8, dim) * scale;
    }
  }
  for (; j < n; ++j) scores[j] = Dot(q, keys[j] + column, dim) * scale;
}

// Only where the build itself has FMA: GCC fuses a·b + c wherever FMA is
// available, so the 16-lane code rounds as the 8-lane code only then.
#if defined(__x86_64__) && defined(__FMA__)
#define SLABSERVE_ATTENTION_AVX512 1
SLABSERVE_TARGET_PUSH("avx512f")
namespace avx512 {
typedef float Lanes16 __attribute__((vector_size(64)));

// WeightedSum's 64-column block in four 16-lane registers: the same
// products and sums, half the loads.
void WeightedSum64(const float* p, const float* const* values, size_t column,
                   int n, float* out) {
  Lanes16 acc[4] = {};
  for (int j = 0; j < n; ++j) {
    const float* v = values[j] + column;
    for (int u = 0; u < 4; ++u) {
      Lanes16 vu;
      std::memcpy(&vu, v + 16 * u, sizeof(vu));
      acc[u] += p[j] * vu;
    }
  }
  std::memcpy(out, acc, sizeof(acc));
}
}  // namespace avx512
SLABSERVE_TARGET_POP
#endif

// out[d] = Σ_j p[j]·v_j[d], j in order; 64 columns at a time in registers.
void WeightedSum(const float* p, const float* const* values, size_t column,
                 int n, int dim, float* out) {
  int d = 0;
  for (; d + 64 <= dim; d += 64) {
#if defined(SLABSERVE_ATTENTION_AVX512)
    if (CpuHasAvx512F()) {
      avx512::WeightedSum64(p, values, column + d, n, out + d);
      continue;
    }
#endif
    Lanes acc[8] = {};
    for (int j = 0; j < n; ++j) {
      const float* v = values[j] + column + d;
      for (int u = 0; u < 8; ++u) acc[u] += p[j] * Load(v + 8 * u);
    }
    for (int u = 0; u < 8; ++u) Store(acc[u], out + d + 8 * u);
  }
  for (; d + 8 <= dim; d += 8) {
    Lanes acc = {};
    for (int j = 0; j < n; ++j) acc += p[j] * Load(values[j] + column + d);
    Store(acc, out + d);
  }
  for (; d < dim; ++d) {
    float acc = 0.0f;
    for (int j = 0; j < n; ++j) acc += p[j] * values[j][column + d];
    out[d] = acc;
  }
}

}  // namespace

void AttendHeads(const float* q, int heads, int dim, const float* const* keys,
                 const float* const* values, size_t column, int n, float scale,
                 float* scores, float* out) {
  for (int h = 0; h < heads; ++h) {
    ScoreKeys(q + static_cast<size_t>(h) * dim, dim, keys, column, n, scale,
              scores);
    SoftmaxInPlace(scores, n);
    WeightedSum(scores, values, column, n, dim,
                out + static_cast<size_t>(h) * dim);
  }
}

}  // namespace slabserve::cpu
