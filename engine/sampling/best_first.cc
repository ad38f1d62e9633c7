#include "engine/sampling/best_first.h"

#include <algorithm>
#include <array>
#include <utility>

#include "kernels/math/sampling.h"

namespace slabserve {
namespace {

// An id below its logit's key (OrderedBits inverted, so that ascending is
// best first): plain integer order is best-first order, ties by id.
uint64_t Entry(absl::Span<const float> logits, int32_t id) {
  return uint64_t{~math::OrderedBits(logits[id])} << 32 |
         static_cast<uint32_t>(id);
}

// Below this many entries a comparison sort is quicker than radix passes.
constexpr size_t kRadixFrom = 512;
constexpr int kDigitBits = 11;
constexpr uint32_t kDigits = 1u << kDigitBits;

// Sorts entries whose ids increase (a stable pass keeps equal keys in id
// order): least significant key digit first, 3 passes of 11 bits.
void RadixSort(std::vector<uint64_t>* entries, std::vector<uint64_t>* spare) {
  auto digit = [](uint64_t entry, int pass) {
    return static_cast<uint32_t>(entry >> (32 + pass * kDigitBits)) &
           (kDigits - 1);
  };
  std::array<std::array<uint32_t, kDigits>, 3> counts{};
  for (uint64_t entry : *entries) {
    for (int pass = 0; pass < 3; ++pass) ++counts[pass][digit(entry, pass)];
  }
  spare->resize(entries->size());
  for (int pass = 0; pass < 3; ++pass) {
    std::array<uint32_t, kDigits>& starts = counts[pass];
    // Every key has the same digit here: the pass would move nothing.
    if (starts[digit(entries->front(), pass)] == entries->size()) continue;
    uint32_t next = 0;
    for (uint32_t& start : starts) next += std::exchange(start, next);
    for (uint64_t entry : *entries)
      (*spare)[starts[digit(entry, pass)]++] = entry;
    entries->swap(*spare);
  }
}

void SortEntries(std::vector<uint64_t>* entries, std::vector<uint64_t>* spare) {
  if (entries->size() < kRadixFrom) {
    std::sort(entries->begin(), entries->end());
  } else {
    RadixSort(entries, spare);
  }
}

}  // namespace

void SortBestFirst(absl::Span<const float> logits, std::vector<int32_t>* ids,
                   BestFirstScratch* scratch) {
  std::vector<uint64_t>& entries = scratch->entries;
  entries.resize(ids->size());
  for (size_t i = 0; i < ids->size(); ++i)
    entries[i] = Entry(logits, (*ids)[i]);
  SortEntries(&entries, &scratch->spare);
  for (size_t i = 0; i < ids->size(); ++i) {
    (*ids)[i] = static_cast<int32_t>(entries[i]);
  }
}

void BestIds(absl::Span<const float> logits, int n, std::vector<int32_t>* ids,
             BestFirstScratch* scratch) {
  const size_t keep = std::min<size_t>(std::max(n, 0), logits.size());
  if (keep == 0) {
    ids->clear();
    return;
  }
  if (keep * 16 < logits.size()) {
    // A few best of many: a heap of them over one pass, which mostly costs a
    // float comparison per id.
    ids->resize(logits.size());
    for (size_t id = 0; id < ids->size(); ++id) {
      (*ids)[id] = static_cast<int32_t>(id);
    }
    std::partial_sort(ids->begin(), ids->begin() + keep, ids->end(),
                      [&](int32_t a, int32_t b) {
                        const float x = logits[a], y = logits[b];
                        if (x > y) return true;
                        if (x < y) return false;
                        // Equal, or a NaN: NaN goes last, then by id.
                        if ((x != x) != (y != y)) return y != y;
                        return a < b;
                      });
    ids->resize(keep);
    return;
  }
  std::vector<uint64_t>& entries = scratch->entries;
  entries.resize(logits.size());
  for (size_t id = 0; id < logits.size(); ++id) {
    entries[id] = Entry(logits, static_cast<int32_t>(id));
  }
  SortEntries(&entries, &scratch->spare);
  ids->resize(keep);
  for (size_t i = 0; i < keep; ++i)
    (*ids)[i] = static_cast<int32_t>(entries[i]);
}

}  // namespace slabserve
