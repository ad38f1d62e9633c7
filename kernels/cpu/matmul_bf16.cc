#include "kernels/cpu/matmul_bf16.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <vector>

#include "absl/base/internal/raw_logging.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/target.h"
#include "kernels/math/elementwise.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace slabserve::cpu {
namespace {

constexpr int kPanel = PackedWeightBf16::kPanelWidth;
constexpr int kMaxPanels = 3;  // the largest tile's panels
// Rows per parallel work item: a multiple of every tile's rows (2 to 16).
constexpr int kBlockRows = 32;
constexpr int kMaxBlockPanels = 24;

// The rounded rows of x and what a tile needs to finish its outputs.
struct Operands {
  const uint16_t* x;  // [rows rounded up to 16][2 · w->pairs()] bf16 values
  const PackedWeightBf16* w;
  const float* bias;
  float* y;
  int rows;
  size_t ldy;  // y's row stride

  // x's row stride in pairs (32-bit words).
  size_t ldx() const { return w->pairs(); }
  // The pairs that are not all padding.
  int used_pairs() const { return (w->k() + 1) / 2; }
  // Steps 2i and 2i + 1 of row `row` as one little-endian word.
  uint32_t Pair(int row, int i) const {
    uint32_t word;
    std::memcpy(&word, x + 2 * (row * ldx() + i), sizeof(word));
    return word;
  }

