// The model kernels on a device against host references: the CPU engine's
// kernels (kernels/cpu) and the shared formulas (kernels/math) run over the
// same ragged batch. Every test skips without a CUDA device.
#include "kernels/cuda/model_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "kernels/cpu/norm_act.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/test_util.h"
#include "kernels/math/elementwise.h"

namespace slabserve::cuda {
namespace {

std::vector<float> Random(size_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want,
                float tolerance) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tolerance * (1.0f + std::fabs(want[i])))
        << "at " << i;
  }
}

// A ragged batch on host and device: chunks of (slot, start, length).
struct TestBatch {
  struct Chunk {
    int slot, start, length;
  };
  explicit TestBatch(const std::vector<Chunk>& chunks) : chunks(chunks) {
    begin.push_back(0);
    for (size_t s = 0; s < chunks.size(); ++s) {
      for (int j = 0; j < chunks[s].length; ++j) {
        token_chunk.push_back(static_cast<int>(s));
        position.push_back(chunks[s].start + j);
        ids.push_back(static_cast<int32_t>(3 * position.size() % 7));
      }
      begin.push_back(static_cast<int>(token_chunk.size()));
      slot.push_back(chunks[s].slot);
      start.push_back(chunks[s].start);
    }
    d_chunk = std::make_unique<DeviceVector<int>>(token_chunk);
    d_position = std::make_unique<DeviceVector<int>>(position);
    d_ids = std::make_unique<DeviceVector<int32_t>>(ids);
    d_begin = std::make_unique<DeviceVector<int>>(begin);
    d_slot = std::make_unique<DeviceVector<int>>(slot);
    d_start = std::make_unique<DeviceVector<int>>(start);
    device = {static_cast<int>(token_chunk.size()),
              static_cast<int>(chunks.size()),
              d_chunk->get(),
              d_position->get(),
              d_ids->get(),
              d_begin->get(),
              d_slot->get(),
              d_start->get()};
  }
  int tokens() const { return static_cast<int>(token_chunk.size()); }

  std::vector<Chunk> chunks;
  std::vector<int> token_chunk, position, begin, slot, start;
  std::vector<int32_t> ids;
  std::unique_ptr<DeviceVector<int>> d_chunk, d_position, d_begin, d_slot,
      d_start;
  std::unique_ptr<DeviceVector<int32_t>> d_ids;
  DeviceBatch device;
};

// A prefill from position 0, a decode, and a chunk continuing a prefill.
TestBatch MixedBatch() { return TestBatch({{2, 0, 6}, {0, 9, 1}, {1, 3, 4}}); }

TEST(ModelKernelsTest, NormsMatchCpu) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int rows = 5, D = 1000;
  const std::vector<float> x = Random(rows * D, 30.0f, 1);
  const std::vector<float> w = Random(D, 2.0f, 2), b = Random(D, 1.0f, 3);
  std::vector<float> rms(rows * D), ln(rows * D);
  cpu::RmsNorm(x.data(), rows, D, w.data(), 1e-6f, rms.data());
  cpu::LayerNorm(x.data(), rows, D, w.data(), b.data(), 1e-5f, ln.data());
  DeviceVector<float> dx(x), dw(w), db(b), dy(rows * D);
  ASSERT_EQ(RmsNormRows(dx.get(), nullptr, rows, D, dw.get(), 1e-6f, dy.get(),
                        nullptr),
            cudaSuccess);
  ExpectNear(dy.Read(), rms, 2e-7f);
  ASSERT_EQ(LayerNormRows(dx.get(), rows, D, dw.get(), db.get(), 1e-5f,
                          dy.get(), nullptr),
            cudaSuccess);
  ExpectNear(dy.Read(), ln, 2e-7f);
}

