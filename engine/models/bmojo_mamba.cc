// The Mamba2 fading mixer of a B'MOJO-F layer, token by token in f32:
// in_proj → B/C RMSNorm → causal depthwise conv + SiLU → selective scan
// (x and B shared by the G query heads of a kv group) → y ⊙ SiLU(z) →
// per-head RMSNorm (eps 1e-5) → out_proj.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/models/bmojo_eidetic.h"
#include "engine/models/bmojo_layers.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/vector_math.h"

namespace slabserve::bmojo {
namespace {

constexpr float kBcNormEps = 1e-6f;
constexpr float kGateNormEps = 1e-5f;

// xbc = SiLU(conv1d of the pre-conv rows x|B|C of zxbcdt), the rows before a
// chunk coming from its slot's conv rows; then each chunk's last K−1 rows
// become its conv rows.
void CausalConv(const BmojoConfig& c, const MambaWeights& w, int slab,
                const RaggedBatch& plan, const float* zx, StatePool& pool,
                float* xbc) {
  const int T = plan.tokens(), K = c.conv_width, C = c.conv_channels();
  const int E = c.in_proj_rows(), d_in = c.d_inner();
  ForEachItem(T, 2 * K * C + C * kTranscendental, [&](int64_t i) {
    const int s = plan.chunk(i);
    const int j = static_cast<int>(i) - plan.begin(s);
    const float* tail = pool.Row<float>(slab, plan.slot(s));
    float* out = xbc + i * C;
    std::memcpy(out, w.conv_bias.data(), sizeof(float) * C);
    for (int k = 0; k < K; ++k) {
      const int back = j - (K - 1) + k;  // chunk row; negative: conv rows
      const float* src =
          back >= 0 ? zx + static_cast<size_t>(plan.begin(s) + back) * E + d_in
                    : tail + static_cast<size_t>(K - 1 + back) * C;
      const float* tap = &w.conv_taps[static_cast<size_t>(k) * C];
      for (int ch = 0; ch < C; ++ch) out[ch] += tap[ch] * src[ch];
    }
    cpu::Silu(out, C, out);
  });
  ForEachItem(plan.chunks(), (K - 1) * C, [&](int64_t s) {
    float* tail = pool.Row<float>(slab, plan.slot(s));
    const int keep = std::max(0, K - 1 - plan.length(s));  // old rows kept
    std::memmove(tail, tail + static_cast<size_t>(K - 1 - keep) * C,
                 sizeof(float) * keep * C);
    const int fresh = K - 1 - keep;
    for (int r = 0; r < fresh; ++r) {
      std::memcpy(tail + static_cast<size_t>(keep + r) * C,
                  zx + static_cast<size_t>(plan.end(s) - fresh + r) * E + d_in,
                  sizeof(float) * C);
    }
  });
}

// The selective scan per (chunk, head), sequential over the chunk's tokens:
// S ← exp(Δ·A)·S + Δ·x Bᵀ, y = S·C + D·x. With the eidetic memory on, each
// token's innovation is taken from the state before its own update.
void Scan(const BmojoConfig& c, const MambaWeights& w, int slab,
          const RaggedBatch& plan, Workspace& ws, StatePool& pool) {
  const int H = c.num_heads, D = c.head_dim, G = c.group();
  const int C = c.conv_channels(), d_xb = c.d_xb(), d_in = c.d_inner();
  const bool innovation = c.eidetic.enabled();
  const int64_t per_chunk = plan.tokens() / plan.chunks();
  ForEachItem(
      int64_t{plan.chunks()} * H, per_chunk * D * D * 6, [&](int64_t item) {
        const int s = static_cast<int>(item / H);
        const int h = static_cast<int>(item % H), g = h / G;
        float* state = pool.Row<float>(slab, plan.slot(s)) +
                       static_cast<size_t>(h) * D * D;
        float* predicted = ThreadScratch(D);
        for (int i = plan.begin(s); i < plan.end(s); ++i) {
          const float* row = ws.xbc.data() + static_cast<size_t>(i) * C;
          const float* x = row + g * D;
          const float* b = row + d_xb + g * D;
          const float* cr = row + 2 * d_xb + h * D;
          if (innovation) {
            for (int p = 0; p < D; ++p) {
              predicted[p] = cpu::Dot(state + p * D, b, D);
            }
            ws.innovation[i * H + h] = HeadInnovation(x, predicted, D);
          }
          const float decay = ws.decay[i * H + h];
          const float dt = ws.dt[i * H + h];
          float* y = ws.y.data() + static_cast<size_t>(i) * d_in + h * D;
          for (int p = 0; p < D; ++p) {
            float* sp = state + p * D;
            const float dtx = dt * x[p];
            float acc = 0.0f;
            for (int q = 0; q < D; ++q) {
              sp[q] = decay * sp[q] + dtx * b[q];
              acc += sp[q] * cr[q];
            }
            y[p] = acc + w.d_skip[h] * x[p];
          }
        }
      });
}

}  // namespace

void MambaFading(const BmojoConfig& c, const LayerWeights& layer,
                 const RaggedBatch& plan, const float* n, StatePool& pool,
                 Workspace& ws) {
  const MambaWeights& w = layer.mamba;
  const int T = plan.tokens(), E = c.in_proj_rows(), H = c.num_heads;
  const int D = c.head_dim, d_in = c.d_inner(), d_xb = c.d_xb();
  float* zx = ws.zxbcdt.data();
  w.in_proj.ApplyPrepared(n, T, ws.prepared, zx);
  if (c.bc_norm) {
    ForEachItem(T, 3 * (d_xb + d_in), [&](int64_t i) {
      float* b = zx + i * E + d_in + d_xb;
      for (int g = 0; g < c.num_kv_heads; ++g) {
        cpu::RmsNorm(b + g * D, 1, D, w.b_norm.data(), kBcNormEps, b + g * D);
      }
      float* cr = b + d_xb;
      for (int h = 0; h < H; ++h) {
        cpu::RmsNorm(cr + h * D, 1, D, w.c_norm.data(), kBcNormEps, cr + h * D);
      }
    });
  }
  CausalConv(c, w, layer.first_slab + kConvRows, plan, zx, pool, ws.xbc.data());
  const int dt_offset = 2 * d_in + 2 * d_xb;
  ForEachItem(T, H * 2 * kTranscendental, [&](int64_t i) {
    for (int h = 0; h < H; ++h) {
      const double dt = cpu::Softplus(
          static_cast<double>(zx[i * E + dt_offset + h]) + w.dt_bias[h]);
      ws.dt[i * H + h] = static_cast<float>(dt);
      ws.decay[i * H + h] = static_cast<float>(std::exp(dt * w.a[h]));
    }
  });
  Scan(c, w, layer.first_slab + kSsmState, plan, ws, pool);
  float* y = ws.y.data();
  ForEachItem(T, d_in * (kTranscendental + 6), [&](int64_t i) {
    float* gate = ThreadScratch(d_in);
    cpu::Silu(zx + i * E, d_in, gate);
    float* yi = y + i * d_in;
    for (int k = 0; k < d_in; ++k) yi[k] *= gate[k];
    for (int h = 0; h < H; ++h) {
      cpu::RmsNorm(yi + h * D, 1, D, w.gate_norm.data() + h * D, kGateNormEps,
                   yi + h * D);
    }
  });
  w.out_proj.Apply(y, T, ws.fading.data());
}

}  // namespace slabserve::bmojo
