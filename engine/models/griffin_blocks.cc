#include "engine/models/griffin_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/vector_math.h"

namespace slabserve::griffin {
void Workspace::Reserve(const GriffinConfig& config, int tokens) {
  const size_t T = tokens, D = config.hidden_size, R = config.lru_width;
  const size_t q_width =
      static_cast<size_t>(config.num_heads) * config.head_dim;
  const size_t kv_width =
      static_cast<size_t>(config.num_kv_heads) * config.head_dim;
  for (std::vector<float>* b : {&x, &normed, &out, &head_in})
    GrowToAtLeast(*b, T * D);
  for (std::vector<float>* b : {&y, &u, &conv, &lru_a, &lru_b}) {
    GrowToAtLeast(*b, T * R);
  }
  GrowToAtLeast(q, T * q_width);
  GrowToAtLeast(attended, T * q_width);
  GrowToAtLeast(k, T * kv_width);
  GrowToAtLeast(v, T * kv_width);
  GrowToAtLeast(mlp_gate, T * config.mlp_width);
  GrowToAtLeast(mlp_up, T * config.mlp_width);
}

namespace {

// c = the causal depthwise conv of u ([T, R]), inputs before a chunk coming
// from its slot's tail; then each chunk's last K-1 inputs become the tail.
void CausalConv(const GriffinConfig& config, const RecurrentWeights& w,
                int tail_slab, const RaggedBatch& plan, const float* u,
                StatePool& pool, float* c) {
  const int T = plan.tokens(), R = config.lru_width, K = config.conv_width;
  ForEachItem(T, K * R, [&](int64_t i) {
    const int s = plan.chunk(i);
    const int j = static_cast<int>(i) - plan.begin(s);
    const float* tail = pool.Row<float>(tail_slab, plan.slot(s));
    float* ci = c + i * R;
    std::memcpy(ci, w.conv_bias, sizeof(float) * R);
    for (int k = 0; k < K; ++k) {
      const int back = j - (K - 1) + k;  // chunk row, negative: tail
      const float* src = back >= 0 ? u + (plan.begin(s) + back) * R
                                   : tail + (K - 1 + back) * R;
      const float* tap = &w.conv_taps[k * R];
      for (int ch = 0; ch < R; ++ch) ci[ch] += tap[ch] * src[ch];
    }
  });
  if (K == 1) return;
  ForEachItem(plan.chunks(), (K - 1) * R, [&](int64_t s) {
    float* tail = pool.Row<float>(tail_slab, plan.slot(s));
    const int keep = std::max(0, K - 1 - plan.length(s));  // old rows needed
    std::memmove(tail, tail + (K - 1 - keep) * R, sizeof(float) * keep * R);
    const int fresh = K - 1 - keep;
    std::memcpy(tail + keep * R, u + (plan.end(s) - fresh) * R,
                sizeof(float) * fresh * R);
  });
}

// The RG-LRU scan h = a·h + b (h = b at position 0), in f32: sequential over
// a chunk's tokens, independent across chunks and channel blocks, so one
// long sequence still spreads over the threads. out = h ⊙ y.
void Scan(int R, int h_slab, const RaggedBatch& plan, const float* a,
          const float* b, const float* y, StatePool& pool, float* out) {
  constexpr int kChannelBlock = 16;
  const int blocks = (R + kChannelBlock - 1) / kChannelBlock;
  const int64_t tokens_per_chunk = plan.tokens() / plan.chunks();
  ForEachItem(
      int64_t{plan.chunks()} * blocks, tokens_per_chunk * kChannelBlock * 4,
      [&](int64_t item) {
        const int s = static_cast<int>(item / blocks);
        const int ch_begin = static_cast<int>(item % blocks) * kChannelBlock;
        const int ch_end = std::min(R, ch_begin + kChannelBlock);
        float* h = pool.Row<float>(h_slab, plan.slot(s));
        for (int i = plan.begin(s); i < plan.end(s); ++i) {
          const bool reset = plan.position(i) == 0;
          const size_t base = static_cast<size_t>(i) * R;
          for (int ch = ch_begin; ch < ch_end; ++ch) {
            h[ch] = reset ? b[base + ch] : a[base + ch] * h[ch] + b[base + ch];
            out[base + ch] = h[ch] * y[base + ch];
          }
        }
      });
}

}  // namespace

void RecurrentBlock(const GriffinConfig& config, const LayerWeights& layer,
                    const RaggedBatch& plan, const float* n, StatePool& pool,
                    Workspace& ws, float* out) {
  const RecurrentWeights& w = layer.recurrent;
  const int T = plan.tokens(), R = config.lru_width;
  const int bw = R / config.num_heads;
  float* y = ws.y.data();
  float* u = ws.u.data();
  float* c = ws.conv.data();
  float* lru_a = ws.lru_a.data();
  float* lru_b = ws.lru_b.data();
  w.y.Apply(n, T, y);
  cpu::ParallelFor(
      T, TaskGrain(R * kTranscendental), [&](int64_t begin, int64_t end) {
        cpu::GeluTanh(y + begin * R, (end - begin) * R, y + begin * R);
      });
  w.x.Apply(n, T, u);
  CausalConv(config, w, layer.first_slab, plan, u, pool, c);

  // RG-LRU gates: block-diagonal products of the conv output, one product
  // per head on its slice of the rows.
  for (int h = 0; h < config.num_heads; ++h) {
    const size_t offset = static_cast<size_t>(h) * bw;
    cpu::MatMulPackedStrided(c + offset, R, T, w.recurrence_gate[h],
                             w.recurrence_gate_bias + offset, lru_a + offset,
                             R);
    cpu::MatMulPackedStrided(c + offset, R, T, w.input_gate[h],
                             w.input_gate_bias + offset, lru_b + offset, R);
  }
  // Fused with the decay into the scan's coefficients: h = a·h + b.
  cpu::ParallelFor(
      T, TaskGrain(R * 4 * kTranscendental), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          float* a = lru_a + i * R;
          float* b = lru_b + i * R;
          cpu::RgLruCoefficients(w.log_decay.data(), a, b, c + i * R, R,
                                 plan.position(i) == 0, a, b);
        }
      });
  // o ⊙ y overwrites u.
  Scan(R, layer.first_slab + 1, plan, lru_a, lru_b, y, pool, u);
  w.out.Apply(u, T, out);
}