TEST(ModelKernelsTest, ElementwiseMatchHostFormulas) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int rows = 3, F = 300;
  const std::vector<float> in = Random(rows * 2 * F, 6.0f, 4);
  std::vector<float> want(rows * F);
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < F; ++j) {
      want[r * F + j] = math::GeGlu(in[r * 2 * F + j], in[r * 2 * F + F + j]);
    }
  }
  DeviceVector<float> din(in), dout(rows * F);
  ASSERT_EQ(GeGluRows(din.get(), rows, F, 2 * F, F, dout.get(), nullptr),
            cudaSuccess);
  ExpectNear(dout.Read(), want, 1e-6f);
  std::vector<float> capped = in;
  for (float& v : capped) v = math::SoftCap(v * 20.0f, 30.0f);
  std::vector<float> scaled = in;
  for (float& v : scaled) v *= 20.0f;
  DeviceVector<float> dcap(scaled);
  ASSERT_EQ(SoftCap(dcap.get(), scaled.size(), 30.0f, nullptr), cudaSuccess);
  ExpectNear(dcap.Read(), capped, 1e-6f);
}

TEST(ModelKernelsTest, RotaryMatchesCpu) {
  SKIP_WITHOUT_CUDA_DEVICE();
  TestBatch batch = MixedBatch();
  const int heads = 3, hd = 16, rot = 8;
  std::vector<float> x = Random(batch.tokens() * heads * hd, 2.0f, 5);
  DeviceVector<float> dx(x);
  ASSERT_EQ(
      ApplyRotary(batch.device, dx.get(), heads, hd, rot, 10000.0, nullptr),
      cudaSuccess);
  std::vector<float> cos(rot / 2), sin(rot / 2);
  for (int i = 0; i < batch.tokens(); ++i) {
    cpu::RotaryAngles(batch.position[i], rot, 10000.0, cos.data(), sin.data());
    for (int h = 0; h < heads; ++h) {
      cpu::ApplyRotary(&x[(i * heads + h) * hd], rot, cos.data(), sin.data());
    }
  }
  ExpectNear(dx.Read(), x, 1e-6f);
}

TEST(ModelKernelsTest, ConvAndRgLruScanMatchHostReference) {
  SKIP_WITHOUT_CUDA_DEVICE();
  TestBatch batch = MixedBatch();
  const int T = batch.tokens(), R = 64, K = 4, slots = 3;
  const std::vector<float> u = Random(T * R, 1.0f, 6);
  const std::vector<float> taps = Random(K * R, 0.5f, 7);
  const std::vector<float> bias = Random(R, 0.1f, 8);
  std::vector<float> tail = Random(slots * (K - 1) * R, 1.0f, 9);
  std::vector<float> h = Random(slots * R, 1.0f, 10);
  const std::vector<float> rgate = Random(T * R, 3.0f, 11);
  const std::vector<float> igate = Random(T * R, 3.0f, 12);
  const std::vector<float> y = Random(T * R, 1.0f, 13);
  std::vector<float> log_decay(R);
  for (int ch = 0; ch < R; ++ch) log_decay[ch] = math::RgLruLogDecay(ch * 0.1f);
  DeviceVector<float> du(u), dtaps(taps), dbias(bias), dtail(tail), dh(h),
      dr(rgate), di(igate), dy(y), dlog(log_decay), dc(T * R), dout(T * R);
  ASSERT_EQ(CausalConv(batch.device, du.get(), R, dtaps.get(), dbias.get(), R,
                       K, dtail.get(), dc.get(), nullptr),
            cudaSuccess);
  ASSERT_EQ(
      UpdateConvTail(batch.device, du.get(), R, R, K, dtail.get(), nullptr),
      cudaSuccess);
  ASSERT_EQ(RgLruScan(batch.device, dlog.get(), dr.get(), di.get(), dc.get(),
                      dy.get(), R, R, dh.get(), dout.get(), nullptr),
            cudaSuccess);
  // Host: the full input history per chunk is tail rows then chunk rows.
  std::vector<float> c(T * R), out(T * R);
  for (size_t s = 0; s < batch.chunks.size(); ++s) {
    const int slot = batch.slot[s], b = batch.begin[s],
              n = batch.chunks[s].length;
    std::vector<float> history(tail.begin() + slot * (K - 1) * R,
                               tail.begin() + (slot + 1) * (K - 1) * R);
    history.insert(history.end(), u.begin() + b * R, u.begin() + (b + n) * R);
    for (int j = 0; j < n; ++j) {
      for (int ch = 0; ch < R; ++ch) {
        float window[K];
        for (int k = 0; k < K; ++k) window[k] = history[(j + k) * R + ch];
        const int i = b + j;
        c[i * R + ch] =
            math::CausalConvChannel(&taps[ch], R, K, bias[ch], window);
        const bool reset = batch.position[i] == 0;
        const math::ScanStep step =
            math::RgLruCoefficients(log_decay[ch], rgate[i * R + ch],
                                    igate[i * R + ch], c[i * R + ch], reset);
        h[slot * R + ch] = math::RgLruUpdate(h[slot * R + ch], step, reset);
        out[i * R + ch] = h[slot * R + ch] * y[i * R + ch];
      }
    }
    std::copy(history.end() - (K - 1) * R, history.end(),
              tail.begin() + slot * (K - 1) * R);
  }
  ExpectNear(dc.Read(), c, 1e-6f);
  ExpectNear(dtail.Read(), tail, 0.0f);
  ExpectNear(dh.Read(), h, 1e-5f);
  ExpectNear(dout.Read(), out, 1e-5f);
}