  // y rows [r, r + tile_rows) × panels [p, p + panels) from out
  // [tile_rows][panels · kPanel], plus bias; rows ≥ rows and columns ≥ n
  // (padding) are dropped.
  void Emit(const float* out, int r, int tile_rows, int p, int panels) const {
    const int j0 = p * kPanel;
    const int cols = std::min(panels * kPanel, w->n() - j0);
    const int stride = panels * kPanel;
    for (int i = 0; i < tile_rows && r + i < rows; ++i) {
      float* yr = y + static_cast<size_t>(r + i) * ldy + j0;
      const float* src = out + i * stride;
      if (bias == nullptr) {
        std::memcpy(yr, src, cols * sizeof(float));
      } else {
        for (int j = 0; j < cols; ++j) yr[j] = src[j] + bias[j0 + j];
      }
    }
  }
};

// Converting sets: each bf16 product is exact in F32, so a multiply then an
// add rounds once, exactly as a fused multiply-add would; low step first.
#define SLABSERVE_BF16_CONVERTING_SET                               \
  inline Lanes Broadcast(float v) { return v - Lanes{}; }           \
  inline Lanes Accumulate(Lanes acc, uint32_t xw, Words wv) {       \
    const Lanes w_low = reinterpret_cast<Lanes>(wv << 16);          \
    const Lanes w_high = reinterpret_cast<Lanes>(wv & 0xFFFF0000u); \
    acc += Broadcast(math::Bf16ToFloat(xw & 0xFFFFu)) * w_low;      \
    return acc + Broadcast(math::Bf16ToFloat(xw >> 16)) * w_high;   \
  }

namespace generic {
typedef float Lanes __attribute__((vector_size(16)));
typedef uint32_t Words __attribute__((vector_size(16)));
constexpr int kRows = 2, kPanels = 1;
constexpr bool kSpreadFetch = false;
SLABSERVE_BF16_CONVERTING_SET
#include "kernels/cpu/matmul_bf16_tiles.inc"
}  // namespace generic

#if defined(__x86_64__)

SLABSERVE_TARGET_PUSH("avx2,fma")
namespace avx2 {
typedef float Lanes __attribute__((vector_size(32)));
typedef uint32_t Words __attribute__((vector_size(32)));
constexpr int kRows = 4, kPanels = 1;
constexpr bool kSpreadFetch = true;
SLABSERVE_BF16_CONVERTING_SET
#include "kernels/cpu/matmul_bf16_tiles.inc"
}  // namespace avx2
SLABSERVE_TARGET_POP

SLABSERVE_TARGET_PUSH("avx512f")
namespace avx512 {
typedef float Lanes __attribute__((vector_size(64)));
typedef uint32_t Words __attribute__((vector_size(64)));
constexpr int kRows = 8, kPanels = 2;
constexpr bool kSpreadFetch = false;
SLABSERVE_BF16_CONVERTING_SET
#include "kernels/cpu/matmul_bf16_tiles.inc"

// out[i] = math::Bf16Bits(x[i]), 16 lanes at a time: the same integer
// arithmetic on each lane, so the same bits.
void RoundRow(const float* x, int k, uint16_t* out) {
  typedef uint16_t Halves __attribute__((vector_size(32)));
  int i = 0;
  for (; i + 16 <= k; i += 16) {
    Words bits;
    std::memcpy(&bits, x + i, sizeof(bits));
    const Words rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    const Words quiet_nan = (bits | 0x00400000u) >> 16;
    const Words chosen =
        (bits & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan : rounded;
    const Halves halves = __builtin_convertvector(chosen, Halves);
    std::memcpy(out + i, &halves, sizeof(halves));
  }
  for (; i < k; ++i) out[i] = math::Bf16Bits(x[i]);
}
}  // namespace avx512
SLABSERVE_TARGET_POP

SLABSERVE_TARGET_PUSH("avx512f,avx512bf16")
namespace avx512bf16 {
typedef float Lanes __attribute__((vector_size(64)));
typedef uint32_t Words __attribute__((vector_size(64)));
constexpr int kRows = 8, kPanels = 3;
constexpr bool kSpreadFetch = true;
inline Lanes Accumulate(Lanes acc, uint32_t xw, Words wv) {
  return reinterpret_cast<Lanes>(_mm512_dpbf16_ps(
      reinterpret_cast<__m512>(acc),
      reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(xw))),
      reinterpret_cast<__m512bh>(wv)));
}
#include "kernels/cpu/matmul_bf16_tiles.inc"

// avx512::RoundRow's bits, 16 values per VCVTNEPS2BF16. That instruction
// rounds as math::Bf16Bits does (ties to even, NaNs quietened) except that
// it flushes subnormal inputs to zero, so a run of 16 holding one goes the
// integer way.
void RoundRow(const float* x, int k, uint16_t* out) {
  const __m512i magnitude_mask = _mm512_set1_epi32(0x7FFFFFFF);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i largest_subnormal = _mm512_set1_epi32(0x007FFFFF);
  int i = 0;
  for (; i + 16 <= k; i += 16) {
    const __m512i bits = _mm512_loadu_si512(x + i);
    // Subnormal: 0 < |x| < 2^-126, so |x| - 1 < 0x007FFFFF as unsigned.
    const __m512i below =
        _mm512_sub_epi32(_mm512_and_si512(bits, magnitude_mask), one);
    if (_mm512_cmplt_epu32_mask(below, largest_subnormal) != 0) {
      avx512::RoundRow(x + i, 16, out + i);
      continue;
    }
    const __m256bh rounded = _mm512_cvtneps_pbh(_mm512_castsi512_ps(bits));
    std::memcpy(out + i, &rounded, sizeof(rounded));
  }
  avx512::RoundRow(x + i, k - i, out + i);
}
}  // namespace avx512bf16
SLABSERVE_TARGET_POP

SLABSERVE_TARGET_PUSH("amx-tile,amx-bf16,avx512f")
namespace amx {

// Tiles 0-1 hold sums (16 rows × 2 panels), 4 rows of x, 6-7 panels.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

void Configure() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = 16;
    config.bytes_per_row[t] = 64;
  }
  _tile_loadconfig(&config);
}