void AttentionBlock(const GriffinConfig& config, const LayerWeights& layer,
                    const RaggedBatch& plan, const float* n, StatePool& pool,
                    Workspace& ws, float* out) {
  const AttentionWeights& w = layer.attention;
  const int T = plan.tokens(), H = config.num_heads, hd = config.head_dim;
  const int KVH = config.num_kv_heads, W = config.attention_window;
  const int q_width = H * hd, kv_width = KVH * hd, rot = config.rotary_dims;
  float* q = ws.q.data();
  float* k = ws.k.data();
  float* v = ws.v.data();
  w.q.Apply(n, T, q);
  w.k.Apply(n, T, k);
  w.v.Apply(n, T, v);
  const int64_t rope_work = (H + KVH) * rot * 2 + rot * kTranscendental * 4;
  cpu::ParallelFor(T, TaskGrain(rope_work), [&](int64_t begin, int64_t end) {
    float* cos = ThreadScratch(rot);
    float* sin = cos + rot / 2;
    for (int64_t i = begin; i < end; ++i) {
      cpu::RotaryAngles(plan.position(i), rot, config.rope_theta, cos, sin);
      for (int h = 0; h < H; ++h) {
        cpu::ApplyRotary(&q[i * q_width + h * hd], rot, cos, sin);
      }
      for (int h = 0; h < KVH; ++h) {
        cpu::ApplyRotary(&k[i * kv_width + h * hd], rot, cos, sin);
      }
    }
  });

  // Each query sees positions max(0, t-W+1)..t, visited in position order
  // whether a key sits in the ring or in the chunk, so chunking does not
  // change the arithmetic.
  const int key_slab = layer.first_slab, value_slab = layer.first_slab + 1;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int group = H / KVH;
  float* attended = ws.attended.data();
  const int64_t query_work = int64_t{4} * H * W * hd;
  cpu::ParallelFor(T, TaskGrain(query_work), [&](int64_t begin, int64_t end) {
    float* p = ThreadScratch(W);
    for (int64_t i = begin; i < end; ++i) {
      const int s = plan.chunk(i), t = plan.position(i);
      const int t0 = plan.start(s), first = std::max(0, t - W + 1);
      const float* key_ring = pool.Row<float>(key_slab, plan.slot(s));
      const float* value_ring = pool.Row<float>(value_slab, plan.slot(s));
      auto row = [&](const float* chunk, const float* ring, int pos) {
        return pos >= t0 ? &chunk[(plan.begin(s) + pos - t0) * kv_width]
                         : ring + static_cast<size_t>(pos % W) * kv_width;
      };
      for (int h = 0; h < H; ++h) {
        const float* qh = &q[i * q_width + h * hd];
        const int kv_offset = (h / group) * hd;
        for (int pos = first; pos <= t; ++pos) {
          p[pos - first] =
              cpu::Dot(qh, row(k, key_ring, pos) + kv_offset, hd) * scale;
        }
        cpu::SoftmaxInPlace(p, t - first + 1);
        float* oh = &attended[i * q_width + h * hd];
        std::fill(oh, oh + hd, 0.0f);
        for (int pos = first; pos <= t; ++pos) {
          const float* vp = row(v, value_ring, pos) + kv_offset;
          const float weight = p[pos - first];
          for (int d = 0; d < hd; ++d) oh[d] += weight * vp[d];
        }
      }
    }
  });
  // Then the chunk's keys enter the ring; a chunk longer than W leaves its
  // last W.
  ForEachItem(plan.chunks(), 2 * std::min(W, T) * kv_width, [&](int64_t s) {
    float* key_ring = pool.Row<float>(key_slab, plan.slot(s));
    float* value_ring = pool.Row<float>(value_slab, plan.slot(s));
    const int t0 = plan.start(s);
    const int t_end = t0 + plan.length(s);
    for (int pos = std::max(t0, t_end - W); pos < t_end; ++pos) {
      const size_t from =
          static_cast<size_t>(plan.begin(s) + pos - t0) * kv_width;
      const size_t to = static_cast<size_t>(pos % W) * kv_width;
      std::memcpy(key_ring + to, &k[from], sizeof(float) * kv_width);
      std::memcpy(value_ring + to, &v[from], sizeof(float) * kv_width);
    }
  });
  w.o.Apply(attended, T, out);
}

void MlpBlock(const GriffinConfig& config, const LayerWeights& layer, int rows,
              const float* m, Workspace& ws, float* out) {
  const int F = config.mlp_width;
  float* gate = ws.mlp_gate.data();
  float* up = ws.mlp_up.data();
  layer.gate.Apply(m, rows, gate);
  layer.up.Apply(m, rows, up);
  cpu::ParallelFor(rows, TaskGrain(F * kTranscendental),
                   [&](int64_t begin, int64_t end) {
                     cpu::GeluTanhMul(gate + begin * F, up + begin * F,
                                      (end - begin) * F, gate + begin * F);
                   });
  layer.down.Apply(gate, rows, out);
}

}  // namespace slabserve::griffin