TEST(ModelKernelsTest, LocalAttentionAndRingMatchSpec) {
  SKIP_WITHOUT_CUDA_DEVICE();
  // Window 4: the decode at position 9 and the chunk at 3..6 read the ring.
  TestBatch batch = MixedBatch();
  const int T = batch.tokens(), H = 4, KVH = 2, hd = 8, W = 4, slots = 3;
  const int kvw = KVH * hd;
  const std::vector<float> q = Random(T * H * hd, 1.0f, 14);
  const std::vector<float> k = Random(T * kvw, 1.0f, 15);
  const std::vector<float> v = Random(T * kvw, 1.0f, 16);
  std::vector<float> kring = Random(slots * W * kvw, 1.0f, 17);
  std::vector<float> vring = Random(slots * W * kvw, 1.0f, 18);
  DeviceVector<float> dq(q), dk(k), dv(v), dkr(kring), dvr(vring),
      dout(T * H * hd);
  ASSERT_EQ(
      LocalAttention(batch.device, dq.get(), dk.get(), dv.get(), dkr.get(),
                     dvr.get(), H, KVH, hd, W, dout.get(), nullptr),
      cudaSuccess);
  ASSERT_EQ(WriteRing(batch.device, dk.get(), dv.get(), kvw, W, dkr.get(),
                      dvr.get(), nullptr),
            cudaSuccess);
  std::vector<float> out(T * H * hd);
  for (int i = 0; i < T; ++i) {
    const int s = batch.token_chunk[i], t = batch.position[i];
    const int slot = batch.slot[s], t0 = batch.start[s];
    auto row = [&](const std::vector<float>& chunk,
                   const std::vector<float>& ring, int pos) {
      return pos >= t0 ? &chunk[(batch.begin[s] + pos - t0) * kvw]
                       : &ring[(slot * W + pos % W) * kvw];
    };
    for (int h = 0; h < H; ++h) {
      const int off = (h / (H / KVH)) * hd;
      std::vector<float> p;
      for (int pos = std::max(0, t - W + 1); pos <= t; ++pos) {
        float dot = 0.0f;
        for (int d = 0; d < hd; ++d) {
          dot += q[(i * H + h) * hd + d] * row(k, kring, pos)[off + d];
        }
        p.push_back(dot / std::sqrt(static_cast<float>(hd)));
      }
      cpu::SoftmaxInPlace(p.data(), static_cast<int>(p.size()));
      for (int d = 0; d < hd; ++d) {
        float acc = 0.0f;
        int j = 0;
        for (int pos = std::max(0, t - W + 1); pos <= t; ++pos, ++j) {
          acc += p[j] * row(v, vring, pos)[off + d];
        }
        out[(i * H + h) * hd + d] = acc;
      }
    }
  }
  for (size_t s = 0; s < batch.chunks.size(); ++s) {
    const int t0 = batch.start[s], end = t0 + batch.chunks[s].length;
    for (int pos = std::max(t0, end - W); pos < end; ++pos) {
      for (int e = 0; e < kvw; ++e) {
        const int from = (batch.begin[s] + pos - t0) * kvw + e;
        kring[(batch.slot[s] * W + pos % W) * kvw + e] = k[from];
        vring[(batch.slot[s] * W + pos % W) * kvw + e] = v[from];
      }
    }
  }
  ExpectNear(dout.Read(), out, 1e-5f);
  ExpectNear(dkr.Read(), kring, 0.0f);
  ExpectNear(dvr.Read(), vring, 0.0f);
}