// 16 rows from row r, PT panels (1 or 2) from panel p into y (row stride
// ldy floats); x rows are padded to 16. The sums start at bias16 (PT · 16
// values, loaded into every row: stride 0) or at zero. One row tile, not
// two: 2 × 2 tiles (four sums per loaded pair) took 1.3–1.5× as long at 256
// rows on every product shape of the medium Griffin, and up to 1.2× at 64
// and 1024 rows (alternated in one process).
template <int PT>
void Tile(const Operands& a, int r, int p, const float* bias16, float* y,
          size_t ldy) {
  const int chunks = a.w->pairs() / kPanel;
  const size_t x_stride = a.ldx() * sizeof(uint32_t);
  if (bias16 != nullptr) {
    _tile_loadd(0, bias16, 0);
    if (PT > 1) _tile_loadd(1, bias16 + kPanel, 0);
  } else {
    _tile_zero(0);
    if (PT > 1) _tile_zero(1);
  }
  for (int c = 0; c < chunks; ++c) {
    _tile_loadd(4, a.x + 2 * (r * a.ldx() + c * kPanel), x_stride);
    _tile_loadd(6, a.w->panel(p) + c * kPanel * kPanel, 64);
    if (PT > 1) _tile_loadd(7, a.w->panel(p + 1) + c * kPanel * kPanel, 64);
    _tile_dpbf16ps(0, 4, 6);
    if (PT > 1) _tile_dpbf16ps(1, 4, 7);
  }
  const size_t stride = ldy * sizeof(float);
  _tile_stored(0, y, stride);
  if (PT > 1) _tile_stored(1, y + kPanel, stride);
}

// The sums' starting values for panels [p, p + panels): bias16 of Tile, or
// null for none. Columns past n (the last panel's padding, where not
// `whole_columns`) start at zero.
const float* TileBias(const Operands& a, int p, int panels, bool whole_columns,
                      float* edge) {
  const int n = a.w->n(), j0 = p * kPanel;
  if (a.bias == nullptr) return nullptr;
  if (whole_columns) return a.bias + j0;
  for (int j = 0; j < panels * kPanel; ++j) {
    edge[j] = j0 + j < n ? a.bias[j0 + j] : 0.0f;
  }
  return edge;
}

// Rows outer: a 16-row group's x tile rows stay in L1 across the block's
// panels while the weights stream from L2. Tiles whose rows and columns all
// lie in the block and in y store straight into y; edge tiles go through a
// buffer and keep what fits. Every tile's sums start at the bias, so a
// row's bits do not depend on which kind of tile it landed in.
void RunBlock(const Operands& a, int r0, int r1, int p0, int p1) {
  Configure();
  alignas(64) float out[16 * 2 * kPanel];
  alignas(64) float edge_bias[2 * kPanel];
  Operands summed = a;  // for Emit: the bias is in the sums already
  summed.bias = nullptr;
  for (int r = r0; r < r1; r += 16) {
    const int tile_rows = std::min(16, r1 - r);
    for (int p = p0; p < p1; p += 2) {
      const int panels = p + 1 < p1 ? 2 : 1;
      const bool whole_columns = (p + panels) * kPanel <= a.w->n();
      const float* bias16 = TileBias(a, p, panels, whole_columns, edge_bias);
      const bool direct = whole_columns && tile_rows == 16;
      float* y = direct ? a.y + r * a.ldy + p * kPanel : out;
      const size_t ldy = direct ? a.ldy : panels * kPanel;
      if (panels == 2) Tile<2>(a, r, p, bias16, y, ldy);
      if (panels == 1) Tile<1>(a, r, p, bias16, y, ldy);
      if (!direct) summed.Emit(out, r, tile_rows, p, panels);
    }
  }
  _tile_release();
}

}  // namespace amx
SLABSERVE_TARGET_POP

// From CPUID (leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE): not every
// compiler's __builtin_cpu_supports knows AMX.
bool CpuHasAmxBf16() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  return (edx >> 22 & 1u) != 0 && (edx >> 24 & 1u) != 0;
}

bool AmxPermitted() {
  // Linux hands out AMX tile state only on request (ARCH_REQ_XCOMP_PERM for
  // XFEATURE_XTILEDATA), once for the whole process.
  static const bool permitted = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
  return permitted;
}
#endif  // __x86_64__

