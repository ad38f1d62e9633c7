// slabeval: runs a model directory against its golden file and writes the
// computed results in the golden file's structure.
//
//   slabeval --model=DIR --golden=FILE --out=FILE [--batch]
//            [--weights=model.bf16.safetensors] [--prefill_chunk=N]
//            [--eidetic_capacity=M --eidetic_threshold=T
//             --eidetic_topk_per_window=K]
//
// Prints one line per case (max |Δ logit| vs golden, greedy match) and exits
// non-zero when any case is out of tolerance or anything fails.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "engine/eval/golden.h"
#include "engine/models/registry.h"

ABSL_FLAG(std::string, model, "", "model directory (config.json + weights)");
ABSL_FLAG(std::string, golden, "", "golden JSON file with the cases to run");
ABSL_FLAG(std::string, out, "", "where to write the results JSON");
ABSL_FLAG(std::string, weights, "",
          "weights file inside --model (default: model.safetensors)");
ABSL_FLAG(std::string, precision, "f32",
          "projection weights: f32, or bf16 (bf16 weights and activations, "
          "f32 sums)");
ABSL_FLAG(bool, batch, false, "run all cases together as one batch");
ABSL_FLAG(int, prefill_chunk, 1,
          "prompt tokens per step; 1 gives checksums at every prompt "
          "position, 0 feeds each prompt in one chunk");
ABSL_FLAG(int, eidetic_capacity, 0,
          "hybrid_qwen3: entries of the long-term eidetic memory per "
          "B'MOJO-F layer (0: off, plain B'MOJO-F)");
ABSL_FLAG(double, eidetic_threshold, 0.5,
          "hybrid_qwen3: innovation score a token needs to enter the memory");
ABSL_FLAG(int, eidetic_topk_per_window, 0,
          "hybrid_qwen3: most memory admissions per W positions (0: any)");

namespace slabserve {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "slabeval: %s\n", message.c_str());
  return 2;
}

int Main() {
  const std::string model_dir = absl::GetFlag(FLAGS_model);
  const std::string golden_path = absl::GetFlag(FLAGS_golden);
  const std::string out_path = absl::GetFlag(FLAGS_out);
  if (model_dir.empty() || golden_path.empty() || out_path.empty()) {
    return Fail("--model, --golden and --out are required");
  }
  RunOptions options;
  options.batched = absl::GetFlag(FLAGS_batch);
  options.prompt_chunk = absl::GetFlag(FLAGS_prefill_chunk);
  if (options.prompt_chunk < 0) return Fail("--prefill_chunk must be >= 0");

  absl::StatusOr<GoldenFile> golden = LoadGoldenFile(golden_path);
  if (!golden.ok()) return Fail(golden.status().ToString());
  LoadOptions load_options;
  load_options.weights_file = absl::GetFlag(FLAGS_weights);
  absl::StatusOr<cpu::WeightPrecision> precision =
      cpu::ParseWeightPrecision(absl::GetFlag(FLAGS_precision));
  if (!precision.ok()) return Fail(precision.status().ToString());
  load_options.weights = *precision;
  load_options.eidetic = {absl::GetFlag(FLAGS_eidetic_capacity),
                          absl::GetFlag(FLAGS_eidetic_threshold),
                          absl::GetFlag(FLAGS_eidetic_topk_per_window)};
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadModel(model_dir, load_options);
  if (!model.ok()) return Fail(model.status().ToString());

  absl::StatusOr<std::vector<CaseResult>> results =
      RunCases(**model, golden->cases, options);
  if (!results.ok()) return Fail(results.status().ToString());

  std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
  out << ResultsJson(*golden, *results).dump(1) << "\n";
  out.close();
  if (!out) return Fail(absl::StrCat(out_path, ": cannot write"));

  int failed = 0;
  for (size_t i = 0; i < results->size(); ++i) {
    const CaseReport report = CompareCase(*golden, i, (*results)[i]);
    std::printf("%-16s max|dlogit| %.3g  greedy %s  %s\n", report.name.c_str(),
                report.max_logit_diff, report.greedy_match ? "match" : "DIFFER",
                report.ok() ? "ok" : "FAIL");
    for (const std::string& problem : report.problems) {
      std::printf("    %s\n", problem.c_str());
    }
    failed += !report.ok();
  }
  std::printf("%zu cases, %d failed (%s, %s)\n", results->size(), failed,
              (*model)->info().architecture.c_str(),
              options.batched ? "one batch" : "one by one");
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace slabserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "slabeval --model=DIR --golden=FILE --out=FILE [--batch] "
      "[--weights=FILE] [--prefill_chunk=N]");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::fprintf(stderr, "slabeval: unexpected argument '%s'\n", rest[1]);
    return 2;
  }
  return slabserve::Main();
}
