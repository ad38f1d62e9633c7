#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/parallel.h"

namespace slabserve::cpu {
namespace {

// Eight f32 lanes (one AVX register, or two SSE registers without AVX).
typedef float Lanes __attribute__((vector_size(32)));

inline Lanes Load(const float* p) {
  Lanes v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// The fixed reduction every dot product ends with.
inline float Finish(Lanes acc, const float* a, const float* b, int k8, int k) {
  float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
              ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (int i = k8; i < k; ++i) sum += a[i] * b[i];
  return sum;
}

// A tile of 2 rows of x by 4 rows of w; each of the 8 dot products runs
// exactly as Dot() does.
void Tile2x4(const float* x0, const float* x1, const float* w, int k,
             float out[2][4]) {
  const float* w0 = w;
  const float* w1 = w + k;
  const float* w2 = w + 2 * k;
  const float* w3 = w + 3 * k;
  Lanes a00 = {}, a01 = {}, a02 = {}, a03 = {};
  Lanes a10 = {}, a11 = {}, a12 = {}, a13 = {};
  int k8 = k & ~7;
  for (int i = 0; i < k8; i += 8) {
    Lanes v0 = Load(x0 + i), v1 = Load(x1 + i);
    Lanes b0 = Load(w0 + i), b1 = Load(w1 + i);
    Lanes b2 = Load(w2 + i), b3 = Load(w3 + i);
    a00 += v0 * b0;
    a01 += v0 * b1;
    a02 += v0 * b2;
    a03 += v0 * b3;
    a10 += v1 * b0;
    a11 += v1 * b1;
    a12 += v1 * b2;
    a13 += v1 * b3;
  }
  out[0][0] = Finish(a00, x0, w0, k8, k);
  out[0][1] = Finish(a01, x0, w1, k8, k);
  out[0][2] = Finish(a02, x0, w2, k8, k);
  out[0][3] = Finish(a03, x0, w3, k8, k);
  out[1][0] = Finish(a10, x1, w0, k8, k);
  out[1][1] = Finish(a11, x1, w1, k8, k);
  out[1][2] = Finish(a12, x1, w2, k8, k);
  out[1][3] = Finish(a13, x1, w3, k8, k);
}

// Rows [row_begin, row_end) x columns [col_begin, col_end) of the output.
void Block(const float* x, int row_begin, int row_end, int k, const float* w,
           int col_begin, int col_end, int n, const float* bias, float* y) {
  int r = row_begin;
  for (; r + 1 < row_end; r += 2) {
    const float* x0 = x + static_cast<size_t>(r) * k;
    const float* x1 = x0 + k;
    float* y0 = y + static_cast<size_t>(r) * n;
    float* y1 = y0 + n;
    int j = col_begin;
    for (; j + 3 < col_end; j += 4) {
      float out[2][4];
      Tile2x4(x0, x1, w + static_cast<size_t>(j) * k, k, out);
      for (int c = 0; c < 4; ++c) {
        float b = bias != nullptr ? bias[j + c] : 0.0f;
        y0[j + c] = out[0][c] + b;
        y1[j + c] = out[1][c] + b;
      }
    }
    for (; j < col_end; ++j) {
      const float* wj = w + static_cast<size_t>(j) * k;
      float b = bias != nullptr ? bias[j] : 0.0f;
      y0[j] = Dot(x0, wj, k) + b;
      y1[j] = Dot(x1, wj, k) + b;
    }
  }
  for (; r < row_end; ++r) {
    const float* xr = x + static_cast<size_t>(r) * k;
    float* yr = y + static_cast<size_t>(r) * n;
    for (int j = col_begin; j < col_end; ++j) {
      yr[j] = Dot(xr, w + static_cast<size_t>(j) * k, k) +
              (bias != nullptr ? bias[j] : 0.0f);
    }
  }
}

}  // namespace

float Dot(const float* a, const float* b, int k) {
  Lanes acc = {};
  int k8 = k & ~7;
  for (int i = 0; i < k8; i += 8) acc += Load(a + i) * Load(b + i);
  return Finish(acc, a, b, k8, k);
}

void MatMulTransposed(const float* x, int rows, int k, const float* w, int n,
                      const float* bias, float* y) {
  if (rows <= 0 || n <= 0) return;
  // Blocks of w rows that stay in cache while every x row passes over them.
  int64_t bytes_per_w_row = static_cast<int64_t>(k) * sizeof(float);
  int cols_per_block = static_cast<int>(
      std::max<int64_t>(4, (128 * 1024 / bytes_per_w_row) & ~int64_t{3}));
  constexpr int kRowsPerBlock = 64;
  int col_blocks = (n + cols_per_block - 1) / cols_per_block;
  int row_blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  int64_t flops_per_block = int64_t{2} * k * std::min(cols_per_block, n) *
                            std::min(kRowsPerBlock, rows);
  int64_t grain =
      std::max<int64_t>(1, (1 << 18) / std::max<int64_t>(1, flops_per_block));
  ParallelFor(int64_t{col_blocks} * row_blocks, grain,
              [&](int64_t begin, int64_t end) {
                for (int64_t b = begin; b < end; ++b) {
                  int cb = static_cast<int>(b / row_blocks);
                  int rb = static_cast<int>(b % row_blocks);
                  int c0 = cb * cols_per_block;
                  int r0 = rb * kRowsPerBlock;
                  Block(x, r0, std::min(rows, r0 + kRowsPerBlock), k, w, c0,
                        std::min(n, c0 + cols_per_block), n, bias, y);
                }
              });
}

}  // namespace slabserve::cpu