using BlockFn = void (*)(const Operands&, int, int, int, int);

BlockFn Blocks(Bf16Isa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case Bf16Isa::kAvx2:
      return avx2::RunBlock;
    case Bf16Isa::kAvx512:
      return avx512::RunBlock;
    case Bf16Isa::kAvx512Bf16:
      return avx512bf16::RunBlock;
    case Bf16Isa::kAmx:
      return amx::RunBlock;
#endif
    default:
      return generic::RunBlock;
  }
}

// out[i] = math::Bf16Bits(x[i]) for i < k, 16 lanes at a time where the
// CPU allows.
void RoundRow(const float* x, int k, uint16_t* out) {
#if defined(__x86_64__)
  static const bool has_avx512_bf16 = Bf16IsaSupported(Bf16Isa::kAvx512Bf16);
  if (has_avx512_bf16) return avx512bf16::RoundRow(x, k, out);
  if (CpuHasAvx512F()) return avx512::RoundRow(x, k, out);
#endif
  for (int i = 0; i < k; ++i) out[i] = math::Bf16Bits(x[i]);
}

// Rows up to the next multiple of the tile height, which tiles read.
size_t PaddedRows(int rows) {
  return (static_cast<size_t>(rows) + kBf16RowBlock - 1) / kBf16RowBlock *
         kBf16RowBlock;
}

}  // namespace

const char* Bf16IsaName(Bf16Isa isa) {
  switch (isa) {
    case Bf16Isa::kAvx2:
      return "AVX2";
    case Bf16Isa::kAvx512:
      return "AVX-512";
    case Bf16Isa::kAvx512Bf16:
      return "AVX-512-BF16";
    case Bf16Isa::kAmx:
      return "AMX-BF16";
    default:
      return "generic";
  }
}

bool Bf16IsaSupported(Bf16Isa isa) {
#if defined(__x86_64__)
  switch (isa) {
    case Bf16Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Bf16Isa::kAvx512:
      return CpuHasAvx512F();
    case Bf16Isa::kAvx512Bf16:
      return __builtin_cpu_supports("avx512bf16");
    case Bf16Isa::kAmx:
      return CpuHasAmxBf16() && AmxPermitted();
    default:
      return true;
  }
#else
  return isa == Bf16Isa::kGeneric;
#endif
}

Bf16Isa BestBf16Isa() {
  static const Bf16Isa best = [] {
    for (Bf16Isa isa : {Bf16Isa::kAmx, Bf16Isa::kAvx512Bf16, Bf16Isa::kAvx512,
                        Bf16Isa::kAvx2}) {
      if (Bf16IsaSupported(isa)) return isa;
    }
    return Bf16Isa::kGeneric;
  }();
  return best;
}

namespace {
std::atomic<int> chosen_isa{-1};
}  // namespace

Bf16Isa ActiveBf16Isa() {
  const int chosen = chosen_isa.load(std::memory_order_relaxed);
  return chosen < 0 ? BestBf16Isa() : static_cast<Bf16Isa>(chosen);
}

