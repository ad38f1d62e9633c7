#include "engine/models/griffin_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/vector_math.h"

namespace slabserve::griffin {
void Workspace::Reserve(const GriffinConfig& config, int tokens) {
  const size_t T = tokens, D = config.hidden_size, R = config.lru_width;
  const size_t q_width =
      static_cast<size_t>(config.num_heads) * config.head_dim;
  const size_t kv_width =
      static_cast<size_t>(config.num_kv_heads) * config.head_dim;
  const size_t F = config.mlp_width;
  for (std::vector<float>* b : {&x, &normed, &out, &head_in}) {
    GrowToAtLeast(*b, T * D);
  }
  GrowToAtLeast(x_y, T * 2 * R);
  for (std::vector<float>* b : {&conv, &lru_a, &lru_b}) {
    GrowToAtLeast(*b, T * R);
  }
  GrowToAtLeast(qkv, T * (q_width + 2 * kv_width));
  GrowToAtLeast(attended, T * q_width);
  GrowToAtLeast(mlp, T * 2 * F);
  if (gate_rows.size() < static_cast<size_t>(config.num_heads)) {
    gate_rows.resize(config.num_heads);
  }
}

namespace {

// c row i = the causal depthwise conv of the x half of x_y rows (row stride
// ld) at token i; inputs before its chunk come from the slot's tail.
void ConvRow(const GriffinConfig& config, const RecurrentWeights& w,
             const float* tail, const RaggedBatch& plan, int64_t i,
             const float* u, size_t ld, float* c) {
  const int R = config.lru_width, K = config.conv_width;
  const int s = plan.chunk(i);
  const int j = static_cast<int>(i) - plan.begin(s);
  float* ci = c + i * R;
  std::memcpy(ci, w.conv_bias, sizeof(float) * R);
  for (int k = 0; k < K; ++k) {
    const int back = j - (K - 1) + k;  // chunk row, negative: tail
    const float* src =
        back >= 0 ? u + (plan.begin(s) + back) * ld : tail + (K - 1 + back) * R;
    const float* tap = &w.conv_taps[k * R];
    for (int ch = 0; ch < R; ++ch) ci[ch] += tap[ch] * src[ch];
  }
}

// Channels [ch_begin, ch_end) of one chunk: the RG-LRU scan h = a·h + b
// (h = b at position 0) in f32, sequential over the chunk's tokens, with
// out = h ⊙ gelu(y) written over a; then the chunk's last K-1 conv inputs
// become its tail. Channel blocks are independent, so one long sequence
// still spreads over the threads.
void ScanChannels(const GriffinConfig& config, const LayerWeights& layer,
                  const RaggedBatch& plan, int s, int ch_begin, int ch_end,
                  StatePool& pool, Workspace& ws) {
  const int R = config.lru_width, K = config.conv_width;
  const size_t ld = 2 * static_cast<size_t>(R);
  const float* u = ws.x_y.data();
  const float* y = u + R;
  float* a = ws.lru_a.data();
  const float* b = ws.lru_b.data();
  float* h = pool.Row<float>(layer.first_slab + 1, plan.slot(s));
  for (int i = plan.begin(s); i < plan.end(s); ++i) {
    const bool reset = plan.position(i) == 0;
    const size_t base = static_cast<size_t>(i) * R;
    for (int ch = ch_begin; ch < ch_end; ++ch) {
      h[ch] = reset ? b[base + ch] : a[base + ch] * h[ch] + b[base + ch];
      a[base + ch] = h[ch] * y[i * ld + ch];
    }
  }
  float* tail = pool.Row<float>(layer.first_slab, plan.slot(s));
  const int keep = std::max(0, K - 1 - plan.length(s));  // old rows needed
  const int width = ch_end - ch_begin;
  for (int r = 0; r < keep; ++r) {  // upwards: sources lie below
    std::memmove(tail + r * R + ch_begin,
                 tail + (r + K - 1 - keep) * R + ch_begin,
                 sizeof(float) * width);
  }
  for (int r = keep; r < K - 1; ++r) {
    const int token = plan.end(s) - (K - 1 - r);
    std::memcpy(tail + r * R + ch_begin, u + token * ld + ch_begin,
                sizeof(float) * width);
  }
}

// Tokens [begin, end) of the recurrent block up to the scan, all per token:
// gelu of the y half of x_y in place, the conv of its x half into c, the
// block-diagonal RG-LRU gates of c (one product per head on its slice) and
// their fusion with the decay into the scan's coefficients a and b. A
// one-token chunk (decode) is a single scan step: it runs here, its whole
// row at once, and its output row is prepared for the out product.
void RecurrentRows(const GriffinConfig& config, const LayerWeights& layer,
                   const RaggedBatch& plan, StatePool& pool, int64_t begin,
                   int64_t end, Workspace& ws) {
  const RecurrentWeights& w = layer.recurrent;
  const int R = config.lru_width, bw = R / config.num_heads;
  const size_t ld = 2 * static_cast<size_t>(R);
  float* x_y = ws.x_y.data();
  float* c = ws.conv.data();
  float* a = ws.lru_a.data();
  float* b = ws.lru_b.data();
  const int H = config.num_heads;
  for (int64_t i = begin; i < end; ++i) {
    cpu::GeluTanh(x_y + i * ld + R, R, x_y + i * ld + R);
    const float* tail =
        pool.Row<float>(layer.first_slab, plan.slot(plan.chunk(i)));
    ConvRow(config, w, tail, plan, i, x_y, ld, c);
    for (int h = 0; h < H; ++h) {
      w.input_gate[h].Prepare(static_cast<int>(i), c + i * R + h * bw,
                              ws.gate_rows[h]);
    }
  }
  for (int h = 0; h < H; ++h) {
    const size_t at = static_cast<size_t>(h) * bw;
    const int first = static_cast<int>(begin), last = static_cast<int>(end);
    w.recurrence_gate[h].ApplyPreparedRows(c + at, R, first, last,
                                           w.recurrence_gate_bias + at,
                                           ws.gate_rows[h], a + at, R);
    w.input_gate[h].ApplyPreparedRows(c + at, R, first, last,
                                      w.input_gate_bias + at, ws.gate_rows[h],
                                      b + at, R);
  }
  for (int64_t i = begin; i < end; ++i) {
    cpu::RgLruCoefficients(w.log_decay.data(), a + i * R, b + i * R, c + i * R,
                           R, plan.position(i) == 0, a + i * R, b + i * R);
    const int s = plan.chunk(i);
    if (plan.length(s) == 1) {
      ScanChannels(config, layer, plan, s, 0, R, pool, ws);
      w.out.weight.Prepare(static_cast<int>(i), a + i * R, ws.prepared);
    }
  }
}

}  // namespace

void RecurrentBlock(const GriffinConfig& config, const LayerWeights& layer,
                    const RaggedBatch& plan, const float* n, StatePool& pool,
                    Workspace& ws, float* out) {
  const RecurrentWeights& w = layer.recurrent;
  const int T = plan.tokens(), R = config.lru_width;
  const int bw = R / config.num_heads, K = config.conv_width;
  w.x_y.ApplyPrepared(n, T, ws.prepared, ws.x_y.data());
  w.out.weight.Reserve(T, ws.prepared);
  for (int h = 0; h < config.num_heads; ++h) {
    w.input_gate[h].Reserve(T, ws.gate_rows[h]);
  }
  // Tasks take whole blocks of rows, as the gates' products need.
  const int align = w.input_gate[0].row_alignment();
  const int64_t row_work = R * (5 * kTranscendental + K + 4 * bw);
  cpu::ParallelFor((T + align - 1) / align, TaskGrain(row_work * align),
                   [&](int64_t begin, int64_t end) {
                     RecurrentRows(config, layer, plan, pool, begin * align,
                                   std::min<int64_t>(T, end * align), ws);
                   });
  // Longer chunks scan in channel blocks, so one long sequence still spreads
  // over the threads; their rows are whole, and prepared, after every block.
  std::vector<int>& long_chunks = ws.long_chunks;
  long_chunks.clear();
  int64_t long_tokens = 0;
  for (int s = 0; s < plan.chunks(); ++s) {
    if (plan.length(s) == 1) continue;
    long_chunks.push_back(s);
    long_tokens += plan.length(s);
  }
  if (long_chunks.empty()) {
    w.out.ApplyPrepared(ws.lru_a.data(), T, ws.prepared, out);
    return;
  }
  constexpr int kChannelBlock = 16;
  const int blocks = (R + kChannelBlock - 1) / kChannelBlock;
  const int64_t chunk_items = static_cast<int64_t>(long_chunks.size());
  const int64_t tokens_per_chunk = long_tokens / chunk_items;
  ForEachItem(
      chunk_items * blocks, (tokens_per_chunk + K) * kChannelBlock * 4,
      [&](int64_t item) {
        const int ch_begin = static_cast<int>(item % blocks) * kChannelBlock;
        ScanChannels(config, layer, plan, long_chunks[item / blocks], ch_begin,
                     std::min(R, ch_begin + kChannelBlock), pool, ws);
      });
  ForEachItem(chunk_items, tokens_per_chunk * R, [&](int64_t item) {
    const int s = long_chunks[item];
    for (int i = plan.begin(s); i < plan.end(s); ++i) {
      w.out.weight.Prepare(i, ws.lru_a.data() + static_cast<size_t>(i) * R,
                           ws.prepared);
    }
  });
  w.out.ApplyPrepared(ws.lru_a.data(), T, ws.prepared, out);
}

void AttentionBlock(const GriffinConfig& config, const LayerWeights& layer,
                    const RaggedBatch& plan, const float* n, StatePool& pool,
                    Workspace& ws, float* out) {
  const AttentionWeights& w = layer.attention;
  const int T = plan.tokens(), H = config.num_heads, hd = config.head_dim;
  const int KVH = config.num_kv_heads, W = config.attention_window;
  const int q_width = H * hd, kv_width = KVH * hd, rot = config.rotary_dims;
  // Row i of qkv: q [H·hd], then k and v [KVH·hd each].
  const size_t ld = q_width + 2 * kv_width;
  float* qkv = ws.qkv.data();
  w.qkv.ApplyPrepared(n, T, ws.prepared, qkv);
  const int64_t rope_work = (H + KVH) * rot * 2 + rot * kTranscendental * 4;
  cpu::ParallelFor(T, TaskGrain(rope_work), [&](int64_t begin, int64_t end) {
    float* cos = ThreadScratch(rot);
    float* sin = cos + rot / 2;
    for (int64_t i = begin; i < end; ++i) {
      cpu::RotaryAngles(plan.position(i), rot, config.rope_theta, cos, sin);
      for (int h = 0; h < H + KVH; ++h) {  // the query heads, then the keys
        cpu::ApplyRotary(&qkv[i * ld + h * hd], rot, cos, sin);
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
  w.o.weight.Reserve(T, ws.prepared);
  const int64_t query_work = int64_t{4} * H * W * hd;
  cpu::ParallelFor(T, TaskGrain(query_work), [&](int64_t begin, int64_t end) {
    const float** keys =
        ThreadScratch<const float*>(2 * static_cast<size_t>(W));
    const float** values = keys + W;
    float* scores = ThreadScratch(W);
    for (int64_t i = begin; i < end; ++i) {
      const int s = plan.chunk(i), t = plan.position(i);
      const int t0 = plan.start(s), first = std::max(0, t - W + 1);
      const float* key_ring = pool.Row<float>(key_slab, plan.slot(s));
      const float* value_ring = pool.Row<float>(value_slab, plan.slot(s));
      for (int pos = first; pos <= t; ++pos) {
        // From the chunk, or from the ring for positions before it.
        if (pos >= t0) {
          keys[pos - first] = &qkv[(plan.begin(s) + pos - t0) * ld + q_width];
          values[pos - first] = keys[pos - first] + kv_width;
        } else {
          const size_t ring_row = static_cast<size_t>(pos % W) * kv_width;
          keys[pos - first] = key_ring + ring_row;
          values[pos - first] = value_ring + ring_row;
        }
      }
      for (int g = 0; g < KVH; ++g) {
        const size_t heads_at = static_cast<size_t>(g) * group * hd;
        cpu::AttendHeads(&qkv[i * ld + heads_at], group, hd, keys, values,
                         static_cast<size_t>(g) * hd, t - first + 1, scale,
                         scores, &attended[i * q_width + heads_at]);
      }
      w.o.weight.Prepare(static_cast<int>(i), &attended[i * q_width],
                         ws.prepared);
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
      const float* k = &qkv[(plan.begin(s) + pos - t0) * ld + q_width];
      const size_t to = static_cast<size_t>(pos % W) * kv_width;
      std::memcpy(key_ring + to, k, sizeof(float) * kv_width);
      std::memcpy(value_ring + to, k + kv_width, sizeof(float) * kv_width);
    }
  });
  w.o.ApplyPrepared(attended, T, ws.prepared, out);
}

void MlpBlock(const GriffinConfig& config, const LayerWeights& layer, int rows,
              const float* m, Workspace& ws, float* out) {
  const int F = config.mlp_width;
  float* gate_up = ws.mlp.data();
  layer.gate_up.ApplyPrepared(m, rows, ws.prepared, gate_up);
  layer.down.weight.Reserve(rows, ws.prepared);
  // BF16 reads only the prepared rows: each f32 row then lives in one
  // cache-resident row buffer instead of a [rows, F] pass through memory,
  // and the [rows, F] buffer is never allocated.
  const bool prepared_only =
      layer.down.weight.precision() == cpu::WeightPrecision::kBf16;
  float* act = nullptr;
  if (!prepared_only) {
    GrowToAtLeast(ws.mlp_act, static_cast<size_t>(rows) * F);
    act = ws.mlp_act.data();
  }
  cpu::ParallelFor(
      rows, TaskGrain(F * kTranscendental), [&](int64_t begin, int64_t end) {
        float* row = prepared_only ? ThreadScratch(F) : nullptr;
        for (int64_t r = begin; r < end; ++r) {
          const float* gate = gate_up + r * 2 * F;
          float* act_r = prepared_only ? row : act + r * F;
          cpu::GeluTanhMul(gate, gate + F, F, act_r);
          layer.down.weight.Prepare(static_cast<int>(r), act_r, ws.prepared);
        }
      });
  layer.down.ApplyPrepared(act, rows, ws.prepared, out);
}

}  // namespace slabserve::griffin
