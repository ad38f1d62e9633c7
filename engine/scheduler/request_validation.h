// The checks Scheduler::Submit applies before queueing a request.
#ifndef SLABSERVE_ENGINE_SCHEDULER_REQUEST_VALIDATION_H_
#define SLABSERVE_ENGINE_SCHEDULER_REQUEST_VALIDATION_H_

#include "absl/status/status.h"
#include "engine/models/model.h"
#include "engine/scheduler/scheduler.h"

namespace slabserve {

// INVALID_ARGUMENT naming the first problem: empty prompt, a token outside
// the vocabulary, max_new_tokens or n out of range, a prompt (or prompt plus
// new tokens) longer than the model allows, bad stop ids, top_logprobs or
// sampling values.
absl::Status ValidateGenerationRequest(const GenerationRequest& spec,
                                       const ModelInfo& info,
                                       int slot_capacity);

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_SCHEDULER_REQUEST_VALIDATION_H_
