#include "engine/models/bmojo_layers.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/models/bmojo_attention.h"
#include "engine/models/bmojo_eidetic.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/vector_math.h"

namespace slabserve::bmojo {

void Workspace::Reserve(const BmojoConfig& c, int tokens) {
  const size_t T = tokens, d = c.hidden_size, H = c.num_heads;
  for (std::vector<float>* b : {&x, &normed, &out, &head_in, &fading}) {
    GrowToAtLeast(*b, T * d);
  }
  for (std::vector<float>* b : {&q, &attended, &y}) {
    GrowToAtLeast(*b, T * c.d_inner());
  }
  for (std::vector<float>* b : {&k, &v, &kf, &vf}) {
    GrowToAtLeast(*b, T * c.d_xb());
  }
  GrowToAtLeast(zxbcdt, T * c.in_proj_rows());
  GrowToAtLeast(xbc, T * c.conv_channels());
  for (std::vector<float>* b : {&dt, &decay, &innovation}) {
    GrowToAtLeast(*b, T * H);
  }
  GrowToAtLeast(gate, T * c.intermediate_size);
  GrowToAtLeast(up, T * c.intermediate_size);
}

void NormAndRope(const BmojoConfig& c, const RaggedBatch& plan,
                 const std::vector<float>& weight, int heads, float* x) {
  const int D = c.head_dim, width = heads * D;
  ForEachItem(plan.tokens(), heads * D * 8 + D * kTranscendental,
              [&](int64_t i) {
                float* cos = ThreadScratch(D);
                float* sin = cos + D / 2;
                cpu::RotaryAngles(plan.position(i), D, c.rope_theta, cos, sin);
                for (int h = 0; h < heads; ++h) {
                  float* xh = x + i * width + h * D;
                  cpu::RmsNorm(xh, 1, D, weight.data(), c.rms_norm_eps, xh);
                  cpu::ApplyRotary(xh, D, cos, sin);
                }
              });
}

namespace {

// q, k, v of n with q/k norms and RoPE; k and v also of `fading` when given.
void Project(const BmojoConfig& c, const AttentionWeights& w,
             const RaggedBatch& plan, const float* n, const float* fading,
             Workspace& ws) {
  const int T = plan.tokens();
  w.q.ApplyPrepared(n, T, ws.prepared, ws.q.data());
  w.k.ApplyPrepared(n, T, ws.prepared, ws.k.data());
  w.v.ApplyPrepared(n, T, ws.prepared, ws.v.data());
  NormAndRope(c, plan, w.q_norm, c.num_heads, ws.q.data());
  NormAndRope(c, plan, w.k_norm, c.num_kv_heads, ws.k.data());
  if (fading == nullptr) return;
  w.k.Apply(fading, T, ws.kf.data());
  w.v.Apply(fading, T, ws.vf.data());
  NormAndRope(c, plan, w.k_norm, c.num_kv_heads, ws.kf.data());
}

// Where a B'MOJO-F query finds its keys: chunk rows for positions of the
// chunk, ring entries for older ones.
struct BmfKeys {
  const BmojoConfig& c;
  const RaggedBatch& plan;
  const Workspace& ws;
  int first_slab;

  // The attended row of token row i, head h, over the in-context window,
  // the fading window and `store` (may be null).
  void Attend(int i, int h, StatePool& pool, const EideticStore* store,
              float* attended) const {
    const int s = plan.chunk(i), t = plan.position(i), t0 = plan.start(s);
    const int W = c.window, D = c.head_dim, kvw = c.d_xb();
    const int offset = (h / c.group()) * D;
    const float* context =
        pool.Row<float>(first_slab + kContextRing, plan.slot(s));
    const float* fading =
        pool.Row<float>(first_slab + kFadingRing, plan.slot(s));
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    SoftmaxSum sum(&ws.q[static_cast<size_t>(i) * c.d_inner() + h * D], D,
                   scale, attended, ThreadScratch(kKeyTile));
    // Keys of positions first, first + 1, ... from rows k/v of the chunk or
    // entries [k | v] of a ring of `ring_size`.
    auto stream = [&](int first, const float* k, const float* v,
                      const float* ring, int ring_size) {
      return [&, first, k, v, ring, ring_size](int j, const float** key,
                                               const float** value) {
        const int pos = first + j;
        if (pos >= t0) {
          const size_t row =
              static_cast<size_t>(plan.begin(s) + pos - t0) * kvw + offset;
          *key = k + row;
          *value = v + row;
        } else {
          *key = ring + static_cast<size_t>(pos % ring_size) * 2 * kvw + offset;
          *value = *key + kvw;
        }
      };
    };
    const int first = std::max(0, t - W + 1);
    sum.Add(t - first + 1,
            stream(first, ws.k.data(), ws.v.data(), context, W - 1));
    if (t >= W) {
      const int fading_first = std::max(0, t - 2 * W + 1);
      sum.Add(
          t - W - fading_first + 1,
          stream(fading_first, ws.kf.data(), ws.vf.data(), fading, 2 * W - 1));
    }
    if (store != nullptr) {
      sum.Add(store->size(),
              [&](int e, const float** key, const float** value) {
                *key = store->key(e) + offset;
                *value = store->value(e) + offset;
              });
    }
    sum.Finish();
  }

