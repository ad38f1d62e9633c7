// Helpers for scheduler tests: loading the tiny golden models once per test
// binary and reading a request's whole stream.
#ifndef SLABSERVE_ENGINE_SCHEDULER_TEST_UTIL_H_
#define SLABSERVE_ENGINE_SCHEDULER_TEST_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "engine/models/model.h"
#include "engine/scheduler/scheduler.h"

namespace slabserve {
namespace testing {

// The model in tests/golden/<name>, loaded once and kept for the binary.
Model* TinyModel(const std::string& name);

// A scheduler over a CpuBackend of `model` with room for `slots` sequences
// (0: a 1 GiB state budget); fails the test when it cannot be made.
std::unique_ptr<Scheduler> MakeCpuScheduler(Model* model,
                                            const SchedulerOptions& options,
                                            int slots = 0);

// Everything one completion produced.
struct CompletionResult {
  std::vector<SampledToken> tokens;
  FinishReason finish = FinishReason::kNone;
  absl::Status error;
  bool ended = false;  // saw its last event

  std::vector<int32_t> ids() const;
};

struct RequestResult {
  std::vector<CompletionResult> completions;
  RequestUsage usage;
  bool timed_out = false;  // the stream did not end within the limit
};

// Reads `stream` to its end (or until `limit` passes).
RequestResult ReadAll(RequestStream& stream, int n,
                      absl::Duration limit = absl::Seconds(60));

// Expects every completion of `actual` to have ended without error with
// the tokens, logprobs and top lists of `expected`, bit for bit; `what`
// names the case in failures.
void ExpectSameResult(const RequestResult& expected,
                      const RequestResult& actual, const std::string& what);

// Appends `events` to `result`.
void Absorb(const std::vector<StreamEvent>& events, RequestResult& result);

// Submits and reads to the end; fails the test on a rejected request.
RequestResult RunToEnd(Scheduler& scheduler, const GenerationRequest& request);

// A request of BOS (2) then seeded token ids in [4, 512), past EOS.
GenerationRequest RandomRequest(int prompt_length, int max_new_tokens,
                                uint32_t salt = 0);

}  // namespace testing
}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_SCHEDULER_TEST_UTIL_H_
