// An LRU cache, bounded in bytes, of sequence states after token prefixes.
// A new prompt that starts with a cached prefix restores that state and
// prefills only the rest; a cached whole prompt also keeps the logits of its
// last token, so an identical prompt needs no forward pass at all.
//
// Entries are backend snapshots (engine/backend/backend.h), opaque to the
// cache and the scheduler: the state and those logits stay wherever the
// backend keeps them (host or device memory), and restoring a whole-prompt
// entry lets the backend sample the first tokens from the saved logits with
// the request's own seeds, exactly as if the prompt had just been run.
#ifndef SLABSERVE_ENGINE_SCHEDULER_PREFIX_CACHE_H_
#define SLABSERVE_ENGINE_SCHEDULER_PREFIX_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "engine/backend/backend.h"

namespace slabserve {

// Prefill chunks that stop inside a prompt stop on multiples of this, and the
// state there is cached, so prompts sharing a long head (a system prompt)
// find a common entry.
inline constexpr int kPrefixCacheBlockTokens = 64;

struct CachedPrefix {
  std::vector<int32_t> tokens;
  // After feeding `tokens`; has_logits() when it also holds the logits of
  // the last token.
  std::shared_ptr<const SlotSnapshot> snapshot;
};

class PrefixCache {
 public:
  explicit PrefixCache(size_t capacity_bytes);

  // The longest entry usable for `prompt`: a proper prefix of it, or the
  // whole prompt when the entry's snapshot has logits. Null when none. The
  // pointer is valid until the next Insert.
  const CachedPrefix* Lookup(absl::Span<const int32_t> prompt);

  // Stores (or refreshes) the state after `tokens`, evicting the least
  // recently used entries beyond the byte capacity. An entry larger than the
  // whole capacity is not stored.
  void Insert(absl::Span<const int32_t> tokens,
              std::shared_ptr<const SlotSnapshot> snapshot);

  // Evicts the least recently used entry whose snapshot holds per-token
  // state blocks; whether there was one.
  bool EvictOnePinningBlocks();

  // What the entries hold themselves (blocks they share are counted by the
  // backend's block pool, not here).
  size_t bytes() const { return bytes_; }
  int entries() const { return static_cast<int>(lru_.size()); }
  // Blocks the entries hold references to (a block shared by several
  // entries, or with a slot, is counted by each).
  int pinned_blocks() const { return pinned_blocks_; }

 private:
  using Entries = std::list<CachedPrefix>;  // most recently used first

  static size_t Cost(const CachedPrefix& entry);
  void Erase(Entries::iterator it);
  // The entry whose tokens equal `tokens`, with `hash` their PrefixHash.
  Entries::iterator Find(uint64_t hash, absl::Span<const int32_t> tokens);

  const size_t capacity_bytes_;
  size_t bytes_ = 0;
  int pinned_blocks_ = 0;
  Entries lru_;
  absl::flat_hash_map<uint64_t, Entries::iterator> by_hash_;
  std::map<int, int> entries_per_length_;  // candidate lengths for Lookup
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_SCHEDULER_PREFIX_CACHE_H_
