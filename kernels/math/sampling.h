// Token-selection formulas shared by device sampling and its CPU tests. They
// follow the definitions of engine/sampling/sampler.cc: penalties change a
// logit the same way, candidates are filtered (top-k, min-p, top-p) and
// drawn with the same double arithmetic, greedy ties go to the lowest id.
//
// Random numbers: the CPU sampler draws from one std::mt19937_64 per
// sequence. A device cannot cheaply keep that generator's 2.5 KB state per
// slot, and device logits differ from host ones in the last bits anyway, so
// device draws use a counter-based generator instead: Philox4x32-10 (Salmon
// et al., SC'11) keyed by the request's 64-bit seed, with the sequence's
// draw index (0 for its first sampled token, 1 for the next, ...) as the
// counter. A draw then depends only on (seed, index): no per-slot generator
// state to copy on fork or snapshot, and replaying a step replays its draws.
// The same seed gives a different (equally distributed) stream on the CPU
// and CUDA backends.
#ifndef SLABSERVE_KERNELS_MATH_SAMPLING_H_
#define SLABSERVE_KERNELS_MATH_SAMPLING_H_

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/math/host_device.h"

namespace slabserve::math {

struct Philox4x32 {
  uint32_t v[4];
};

// Philox4x32 with 10 rounds of `counter` under `key` (the Random123
// definition: multipliers 0xD2511F53, 0xCD9E8D57; Weyl key increments
// 0x9E3779B9, 0xBB67AE85).
SLAB_HD Philox4x32 Philox4x32x10(Philox4x32 counter, uint32_t key0,
                                 uint32_t key1) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * counter.v[0];
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * counter.v[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32);
    const uint32_t lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32);
    const uint32_t lo1 = static_cast<uint32_t>(p1);
    counter.v[0] = hi1 ^ counter.v[1] ^ key0;
    counter.v[1] = lo1;
    counter.v[2] = hi0 ^ counter.v[3] ^ key1;
    counter.v[3] = lo0;
    key0 += 0x9E3779B9u;
    key1 += 0xBB67AE85u;
  }
  return counter;
}

// A uniform double in [0, 1) for draw `index` of the sequence seeded with
// `seed`: the top 53 bits of the first two Philox words.
SLAB_HD double UniformDraw(uint64_t seed, uint64_t index) {
  Philox4x32 counter;
  counter.v[0] = static_cast<uint32_t>(index);
  counter.v[1] = static_cast<uint32_t>(index >> 32);
  counter.v[2] = 0;
  counter.v[3] = 0;
  const Philox4x32 out = Philox4x32x10(counter, static_cast<uint32_t>(seed),
                                       static_cast<uint32_t>(seed >> 32));
  const uint64_t bits =
      (static_cast<uint64_t>(out.v[0]) << 32) | static_cast<uint64_t>(out.v[1]);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

// Best first; equal values go to the lowest id.
SLAB_HD bool Better(float a, int32_t a_id, float b, int32_t b_id) {
  return a > b || (a == b && a_id < b_id);
}

// A logit after the penalties of a token seen `in_prompt` and/or generated
// `generated` times (sampler.cc: the repetition penalty divides a positive
// logit and multiplies a negative one of any seen token; presence and
// frequency subtract for generated tokens). Neutral parameters (1, 0, 0)
// leave every logit unchanged.
SLAB_HD float PenalizedLogit(float x, bool in_prompt, int generated,
                             float repetition, float presence,
                             float frequency) {
  if (repetition != 1.0f && (in_prompt || generated > 0)) {
    x = x > 0.0f ? x / repetition : x * repetition;
  }
  if ((presence != 0.0f || frequency != 0.0f) && generated > 0) {
    x -= presence + frequency * static_cast<float>(generated);
  }
  return x;
}

// exp((x − max) / temperature) in double: a candidate's weight relative to
// the best (sampler.cc's tempered probabilities).
SLAB_HD double TemperedWeight(float x, float max, double inverse_temperature) {
  return exp((static_cast<double>(x) - max) * inverse_temperature);
}

// The draw of sampler.cc over candidates already in the order it walks them
// (best first after top-k or for top-p; id order otherwise), given their
// logits and ids: min-p filter, top-p prefix, then the first candidate whose
// cumulative weight exceeds u·total. `weights` and `kept_ids` are scratch of
// n entries each. Returns the chosen id.
SLAB_HD int32_t DrawFromCandidates(const float* logits, const int32_t* ids,
                                   int n, float temperature, float min_p,
                                   float top_p, double u, double* weights,
                                   int32_t* kept_ids) {
  float max = -INFINITY;
  for (int i = 0; i < n; ++i) max = logits[i] > max ? logits[i] : max;
  const double inverse_temperature = 1.0 / temperature;
  // The best candidate weighs 1 >= min_p, so at least one stays (with a
  // finite best logit; callers take the greedy choice otherwise). A NaN
  // logit's weight is dropped, as in sampler.cc.
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    const double w = TemperedWeight(logits[i], max, inverse_temperature);
    if (!(w >= min_p)) continue;
    weights[kept] = w;
    kept_ids[kept] = ids[i];
    ++kept;
  }
  double total = 0.0;
  for (int i = 0; i < kept; ++i) total += weights[i];
  if (top_p < 1.0f) {
    const double target = top_p * total;
    double mass = 0.0;
    int m = 0;
    while (m < kept) {
      mass += weights[m++];
      if (mass >= target) break;
    }
    kept = m;
    total = mass;
  }
  const double point = u * total;
  double cumulative = 0.0;
  for (int i = 0; i < kept; ++i) {
    cumulative += weights[i];
    if (point < cumulative) return kept_ids[i];
  }
  return kept_ids[kept - 1];
}

