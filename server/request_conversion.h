// Turns a Generate request from the wire into the scheduler's request,
// checking every client-controlled value against the model and the server's
// limits. INVALID_ARGUMENT names what is wrong. No gRPC, no state: the
// fuzzer drives it directly.
#ifndef SLABSERVE_SERVER_REQUEST_CONVERSION_H_
#define SLABSERVE_SERVER_REQUEST_CONVERSION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/io/tokenizer.h"
#include "engine/models/model.h"
#include "engine/scheduler/scheduler.h"
#include "slabserve/v1/slabserve.pb.h"

namespace slabserve::server {

struct RequestLimits {
  int max_tokens_limit = 4096;
  int max_prompt_tokens = 32768;
  int max_n = 16;
};

// Request ids go into every log line and every reply chunk: at most 128
// bytes, printable ASCII, so that no id can forge a log line or smuggle
// terminal escapes.
absl::Status ValidateRequestId(const std::string& id);

class RequestConverter {
 public:
  // `tokenizer` may be null (token-id prompts only). Nothing is owned.
  RequestConverter(const ModelInfo& info, const Tokenizer* tokenizer,
                   const RequestLimits& limits);

  // The scheduler's request (its id and deadline left for the caller).
  absl::StatusOr<GenerationRequest> Convert(
      const v1::GenerateRequest& request) const;

 private:
  // The prompt's token ids: the given ids, or the tokenized text with BOS
  // when the model uses one.
  absl::StatusOr<std::vector<int32_t>> PromptIds(
      const v1::GenerateRequest& request) const;
  // Checks everything but the prompt and builds the scheduler's request.
  absl::StatusOr<GenerationRequest> ToGenerationRequest(
      const v1::GenerateRequest& request, std::vector<int32_t> prompt) const;

  const ModelInfo info_;
  const Tokenizer* const tokenizer_;
  const RequestLimits limits_;
};

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_REQUEST_CONVERSION_H_