TEST(ModelKernelsTest, SrmMixMatchesHostSteps) {
  SKIP_WITHOUT_CUDA_DEVICE();
  TestBatch batch = MixedBatch();
  const int T = batch.tokens(), D = 32, H = 4, N = 16, e = D / H, slots = 3;
  std::vector<float> p = Random(T * D, 1.0f, 19);
  std::vector<float> state = Random(slots * D, 1.0f, 20);
  const std::vector<float> w = Random(H * N, 1.0f, 21);
  const std::vector<float> b = Random(H * N, 0.2f, 22);
  const std::vector<float> decay = {0.9f, 1.0f, 0.95f, 0.99f};
  DeviceVector<float> dp(p), dstate(state), dw(w), db(b), dd(decay);
  ASSERT_EQ(SrmMix(batch.device, dp.get(), D, H, N, dw.get(), db.get(),
                   dd.get(), dstate.get(), nullptr),
            cudaSuccess);
  for (int i = 0; i < T; ++i) {
    const int slot = batch.slot[batch.token_chunk[i]], t = batch.position[i];
    for (int ch = 0; ch < D; ++ch) {
      const int k = ch / e;
      float& st = state[slot * D + ch];
      float& y = p[i * D + ch];
      y = k < H / 2
              ? math::SrmColumnStep(st, y, decay[k], w[k * N + t], b[k * N + t])
              : math::SrmRowStep(st, y, decay[k], w[k * N + t], b[k * N + t]);
    }
  }
  ExpectNear(dp.Read(), p, 1e-5f);
  ExpectNear(dstate.Read(), state, 1e-5f);
}

TEST(ModelKernelsTest, EmbeddingGatherScales) {
  SKIP_WITHOUT_CUDA_DEVICE();
  TestBatch batch = MixedBatch();
  const int V = 7, D = 10;
  const std::vector<float> table = Random(V * D, 1.0f, 23);
  std::vector<uint16_t> bf16(table.size());
  for (size_t i = 0; i < table.size(); ++i) bf16[i] = math::Bf16Bits(table[i]);
  DeviceVector<float> dtable(table), dx(batch.tokens() * D);
  DeviceVector<uint16_t> dbf16(bf16);
  std::vector<float> want(batch.tokens() * D), want_bf16(want.size());
  for (int i = 0; i < batch.tokens(); ++i) {
    for (int d = 0; d < D; ++d) {
      want[i * D + d] = table[batch.ids[i] * D + d] * 9.8125f;
      want_bf16[i * D + d] =
          math::Bf16ToFloat(bf16[batch.ids[i] * D + d]) * 9.8125f;
    }
  }
  ASSERT_EQ(
      EmbedTokens(batch.device, dtable.get(), D, 9.8125f, dx.get(), nullptr),
      cudaSuccess);
  ExpectNear(dx.Read(), want, 0.0f);
  ASSERT_EQ(
      EmbedTokensBf16(batch.device, dbf16.get(), D, 9.8125f, dx.get(), nullptr),
      cudaSuccess);
  ExpectNear(dx.Read(), want_bf16, 0.0f);
}

}  // namespace
}  // namespace slabserve::cuda