// Large candidate sets (top-p over a whole vocabulary, a top-k of any size)
// without sorting: each filter keeps a best-first prefix (values down, equal
// values by id up), found by bisecting on the prefix's last token with sums
// over the vocabulary. The caller gives the sums: a loop on the host, a
// block reduction on a device; either way one fixed order.

// A logit's bits as an unsigned number in the order of the floats (the two
// zeros equal, NaN lowest): a negative number's bits all flipped, another's
// sign bit set. Selects rather than branches, as the host's sort keys every
// id of a row by it and signs come in no order a branch predicts.
SLAB_HD uint32_t OrderedBits(float x) {
  uint32_t bits;
  memcpy(&bits, &x, sizeof(bits));
  const uint32_t negative =
      static_cast<uint32_t>(static_cast<int32_t>(bits) >> 31);
  const uint32_t ordered =
      x == 0.0f ? 0x80000000u : bits ^ (negative | 0x80000000u);
  return x != x ? 0u : ordered;
}

// The end of a best-first prefix: every id whose logit orders above
// `value`, and those equal to it with an id up to `id`.
struct PrefixEnd {
  uint32_t value;
  int32_t id;
};

SLAB_HD bool InPrefix(float x, int32_t id, PrefixEnd end) {
  const uint32_t value = OrderedBits(x);
  return value > end.value || (value == end.value && id <= end.id);
}

// The shortest best-first prefix for which enough(mass(end)) holds, where
// `enough` turns true as the prefix grows and holds for the whole
// vocabulary. Bisects the value bits (32 steps), then the ids of equal
// values (log2 vocab): the prefix's last id is the one returned.
template <typename Mass, typename Enough>
SLAB_HD PrefixEnd ShortestPrefix(int vocab, const Mass& mass,
                                 const Enough& enough) {
  uint32_t value = 0;           // enough at {value, vocab}: every id
  uint64_t above = 1ull << 32;  // not enough from here up
  while (above - value > 1) {
    const uint32_t mid = static_cast<uint32_t>((value + above) / 2);
    if (enough(mass(PrefixEnd{mid, vocab}))) {
      value = mid;
    } else {
      above = mid;
    }
  }
  int32_t short_id = -1;   // {value, -1}: the values above only, not enough
  int32_t id = vocab - 1;  // the same ids as {value, vocab}: enough
  while (id - short_id > 1) {
    const int32_t mid = short_id + (id - short_id) / 2;
    if (enough(mass(PrefixEnd{value, mid}))) {
      id = mid;
    } else {
      short_id = mid;
    }
  }
  return {value, id};
}

// DrawFromCandidates over a whole row's best-first candidates (top-k of any
// size, min-p, top-p, then the cumulative draw), with sum(f) giving the sum
// of f(id) over every id of the row, always in the same order. `max` is the
// row's largest logit. A weight sum over a superset of ids is never smaller
// (each addition is monotone), so each bisection's premise holds.
template <typename Sum>
SLAB_HD int32_t DrawBestFirst(const float* row, int vocab, float max, int top_k,
                              float temperature, float min_p, float top_p,
                              double u, const Sum& sum) {
  PrefixEnd candidates = {0, vocab};  // every id
  if (top_k > 0 && top_k < vocab) {
    const auto count = [&](PrefixEnd end) {
      return sum(
          [&](int32_t id) { return InPrefix(row[id], id, end) ? 1.0 : 0.0; });
    };
    const double k = top_k;
    candidates = ShortestPrefix(vocab, count, [&](double n) { return n >= k; });
  }
  const double inverse_temperature = 1.0 / temperature;
  // The weight of each candidate min-p keeps within the prefix.
  const auto mass = [&](PrefixEnd end) {
    return sum([&](int32_t id) {
      if (!InPrefix(row[id], id, end) || !InPrefix(row[id], id, candidates)) {
        return 0.0;
      }
      const double w = TemperedWeight(row[id], max, inverse_temperature);
      return !(w >= min_p) ? 0.0 : w;  // NaN dropped too
    });
  };
  double total = mass(candidates);
  if (top_p < 1.0f) {
    const double target = top_p * total;
    total = mass(
        ShortestPrefix(vocab, mass, [&](double m) { return m >= target; }));
  }
  const double point = u * total;
  // As DrawFromCandidates: the last kept id where rounding leaves no
  // cumulative weight above the point.
  const auto past = [&](double m) {
    return point < total ? m > point : m >= total;
  };
  return ShortestPrefix(vocab, mass, past).id;
}

}  // namespace slabserve::math

#endif  // SLABSERVE_KERNELS_MATH_SAMPLING_H_
