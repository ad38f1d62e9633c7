// Helpers shared by the end-to-end tests: collecting a Generate stream per
// completion, and reading the golden fixtures.
#ifndef SLABSERVE_TESTS_E2E_UTIL_H_
#define SLABSERVE_TESTS_E2E_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "slabserve/v1/slabserve.grpc.pb.h"

namespace slabserve::testing {

struct CompletionResult {
  std::vector<int32_t> ids;
  std::vector<int> chunk_tokens;  // token count of each chunk that had any
  std::string text;
  std::vector<v1::Logprobs> logprobs;
  v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
  v1::Usage usage;
  int chunks_after_finish = 0;  // protocol violations
};

struct GenerateResult {
  grpc::Status status;
  std::vector<CompletionResult> completions;  // by index
  std::vector<std::string> request_ids;       // one per chunk
};

GenerateResult Generate(v1::Slabserve::Stub& stub,
                        const v1::GenerateRequest& request,
                        absl::Duration timeout = absl::Seconds(60));

// A request for `ids` with greedy decoding, EOS ignored.
v1::GenerateRequest GreedyRequest(const std::vector<int32_t>& ids,
                                  int max_tokens);

struct GoldenCase {
  std::string name;
  std::string prompt_text;  // empty when the case has none
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> greedy_ids;
};

// The cases of a fixture's golden.json, e.g. "tests/golden/griffin_tiny".
std::vector<GoldenCase> LoadGoldenCases(const std::string& model_dir);

// The value of `series` (name plus labels, exactly as exposed) in a
// Prometheus text exposition; -1 when absent.
double MetricValue(const std::string& exposition, const std::string& series);

}  // namespace slabserve::testing

#endif  // SLABSERVE_TESTS_E2E_UTIL_H_
