// Ordering a row's token ids best first: larger logits first, equal logits
// (the two zeros count as equal) by id, NaN last. The sampler's top-k and
// top-p walk candidates in this order, so it must not depend on how a sort
// works inside.
#ifndef SLABSERVE_ENGINE_SAMPLING_BEST_FIRST_H_
#define SLABSERVE_ENGINE_SAMPLING_BEST_FIRST_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace slabserve {

// Buffers reused from call to call, so that ordering allocates nothing once
// they have grown to the vocabulary.
struct BestFirstScratch {
  std::vector<uint64_t> entries, spare;
};

// Sorts `ids` (distinct ids of `logits`, in increasing id order) best first.
// Linear time for long lists (a radix sort on the logits' bits), so ordering
// a whole vocabulary costs a few passes over it.
void SortBestFirst(absl::Span<const float> logits, std::vector<int32_t>* ids,
                   BestFirstScratch* scratch);

// Sets *ids to the `n` best ids of `logits` (all of them if n is larger),
// best first.
void BestIds(absl::Span<const float> logits, int n, std::vector<int32_t>* ids,
             BestFirstScratch* scratch);

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_SAMPLING_BEST_FIRST_H_
