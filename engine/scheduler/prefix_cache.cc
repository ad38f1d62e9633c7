#include "engine/scheduler/prefix_cache.h"

#include <algorithm>

namespace slabserve {
namespace {

// Hashes of every prefix of `tokens`: hashes[L] covers tokens[0, L).
std::vector<uint64_t> PrefixHashes(absl::Span<const int32_t> tokens) {
  std::vector<uint64_t> hashes(tokens.size() + 1);
  uint64_t h = 0xcbf29ce484222325ull;
  hashes[0] = h;
  for (size_t i = 0; i < tokens.size(); ++i) {
    h ^= static_cast<uint32_t>(tokens[i]);
    h *= 0x100000001b3ull;
    h ^= h >> 29;
    hashes[i + 1] = h;
  }
  return hashes;
}

}  // namespace

PrefixCache::PrefixCache(size_t capacity_bytes)
    : capacity_bytes_(capacity_bytes) {}

size_t PrefixCache::Cost(const CachedPrefix& entry) {
  constexpr size_t kOverhead = 128;  // list node, map slot, vector headers
  return kOverhead + entry.tokens.size() * sizeof(int32_t) +
         entry.snapshot->bytes();
}

PrefixCache::Entries::iterator PrefixCache::Find(
    uint64_t hash, absl::Span<const int32_t> tokens) {
  auto found = by_hash_.find(hash);
  if (found == by_hash_.end()) return lru_.end();
  const std::vector<int32_t>& stored = found->second->tokens;
  if (!std::equal(stored.begin(), stored.end(), tokens.begin(), tokens.end())) {
    return lru_.end();
  }
  return found->second;
}

const CachedPrefix* PrefixCache::Lookup(absl::Span<const int32_t> prompt) {
  if (lru_.empty()) return nullptr;
  const std::vector<uint64_t> hashes = PrefixHashes(prompt);
  const int limit = static_cast<int>(prompt.size());
  for (auto it = entries_per_length_.upper_bound(limit);
       it != entries_per_length_.begin();) {
    --it;
    const int length = it->first;
    auto entry = Find(hashes[length], prompt.subspan(0, length));
    if (entry == lru_.end()) continue;
    if (length == limit && !entry->snapshot->has_logits()) continue;
    lru_.splice(lru_.begin(), lru_, entry);
    return &*entry;
  }
  return nullptr;
}

void PrefixCache::Insert(absl::Span<const int32_t> tokens,
                         std::shared_ptr<const SlotSnapshot> snapshot) {
  const uint64_t hash = PrefixHashes(tokens).back();
  auto existing = Find(hash, tokens);
  if (existing != lru_.end()) {
    // Same prefix, same state: only gain logits if they were missing.
    if (existing->snapshot->has_logits() || !snapshot->has_logits()) {
      lru_.splice(lru_.begin(), lru_, existing);
      return;
    }
    Erase(existing);
  } else if (auto clash = by_hash_.find(hash); clash != by_hash_.end()) {
    Erase(clash->second);  // a different prefix with the same hash
  }
  CachedPrefix entry{std::vector<int32_t>(tokens.begin(), tokens.end()),
                     std::move(snapshot)};
  const size_t cost = Cost(entry);
  if (cost > capacity_bytes_) return;
  while (bytes_ + cost > capacity_bytes_) Erase(std::prev(lru_.end()));
  lru_.push_front(std::move(entry));
  by_hash_[hash] = lru_.begin();
  ++entries_per_length_[static_cast<int>(tokens.size())];
  bytes_ += cost;
  pinned_blocks_ += lru_.front().snapshot->blocks();
}

bool PrefixCache::EvictOnePinningBlocks() {
  for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
    if (it->snapshot->blocks() == 0) continue;
    Erase(std::next(it).base());
    return true;
  }
  return false;
}

void PrefixCache::Erase(Entries::iterator it) {
  const int length = static_cast<int>(it->tokens.size());
  by_hash_.erase(PrefixHashes(it->tokens).back());
  if (--entries_per_length_[length] == 0) entries_per_length_.erase(length);
  bytes_ -= Cost(*it);
  pinned_blocks_ -= it->snapshot->blocks();
  lru_.erase(it);
}

}  // namespace slabserve
