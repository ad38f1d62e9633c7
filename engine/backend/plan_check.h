// The rules a step plan keeps on slots, checked by every backend before it
// touches state: each slot a plan names is allocated, a chunk's slot appears
// once among the chunks and is fed tokens, a fork copies between two slots,
// and a slot samples at most once a step. Only the scheduler writes plans,
// so a plan that breaks them is a bug there; a backend then fails the whole
// step with the INTERNAL status that names it, instead of indexing state
// out of range or racing two samplers of one slot.
#ifndef SLABSERVE_ENGINE_BACKEND_PLAN_CHECK_H_
#define SLABSERVE_ENGINE_BACKEND_PLAN_CHECK_H_

#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "engine/backend/backend.h"

namespace slabserve {

class PlanChecker {
 public:
  // For slots 0 .. capacity - 1.
  explicit PlanChecker(int capacity = 0);

  // OK, or INTERNAL naming the first entry that breaks a rule. Slots out of
  // range count as not allocated; `is_allocated` sees only those in range.
  absl::Status Check(const StepPlan& plan,
                     absl::FunctionRef<bool(int)> is_allocated);

 private:
  // Whether `slot` is marked in `marks` for this check; marks it.
  bool SeenBefore(std::vector<uint64_t>& marks, int slot) const;

  // By slot: the last check whose chunks, or samples, named it. Stamps
  // instead of flags, so a check clears nothing.
  std::vector<uint64_t> chunk_marks_, sample_marks_;
  uint64_t check_ = 0;
};

// What a step that failed as a whole returns: `status` for every chunk and
// sample, no snapshots.
StepResult FailedStep(const StepPlan& plan, const absl::Status& status);

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_BACKEND_PLAN_CHECK_H_
