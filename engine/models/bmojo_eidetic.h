// The long-term eidetic memory of a B'MOJO-F layer (slabserve extension):
// a bounded store of exact (key, value) pairs of tokens that left the
// in-context window with a high innovation score. It lives in one slab row
// per layer and slot, so it is copied, saved and restored with the rest of
// the constant-size state.
//
// Row layout (32-bit words): [count][entry 0]...[entry capacity-1], entry =
// [position (int32)][score (f32)][key (kv_width f32)][value (kv_width f32)].
#ifndef SLABSERVE_ENGINE_MODELS_BMOJO_EIDETIC_H_
#define SLABSERVE_ENGINE_MODELS_BMOJO_EIDETIC_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "engine/models/bmojo_config.h"

namespace slabserve::bmojo {

// The innovation score of one token for one SSM head: 1 − cos²(x, x̂), the
// part of the new value x that the state's read-out x̂ = S·B does not
// explain; 1 when either vector is zero.
float HeadInnovation(const float* x, const float* predicted, int size);

class EideticStore {
 public:
  static size_t RowBytes(int capacity, int kv_width) {
    return sizeof(int32_t) *
           (1 + static_cast<size_t>(capacity) * EntryWords(kv_width));
  }

  // A view of a slab row sized by RowBytes(config.capacity, kv_width).
  EideticStore(void* row, const EideticConfig& config, int window, int kv_width)
      : row_(static_cast<char*>(row)),
        config_(config),
        window_(window),
        kv_width_(kv_width) {}

  int size() const {
    int32_t count;
    std::memcpy(&count, row_, sizeof(count));
    return count;
  }
  int32_t position(int e) const {
    int32_t p;
    std::memcpy(&p, Entry(e), sizeof(p));
    return p;
  }
  float score(int e) const {
    float s;
    std::memcpy(&s, Entry(e) + sizeof(int32_t), sizeof(s));
    return s;
  }
  const float* key(int e) const {
    return reinterpret_cast<const float*>(Entry(e) + 2 * sizeof(int32_t));
  }
  const float* value(int e) const { return key(e) + kv_width_; }

  // Offers the token at position `candidate` (score r, its in-context key and
  // value) as it leaves the window. Admitted when r >= threshold; when the
  // window block of `candidate` (W positions) already holds topk_per_window
  // entries, or the store is full, the candidate competes with the
  // lowest-scored entry of that block, or of the store: the lower score is
  // dropped, and on a tie the older token. Returns whether it was admitted.
  bool Offer(int32_t candidate, float r, const float* key, const float* value);

 private:
  static size_t EntryWords(int kv_width) { return 2 + 2 * size_t(kv_width); }
  char* Entry(int e) const {
    return row_ + sizeof(int32_t) * (1 + e * EntryWords(kv_width_));
  }
  // The entry that loses first among those `in_scope` (lowest score, then
  // oldest), or -1 when none is.
  template <typename Scope>
  int Weakest(const Scope& in_scope) const;
  void Write(int e, int32_t position, float r, const float* key,
             const float* value);

  char* row_;
  const EideticConfig& config_;
  int window_;
  int kv_width_;
};

}  // namespace slabserve::bmojo

#endif  // SLABSERVE_ENGINE_MODELS_BMOJO_EIDETIC_H_