  // Offers the token leaving the in-context window after row i's step.
  void OfferLeaving(int i, StatePool& pool, EideticStore& store) const {
    const int s = plan.chunk(i), t0 = plan.start(s), kvw = c.d_xb();
    const int leaving = plan.position(i) - c.window + 1;
    if (leaving < 0) return;
    if (leaving >= t0) {
      const int row = plan.begin(s) + leaving - t0;
      store.Offer(leaving, Innovation(row), &ws.k[size_t(row) * kvw],
                  &ws.v[size_t(row) * kvw]);
      return;
    }
    const int entry = leaving % (c.window - 1);
    const float* kv = pool.Row<float>(first_slab + kContextRing, plan.slot(s)) +
                      static_cast<size_t>(entry) * 2 * kvw;
    const float r =
        pool.Row<float>(first_slab + kContextScores, plan.slot(s))[entry];
    store.Offer(leaving, r, kv, kv + kvw);
  }

  // r of token row i: the mean of its heads' innovations.
  float Innovation(int i) const {
    float sum = 0.0f;
    for (int h = 0; h < c.num_heads; ++h) {
      sum += ws.innovation[static_cast<size_t>(i) * c.num_heads + h];
    }
    return sum / static_cast<float>(c.num_heads);
  }

  // Each chunk's last W−1 in-context and 2W−1 fading pairs enter the rings.
  void WriteRings(StatePool& pool) const {
    const int W = c.window, kvw = c.d_xb();
    const bool scores = c.eidetic.enabled();
    ForEachItem(plan.chunks(), 6 * W * kvw, [&](int64_t s) {
      float* context = pool.Row<float>(first_slab + kContextRing, plan.slot(s));
      float* fading = pool.Row<float>(first_slab + kFadingRing, plan.slot(s));
      const int t0 = plan.start(s), t_end = t0 + plan.length(s);
      auto put = [&](float* ring, int ring_size, const std::vector<float>& k,
                     const std::vector<float>& v) {
        for (int pos = std::max(t0, t_end - ring_size); pos < t_end; ++pos) {
          const size_t row = static_cast<size_t>(plan.begin(s) + pos - t0);
          float* entry = ring + static_cast<size_t>(pos % ring_size) * 2 * kvw;
          std::memcpy(entry, &k[row * kvw], sizeof(float) * kvw);
          std::memcpy(entry + kvw, &v[row * kvw], sizeof(float) * kvw);
          if (scores && ring == context) {
            pool.Row<float>(first_slab + kContextScores,
                            plan.slot(s))[pos % ring_size] =
                Innovation(static_cast<int>(row));
          }
        }
      };
      put(context, W - 1, ws.k, ws.v);
      put(fading, 2 * W - 1, ws.kf, ws.vf);
    });
  }
};

}  // namespace

void FullAttentionLayer(const BmojoConfig& c, const LayerWeights& layer,
                        const RaggedBatch& plan, const float* n,
                        StatePool& pool, Workspace& ws, float* out) {
  const int T = plan.tokens(), H = c.num_heads, D = c.head_dim;
  const int kvw = c.d_xb(), kind = layer.token_kind;
  const int block_tokens = pool.block_tokens();
  Project(c, layer.attention, plan, n, nullptr, ws);
  ForEachItem(T, 2 * kvw, [&](int64_t i) {
    float* row =
        pool.TokenRow<float>(kind, plan.slot(plan.chunk(i)), plan.position(i));
    std::memcpy(row, &ws.k[i * kvw], sizeof(float) * kvw);
    std::memcpy(row + kvw, &ws.v[i * kvw], sizeof(float) * kvw);
  });
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  // Work per item: the first chunk's last query stands for the batch.
  const int64_t keys = plan.start(0) + plan.length(0);
  ForEachItem(int64_t{T} * H, 4 * D * keys, [&](int64_t item) {
    const int i = static_cast<int>(item / H), h = static_cast<int>(item % H);
    const int slot = plan.slot(plan.chunk(i)), offset = (h / c.group()) * D;
    float* attended =
        &ws.attended[static_cast<size_t>(i) * c.d_inner() + h * D];
    SoftmaxSum sum(&ws.q[static_cast<size_t>(i) * c.d_inner() + h * D], D,
                   scale, attended, ThreadScratch(kKeyTile));
    // Rows of one kind are contiguous within a block: one table lookup per
    // block, not per key.
    int block_begin = -1;
    const float* block = nullptr;
    sum.Add(plan.position(i) + 1, [&](int pos, const float** key,
                                      const float** value) {
      if (block == nullptr || pos < block_begin ||
          pos >= block_begin + block_tokens) {
        block_begin = pos - pos % block_tokens;
        block = pool.TokenRow<float>(kind, slot, block_begin);
      }
      *key = block + static_cast<size_t>(pos - block_begin) * 2 * kvw + offset;
      *value = *key + kvw;
    });
    sum.Finish();
  });
  layer.attention.o.Apply(ws.attended.data(), T, out);
}

void BmojoFLayer(const BmojoConfig& c, const LayerWeights& layer,
                 const RaggedBatch& plan, const float* n, StatePool& pool,
                 Workspace& ws, float* out) {
  MambaFading(c, layer, plan, n, pool, ws);
  Project(c, layer.attention, plan, n, ws.fading.data(), ws);
  const int T = plan.tokens(), H = c.num_heads, D = c.head_dim;
  const BmfKeys keys{c, plan, ws, layer.first_slab};
  auto attended = [&](int i, int h) {
    return &ws.attended[static_cast<size_t>(i) * c.d_inner() + h * D];
  };
  const int64_t work = int64_t{4} * D * 3 * c.window;
  if (!c.eidetic.enabled()) {
    ForEachItem(int64_t{T} * H, work, [&](int64_t item) {
      const int i = static_cast<int>(item / H), h = static_cast<int>(item % H);
      keys.Attend(i, h, pool, nullptr, attended(i, h));
    });
  } else {
    // The store changes after every token, so a chunk's tokens go in order.
    ForEachItem(plan.chunks(), work * H * (T / plan.chunks()), [&](int64_t s) {
      EideticStore store(
          pool.Row<char>(layer.first_slab + kMemoryStore, plan.slot(s)),
          c.eidetic, c.window, c.d_xb());
      for (int i = plan.begin(s); i < plan.end(s); ++i) {
        for (int h = 0; h < H; ++h) {
          keys.Attend(i, h, pool, &store, attended(i, h));
        }
        keys.OfferLeaving(i, pool, store);
      }
    });
  }
  keys.WriteRings(pool);
  layer.attention.o.Apply(ws.attended.data(), T, out);
}

void MlpLayer(const BmojoConfig& c, const LayerWeights& layer, int rows,
              const float* m, Workspace& ws, float* out) {
  const int I = c.intermediate_size;
  float* gate = ws.gate.data();
  float* up = ws.up.data();
  layer.gate.ApplyPrepared(m, rows, ws.prepared, gate);
  layer.up.ApplyPrepared(m, rows, ws.prepared, up);
  layer.down.weight.Reserve(rows, ws.prepared);
  ForEachItem(rows, I * (kTranscendental + 2), [&](int64_t r) {
    float* g = gate + r * I;
    cpu::Silu(g, I, g);
    const float* u = up + r * I;
    for (int k = 0; k < I; ++k) g[k] *= u[k];
    layer.down.weight.Prepare(static_cast<int>(r), g, ws.prepared);
  });
  layer.down.ApplyPrepared(gate, rows, ws.prepared, out);
}

}  // namespace slabserve::bmojo
