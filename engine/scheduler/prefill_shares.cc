#include "engine/scheduler/prefill_shares.h"

#include <algorithm>
#include <numeric>

namespace slabserve {

std::vector<int> FairPrefillShares(const std::vector<int>& remaining,
                                   int budget) {
  std::vector<int> order(remaining.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return remaining[a] < remaining[b]; });
  std::vector<int> shares(remaining.size(), 0);
  for (size_t k = 0; k < order.size() && budget > 0; ++k) {
    const int left = static_cast<int>(order.size() - k);
    const int share = (budget + left - 1) / left;  // rounded up
    shares[order[k]] = std::min(remaining[order[k]], share);
    budget -= shares[order[k]];
  }
  return shares;
}

}  // namespace slabserve
