#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <utility>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/target.h"

#if defined(__FMA__)
#include <immintrin.h>
#endif

namespace slabserve::cpu {
namespace {

constexpr int kPanel = PackedWeight::kPanelWidth;

using TileFn = void (*)(const float*, size_t, const float*, size_t, int, bool,
                        const float*, float*, size_t);

constexpr int kMaxTileRows = 8;
constexpr int kMaxTilePanels = 8;

// One instruction set's tiles: tiles[(rows - 1) * kMaxTilePanels + panels -
// 1] for rows ≤ main_rows, panels ≤ max_panels[rows - 1]. Full row tiles have
// main_rows rows and take main_panels panels at once.
struct TileSet {
  int main_rows;
  int main_panels;
  TileFn tiles[kMaxTileRows * kMaxTilePanels];
  int max_panels[kMaxTileRows];

  TileFn Get(int rows, int panels) const {
    return tiles[(rows - 1) * kMaxTilePanels + panels - 1];
  }
};

using AllTiles = std::make_integer_sequence<int, kMaxTileRows * kMaxTilePanels>;

// The build's own instruction set (AVX2 + FMA under --config=opt; SSE
// otherwise): 16 vector registers, 12 of them for sums.
namespace native {

typedef float Lanes __attribute__((vector_size(32)));
constexpr int kAccumulators = 12;

inline Lanes MulAdd(Lanes a, Lanes b, Lanes acc) {
#if defined(__FMA__)
  return reinterpret_cast<Lanes>(
      _mm256_fmadd_ps(reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b),
                      reinterpret_cast<__m256>(acc)));
#else
  return acc + a * b;
#endif
}

#include "kernels/cpu/matmul_tiles.inc"

}  // namespace native

// AVX-512, chosen at run time where the CPU has it. Only in FMA builds: each
// lane computes exactly what an AVX2 FMA lane does (one fused multiply-add
// per step, same order), so results are identical bit for bit either way.
#if defined(__FMA__) && defined(__x86_64__)
#define SLABSERVE_MATMUL_AVX512 1
SLABSERVE_TARGET_PUSH("avx512f")
namespace avx512 {

typedef float Lanes __attribute__((vector_size(64)));
constexpr int kAccumulators = 24;  // of 32 registers

inline Lanes MulAdd(Lanes a, Lanes b, Lanes acc) {
  return reinterpret_cast<Lanes>(
      _mm512_fmadd_ps(reinterpret_cast<__m512>(a), reinterpret_cast<__m512>(b),
                      reinterpret_cast<__m512>(acc)));
}

#include "kernels/cpu/matmul_tiles.inc"

}  // namespace avx512
SLABSERVE_TARGET_POP
#endif

bool UseAvx512() {
#if defined(SLABSERVE_MATMUL_AVX512)
  return CpuHasAvx512F();
#else
  return false;
#endif
}

const TileSet& Tiles() {
  static const TileSet tiles = [] {
#if defined(SLABSERVE_MATMUL_AVX512)
    if (UseAvx512()) return avx512::MakeTileSet(8, 3, AllTiles());
#endif
    return native::MakeTileSet(6, 1, AllTiles());
  }();
  return tiles;
}

// Steps of k per pass over a panel group: its slice (16 KiB per panel) stays
// in L1 while every row tile of a block passes over it. Like every block
// size here, it does not change results: a tile continues the sums in y.
constexpr int kBlockK = 256;
// Rows and panels per parallel work item (at most): multiples of every
// tile's main_rows and main_panels.
constexpr int kBlockRows = 96;
constexpr int kBlockPanels = 24;

struct Product {
  const float* x;
  size_t ldx;  // x row stride
  const PackedWeight* w;
  const float* bias;
  float* y;
  size_t ldy;  // y row stride
  const TileSet* tiles;

  // Rows [r, r + tile_rows) × panels [p, p + panels) over steps
  // [k0, k0 + kc). A panel that ends past column n (always alone) runs on a
  // zero-padded copy of its columns of y and bias.
  void RunTile(int r, int tile_rows, int p, int panels, int k0, int kc) const {
    const int k = w->k(), n = w->n(), j0 = p * kPanel;
    const bool first = k0 == 0, last = k0 + kc == k;
    const float* xr = x + r * ldx + k0;
    const float* wp = w->panel(p) + static_cast<size_t>(k0) * kPanel;
    const size_t panel_stride = static_cast<size_t>(k) * kPanel;
    float* yr = y + r * ldy + j0;
    const TileFn tile = tiles->Get(tile_rows, panels);
    if (j0 + panels * kPanel <= n) {
      tile(xr, ldx, wp, panel_stride, kc, first,
           last && bias != nullptr ? bias + j0 : nullptr, yr, ldy);
      return;
    }
    const int cols = n - j0;
    float part[kMaxTileRows * kPanel] = {};
    float part_bias[kPanel] = {};
    for (int i = 0; i < tile_rows; ++i) {
      if (!first) std::memcpy(&part[i * kPanel], yr + i * ldy, cols * 4);
    }
    if (bias != nullptr) std::memcpy(part_bias, bias + j0, cols * 4);
    tile(xr, ldx, wp, panel_stride, kc, first,
         last && bias != nullptr ? part_bias : nullptr, part, kPanel);
    for (int i = 0; i < tile_rows; ++i) {
      std::memcpy(yr + i * ldy, &part[i * kPanel], cols * 4);
    }
  }

