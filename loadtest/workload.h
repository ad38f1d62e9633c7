// What slabload sends: prompt/output lengths, prompt sources and arrival
// times, all drawn from a seeded generator so a run can be repeated exactly.
#ifndef SLABSERVE_LOADTEST_WORKLOAD_H_
#define SLABSERVE_LOADTEST_WORKLOAD_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "slabserve/v1/slabserve.pb.h"

namespace slabload {

// A length fixed ("128") or drawn uniformly from an inclusive range
// ("64:256").
struct LengthRange {
  int min = 0;
  int max = 0;
};

// Parses "N" or "A:B" with 1 <= A <= B; the error names `flag`.
absl::StatusOr<LengthRange> ParseLengthRange(absl::string_view text,
                                             absl::string_view flag);

// One prompt from a --prompts file: text, or token ids used as given.
struct PromptEntry {
  std::string text;
  std::vector<int32_t> ids;
};

// Reads a JSON-lines file where each non-blank line is {"prompt": "..."} or
// {"ids": [1, 2, 3]}. Errors name the file and line.
absl::StatusOr<std::vector<PromptEntry>> LoadPrompts(const std::string& path);

struct WorkloadOptions {
  LengthRange prompt_len{128, 128};  // synthetic prompts only
  LengthRange output_len{128, 128};
  // Every synthetic (or id) prompt starts with the same this many tokens.
  int shared_prefix = 0;
  // When non-empty, prompts are drawn from here instead of synthesized.
  std::vector<PromptEntry> prompts;
  slabserve::v1::SamplingParams sampling;
  bool ignore_eos = true;  // so every request produces its output length
  uint64_t seed = 1;
  // The model's vocabulary, for synthetic token ids.
  int vocab_size = 0;
  int bos_token_id = -1;
  int eos_token_id = -1;
};

// Checks the options against each other (e.g. --shared-prefix with text
// prompts, a vocabulary too small for synthetic ids).
absl::Status ValidateWorkload(const WorkloadOptions& options);

// Produces the request sequence. Same options and seed, same requests.
class Workload {
 public:
  explicit Workload(WorkloadOptions options);

  slabserve::v1::GenerateRequest Next();

 private:
  int32_t RandomTokenId();

  WorkloadOptions options_;
  std::mt19937_64 rng_;
  std::vector<int32_t> prefix_;
  int64_t count_ = 0;
};

// Open-loop arrivals: a Poisson process of `rate` requests per second,
// seeded; Next() returns the next arrival in seconds from the start.
class PoissonArrivals {
 public:
  PoissonArrivals(double rate, uint64_t seed);
  double Next();

 private:
  std::mt19937_64 rng_;
  std::exponential_distribution<double> gap_;
  double now_ = 0;
};

}  // namespace slabload

#endif  // SLABSERVE_LOADTEST_WORKLOAD_H_
