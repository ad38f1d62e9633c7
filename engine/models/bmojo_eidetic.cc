#include "engine/models/bmojo_eidetic.h"

namespace slabserve::bmojo {

float HeadInnovation(const float* x, const float* predicted, int size) {
  double xx = 0.0, pp = 0.0, xp = 0.0;
  for (int i = 0; i < size; ++i) {
    xx += static_cast<double>(x[i]) * x[i];
    pp += static_cast<double>(predicted[i]) * predicted[i];
    xp += static_cast<double>(x[i]) * predicted[i];
  }
  if (xx == 0.0 || pp == 0.0) return 1.0f;
  const double cos2 = xp * xp / (xx * pp);
  return static_cast<float>(cos2 >= 1.0 ? 0.0 : 1.0 - cos2);
}

template <typename Scope>
int EideticStore::Weakest(const Scope& in_scope) const {
  int weakest = -1;
  for (int e = 0; e < size(); ++e) {
    if (!in_scope(e)) continue;
    if (weakest < 0 || score(e) < score(weakest) ||
        (score(e) == score(weakest) && position(e) < position(weakest))) {
      weakest = e;
    }
  }
  return weakest;
}

void EideticStore::Write(int e, int32_t position, float r, const float* key,
                         const float* value) {
  char* entry = Entry(e);
  std::memcpy(entry, &position, sizeof(position));
  std::memcpy(entry + sizeof(int32_t), &r, sizeof(r));
  float* kv = reinterpret_cast<float*>(entry + 2 * sizeof(int32_t));
  std::memcpy(kv, key, sizeof(float) * kv_width_);
  std::memcpy(kv + kv_width_, value, sizeof(float) * kv_width_);
}

bool EideticStore::Offer(int32_t candidate, float r, const float* key,
                         const float* value) {
  if (!(r >= config_.threshold) || config_.capacity <= 0) return false;
  // The candidate is the newest token, so it wins every tie.
  auto replace_weakest = [&](int weakest) {
    if (weakest < 0 || r < score(weakest)) return false;
    Write(weakest, candidate, r, key, value);
    return true;
  };
  if (config_.topk_per_window > 0) {
    const int32_t block = candidate / window_;
    int in_block = 0;
    for (int e = 0; e < size(); ++e) in_block += position(e) / window_ == block;
    if (in_block >= config_.topk_per_window) {
      return replace_weakest(
          Weakest([&](int e) { return position(e) / window_ == block; }));
    }
  }
  const int count = size();
  if (count < config_.capacity) {
    Write(count, candidate, r, key, value);
    const int32_t grown = count + 1;
    std::memcpy(row_, &grown, sizeof(grown));
    return true;
  }
  return replace_weakest(Weakest([](int) { return true; }));
}

}  // namespace slabserve::bmojo