  // `count` tiles of `tile_rows` rows from row r, over panels [p0, p1) in
  // groups of up to `group` (a partial last panel goes alone). Each group's
  // slice of W stays in L1 while the row tiles pass over it.
  void RunRows(int r, int tile_rows, int count, int group, int p0, int p1,
               int k0, int kc) const {
    const int full_panels = w->n() / kPanel;
    for (int p = p0; p < p1;) {
      const int panels =
          p >= full_panels ? 1 : std::min(group, std::min(p1, full_panels) - p);
      for (int t = 0; t < count; ++t) {
        RunTile(r + t * tile_rows, tile_rows, p, panels, k0, kc);
      }
      p += panels;
    }
  }

  // Rows [r0, r1) × panels [p0, p1): full tiles, then the last few rows with
  // as many panels at once as their registers allow.
  void RunBlock(int r0, int r1, int p0, int p1) const {
    const int k = w->k(), main_rows = tiles->main_rows;
    const int count = (r1 - r0) / main_rows;
    const int rest = r1 - r0 - count * main_rows;
    for (int k0 = 0; k0 < std::max(k, 1); k0 += kBlockK) {
      const int kc = std::min(kBlockK, k - k0);
      RunRows(r0, main_rows, count, tiles->main_panels, p0, p1, k0, kc);
      if (rest > 0) {
        RunRows(r0 + count * main_rows, rest, 1, tiles->max_panels[rest - 1],
                p0, p1, k0, kc);
      }
    }
  }
};

}  // namespace

PackedWeight::PackedWeight(const float* w, int n, int k) : n_(n), k_(k) {
  const int panels = (n + kPanel - 1) / kPanel;
  const size_t count = static_cast<size_t>(panels) * k * kPanel;
  if (count == 0) return;
  // 64-byte aligned: one step of a panel is exactly one cache line.
  data_ = AllocateAligned<float>(count);
  float* out = data_.get();
  for (int p = 0; p < panels; ++p) {
    for (int i = 0; i < k; ++i) {
      for (int c = 0; c < kPanel; ++c) {
        const int j = p * kPanel + c;
        *out++ = j < n ? w[static_cast<size_t>(j) * k + i] : 0.0f;
      }
    }
  }
}

void PackedWeight::Row(int j, float* out) const {
  const float* src = panel(j / kPanel) + j % kPanel;
  for (int i = 0; i < k_; ++i) out[i] = src[static_cast<size_t>(i) * kPanel];
}

void MatMulPacked(const float* x, int rows, const PackedWeight& w,
                  const float* bias, float* y) {
  MatMulPackedStrided(x, w.k(), rows, w, bias, y, w.n());
}

void MatMulPackedStrided(const float* x, size_t ldx, int rows,
                         const PackedWeight& w, const float* bias, float* y,
                         size_t ldy) {
  const int n = w.n();
  if (rows <= 0 || n <= 0) return;
  const Product product{x, ldx, &w, bias, y, ldy, &Tiles()};
  const int panels = (n + kPanel - 1) / kPanel;
  auto block = [&product](int r0, int r1, int p0, int p1) {
    product.RunBlock(r0, r1, p0, p1);
  };
  // Panel blocks are a multiple of the tiles' main panel group.
  ParallelForProductBlocks(
      rows, panels, w.k(),
      {kBlockRows, kBlockPanels, product.tiles->main_panels}, std::ref(block));
}

const char* MatMulInstructionSet() {
  if (UseAvx512()) return "AVX-512";
#if defined(__AVX2__) && defined(__FMA__)
  return "AVX2+FMA";
#else
  return "generic";
#endif
}

float Dot(const float* a, const float* b, int k) {
  using native::Lanes, native::Load;
  Lanes acc = {};
  const int k8 = k & ~7;
  for (int i = 0; i < k8; i += 8) acc += Load(a + i) * Load(b + i);
  float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
              ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (int i = k8; i < k; ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace slabserve::cpu
