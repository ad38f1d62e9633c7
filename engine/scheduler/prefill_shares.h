// How a step's prompt-token budget is split between the prompts being
// prefilled.
#ifndef SLABSERVE_ENGINE_SCHEDULER_PREFILL_SHARES_H_
#define SLABSERVE_ENGINE_SCHEDULER_PREFILL_SHARES_H_

#include <vector>

namespace slabserve {

// Tokens each prompt feeds this step, for prompts with `remaining` tokens
// left and `budget` tokens to give. In order of fewest remaining, each takes
// at most an equal share of what is still left: a short prompt is prefilled
// in one step however long the prompts beside it (no head-of-line blocking
// behind a huge prompt), and what short ones leave goes to the long ones.
// The shares sum to min(budget, Σ remaining).
std::vector<int> FairPrefillShares(const std::vector<int>& remaining,
                                   int budget);

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_SCHEDULER_PREFILL_SHARES_H_