bool SetBf16Isa(Bf16Isa isa) {
  if (!Bf16IsaSupported(isa)) return false;
  chosen_isa.store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

PackedWeightBf16::PackedWeightBf16(const float* w, int n, int k)
    : n_(n),
      k_(k),
      pairs_((k + kDepthBlock - 1) / kDepthBlock * kDepthBlock / 2) {
  const int panels = (n + kPanel - 1) / kPanel;
  const size_t count = static_cast<size_t>(panels) * pairs_ * kPanel;
  if (count == 0) return;
  data_ = AllocateAligned<uint32_t>(count);
  auto at = [&](int j, int i) -> uint32_t {
    if (j >= n || i >= k) return 0;
    return math::Bf16Bits(w[static_cast<size_t>(j) * k + i]);
  };
  uint32_t* out = data_.get();
  for (int p = 0; p < panels; ++p) {
    for (int i = 0; i < pairs_; ++i) {
      for (int c = 0; c < kPanel; ++c) {
        const int j = p * kPanel + c;
        *out++ = at(j, 2 * i) | at(j, 2 * i + 1) << 16;
      }
    }
  }
}

void PackedWeightBf16::Row(int j, float* out) const {
  const uint32_t* src = panel(j / kPanel) + j % kPanel;
  for (int i = 0; i < k_; ++i) {
    const uint32_t word = src[static_cast<size_t>(i / 2) * kPanel];
    out[i] =
        math::Bf16ToFloat(static_cast<uint16_t>(i % 2 ? word >> 16 : word));
  }
}

void Bf16Rows::Reserve(int rows, const PackedWeightBf16& w) {
  k_ = w.k();
  width_ = 2 * static_cast<size_t>(w.pairs());
  const size_t padded_rows = PaddedRows(rows);
  if (data_.size() < padded_rows * width_) data_.resize(padded_rows * width_);
}

void Bf16Rows::Round(int r, const float* x) {
  uint16_t* out = data_.data() + r * width_;
  RoundRow(x, k_, out);
  std::fill(out + k_, out + width_, uint16_t{0});
}

bool Bf16Rows::Fits(int rows, const PackedWeightBf16& w) const {
  const size_t padded_rows = PaddedRows(rows);
  return k_ == w.k() && width_ == 2 * static_cast<size_t>(w.pairs()) &&
         padded_rows * width_ <= data_.size();
}

const uint16_t* Bf16Rows::Padded(int rows) {
  const size_t padded_rows = PaddedRows(rows);
  std::fill(data_.data() + rows * width_, data_.data() + padded_rows * width_,
            uint16_t{0});
  return data_.data();
}

void MatMulBf16(const float* x, int rows, const PackedWeightBf16& w,
                const float* bias, float* y, Bf16Isa isa) {
  if (rows <= 0 || w.n() <= 0) return;
  // The calling thread's buffer, rounded into by every worker.
  thread_local Bf16Rows buffer;
  Bf16Rows& rounded = buffer;
  rounded.Reserve(rows, w);
  const int k = w.k();
  auto round = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      rounded.Round(static_cast<int>(r), x + r * k);
    }
  };
  ParallelFor(rows, std::max<int64_t>(1, (int64_t{1} << 15) / std::max(k, 1)),
              std::ref(round));
  MatMulBf16(rounded, rows, w, bias, y, isa);
}

void MatMulBf16(Bf16Rows& x, int rows, const PackedWeightBf16& w,
                const float* bias, float* y, Bf16Isa isa) {
  const int n = w.n();
  if (rows <= 0 || n <= 0) return;
  ABSL_RAW_CHECK(x.Fits(rows, w), "bf16 rows not reserved for this product");
  const Operands a{x.Padded(rows), &w, bias, y, rows, static_cast<size_t>(n)};
  const BlockFn run = Blocks(isa);
  const int panels = (n + kPanel - 1) / kPanel;
  auto block = [&a, run](int r0, int r1, int p0, int p1) {
    run(a, r0, r1, p0, p1);
  };
  // Panel blocks are a multiple of every tile's panel group (1, 2, 3).
  ParallelForProductBlocks(rows, panels, w.k(),
                           {kBlockRows, kMaxBlockPanels, 6}, std::ref(block));
}

void MatMulBf16RowBlock(Bf16Rows& x, int begin, int end,
                        const PackedWeightBf16& w, const float* bias, float* y,
                        size_t ldy, Bf16Isa isa) {
  const int n = w.n();
  if (end <= begin || n <= 0) return;
  ABSL_RAW_CHECK(x.Fits(end, w), "bf16 rows not reserved for this product");
  // Rows from end up to its tile edge are nobody else's (begin and any other
  // caller's rows start on tile edges), so zeroing them here races with none.
  const Operands a{x.Padded(end), &w, bias, y, end, ldy};
  Blocks(isa)(a, begin, end, 0, (n + kPanel - 1) / kPanel);
}

}  // namespace slabserve::cpu
