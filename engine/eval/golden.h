// Golden-data evaluation: reads a golden.json (Griffin/Hawk
// "slabserve-golden/1", SRM "srm-golden/1" or B'MOJO "bmojo-golden/1"), runs
// its cases on a Model, compares the results under the data's documented
// tolerances and writes them back in the golden file's own structure.
#ifndef SLABSERVE_ENGINE_EVAL_GOLDEN_H_
#define SLABSERVE_ENGINE_EVAL_GOLDEN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/models/model.h"
#include "nlohmann/json.hpp"

namespace slabserve {

enum class GoldenFormat { kGriffin, kSrm, kBmojo };

// Sum and sum of squares of one logits row, in double.
using Checksum = std::pair<double, double>;

struct GoldenTop5 {
  std::vector<int> ids;
  std::vector<double> logits;
};

struct GoldenCase {
  std::string name;
  std::vector<int32_t> prompt_ids;
  int greedy_tokens = 0;  // how many greedy ids to generate
  std::vector<double> last_logits;
  std::vector<int32_t> greedy_ids;
  std::vector<Checksum> position_checksums;  // per prompt position
  std::vector<Checksum> step_checksums;      // per greedy step
  std::vector<GoldenTop5> step_top5;         // per greedy step (Griffin)
  // [layers][width]: SRM state; B'MOJO: each B'MOJO-F layer's SSM state
  // followed by its conv rows (the model's RecurrentStateForEval order).
  std::vector<std::vector<double>> state_after_prompt;
  // B'MOJO: the SSM part's width in each state_after_prompt row.
  std::vector<size_t> ssm_state_width;
};

struct GoldenFile {
  GoldenFormat format = GoldenFormat::kGriffin;
  std::string path;
  nlohmann::json json;  // the whole file
  std::vector<GoldenCase> cases;
};

// Errors name the file and the field at fault.
absl::StatusOr<GoldenFile> LoadGoldenFile(const std::string& path);

// What the engine computed for one case.
struct CaseResult {
  std::vector<float> last_logits;
  // Per prompt position; known only for positions whose logits were produced
  // (every position when the prompt runs in chunks of one token).
  std::vector<std::optional<Checksum>> position_checksums;
  std::vector<int32_t> greedy_ids;
  // step_logits[k]: the logits greedy_ids[k] was chosen from (k = 0 is the
  // last prompt position).
  std::vector<std::vector<float>> step_logits;
  // The model's RecurrentStateForEval after the prompt; empty when the model
  // exports none.
  std::vector<float> state_after_prompt;
};

struct RunOptions {
  int prompt_chunk = 1;  // prompt tokens per Forward call; 0: all at once
  bool batched = false;  // all cases step together in one batch per call
};

// Runs every case from a fresh slot: prompt, then greedy decoding (argmax,
// ties to the lowest id, EOS does not stop).
absl::StatusOr<std::vector<CaseResult>> RunCases(
    Model& model, const std::vector<GoldenCase>& cases,
    const RunOptions& options);

struct CaseReport {
  std::string name;
  double max_logit_diff = 0.0;  // last logits vs golden
  bool greedy_match = false;
  std::vector<std::string> problems;  // empty: within every tolerance
  bool ok() const { return problems.empty(); }
};

// Compares case `index` of `golden` with its result.
CaseReport CompareCase(const GoldenFile& golden, size_t index,
                       const CaseResult& result);

// The golden file with every computed field replaced by `results`.
nlohmann::json ResultsJson(const GoldenFile& golden,
                           const std::vector<CaseResult>& results);

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_EVAL_GOLDEN_H_
