#include "engine/eval/golden.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "engine/state/state_pool.h"
#include "kernels/cpu/ops.h"

namespace slabserve {
namespace {

// Tolerances documented with the golden data (never loosened here).
constexpr double kLogitAbs = 1e-4;           // last logits, step top-5
constexpr double kSumAbsPerVocab = 1e-4;     // |Δ sum| ≤ 1e-4·V
constexpr double kGriffinSumsqScale = 2e-4;  // |Δ sumsq| ≤ 2e-4·√(V·sumsq)
constexpr double kSrmSumsqRel = 1e-3;        // |Δ sumsq| ≤ 1e-3·sumsq
constexpr double kSrmStateRel = 1e-4;        // |Δ| ≤ 1e-4·max(1, |ref|)
constexpr double kBmojoSumsqRel = 1e-3;  // |Δ sumsq| ≤ 1e-3·max(1, |ref|)
constexpr double kBmojoStateAbs = 1e-4;  // |Δ| ≤ 1e-4

Checksum SumAndSquares(const std::vector<float>& logits) {
  double sum = 0.0, sumsq = 0.0;
  for (float v : logits) {
    sum += v;
    sumsq += static_cast<double>(v) * v;
  }
  return {sum, sumsq};
}

// Ids of the k largest logits, largest first, ties to the lowest id.
std::vector<int> TopK(const std::vector<float>& logits, int k) {
  std::vector<int> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int>(i);
  k = std::min<int>(k, static_cast<int>(ids.size()));
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int a, int b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  ids.resize(k);
  return ids;
}

// One sequence's progress through prompt and greedy decoding.
struct Run {
  const GoldenCase* golden = nullptr;
  CaseResult* result = nullptr;
  int slot = -1;
  size_t fed = 0;  // prompt tokens fed so far
  int chunk = 0;   // tokens in the chunk in flight
  bool done() const {
    return static_cast<int>(result->greedy_ids.size()) >= golden->greedy_tokens;
  }
};

// The next tokens of `run`: a prompt chunk, or the last greedy id.
absl::Span<const int32_t> NextTokens(Run& run, int prompt_chunk) {
  const std::vector<int32_t>& prompt = run.golden->prompt_ids;
  if (run.fed < prompt.size()) {
    const size_t left = prompt.size() - run.fed;
    const size_t n =
        prompt_chunk > 0 ? std::min<size_t>(left, prompt_chunk) : left;
    run.chunk = static_cast<int>(n);
    return absl::MakeConstSpan(prompt).subspan(run.fed, n);
  }
  run.chunk = 1;
  return absl::MakeConstSpan(run.result->greedy_ids).last(1);
}

// Takes in the logits of `run`'s chunk.
absl::Status Absorb(Run& run, const float* logits, int vocab,
                    const Model& model, const StatePool& pool) {
  std::vector<float> row(logits, logits + vocab);
  CaseResult& result = *run.result;
  const size_t prompt_len = run.golden->prompt_ids.size();
  if (run.fed < prompt_len) {
    run.fed += run.chunk;
    result.position_checksums[run.fed - 1] = SumAndSquares(row);
    if (run.fed < prompt_len) return absl::OkStatus();
    result.last_logits = row;
    absl::StatusOr<std::vector<float>> state =
        model.RecurrentStateForEval(pool, run.slot);
    if (state.ok()) {
      result.state_after_prompt = *std::move(state);
    } else if (!absl::IsUnimplemented(state.status())) {
      return state.status();
    }
  }
  result.greedy_ids.push_back(cpu::ArgMax(row.data(), vocab));
  result.step_logits.push_back(std::move(row));
  return absl::OkStatus();
}

// Steps `runs` together until each is done.
absl::Status Drive(Model& model, StatePool& pool, std::vector<Run>& runs,
                   int prompt_chunk) {
  const int vocab = model.info().vocab_size;
  while (true) {
    std::vector<Run*> active;
    std::vector<SequenceChunk> batch;
    for (Run& run : runs) {
      if (run.done()) continue;
      active.push_back(&run);
      batch.push_back({run.slot, NextTokens(run, prompt_chunk), true});
    }
    if (batch.empty()) return absl::OkStatus();
    std::vector<float> logits(batch.size() * vocab);
    absl::Status status = model.Forward(batch, pool, logits.data());
    if (!status.ok()) return status;
    for (size_t i = 0; i < active.size(); ++i) {
      status = Absorb(*active[i], &logits[i * vocab], vocab, model, pool);
      if (!status.ok()) return status;
    }
  }
}

std::string Fmt(double x) { return absl::StrCat(x); }

void CheckChecksum(const std::string& what, const Checksum& got,
                   const Checksum& ref, GoldenFormat format, int vocab,
                   std::vector<std::string>& problems) {
  const double ref_sum = ref.first, ref_sumsq = ref.second;
  const double sum_limit = kSumAbsPerVocab * vocab;
  double sumsq_limit = kSrmSumsqRel * std::fabs(ref_sumsq);
  if (format == GoldenFormat::kGriffin) {
    sumsq_limit = kGriffinSumsqScale * std::sqrt(vocab * ref_sumsq);
  } else if (format == GoldenFormat::kBmojo) {
    sumsq_limit = kBmojoSumsqRel * std::max(1.0, std::fabs(ref_sumsq));
  }
  if (std::fabs(got.first - ref_sum) > sum_limit) {
    problems.push_back(absl::StrCat(what, " sum ", Fmt(got.first), " vs ",
                                    Fmt(ref_sum), " (limit ", sum_limit, ")"));
  }
  if (std::fabs(got.second - ref_sumsq) > sumsq_limit) {
    problems.push_back(absl::StrCat(what, " sumsq ", Fmt(got.second), " vs ",
                                    Fmt(ref_sumsq), " (limit ", sumsq_limit,
                                    ")"));
  }
}

using Rows = std::vector<std::vector<double>>;

// Griffin/Hawk: checksums and top-5 logits from the optional
// sliding_window_reference block (the top-level fields are what every
// reference file must carry). Throws json exceptions like every field.
void ReadGriffinExtras(const nlohmann::json& c, GoldenCase& gc) {
  if (!c.contains("sliding_window_reference")) return;
  const nlohmann::json& ref = c.at("sliding_window_reference");
  gc.position_checksums =
      ref.at("position_checksums").get<std::vector<Checksum>>();
  for (const nlohmann::json& step : ref.at("steps")) {
    gc.step_top5.push_back({step.at("top5_ids").get<std::vector<int>>(),
                            step.at("top5_logits").get<std::vector<double>>()});
    gc.step_checksums.push_back(step.at("checksum").get<Checksum>());
  }
}

// B'MOJO states: row b = SSM state of the b-th B'MOJO-F layer, then its
// conv rows. Throws json exceptions like every other field.
void ReadBmojoStates(const nlohmann::json& c, GoldenCase& gc) {
  const Rows ssm = c.at("ssm_state_after_prompt").get<Rows>();
  const Rows conv = c.at("conv_state_after_prompt").get<Rows>();
  for (size_t b = 0; b < ssm.size(); ++b) {
    std::vector<double> row = ssm[b];
    if (b < conv.size()) row.insert(row.end(), conv[b].begin(), conv[b].end());
    gc.ssm_state_width.push_back(ssm[b].size());
    gc.state_after_prompt.push_back(std::move(row));
  }
}

// SRM and B'MOJO: per-position and per-greedy-step checksums and the states
// after the prompt.
void ReadChecksumsAndStates(const nlohmann::json& c, GoldenFormat format,
                            GoldenCase& gc) {
  // Results of a chunked prefill have no per-position checksums.
  const auto sums =
      c.value("logit_sum", nlohmann::json::array()).get<std::vector<double>>();
  const auto sumsqs = c.value("logit_sumsq", nlohmann::json::array())
                          .get<std::vector<double>>();
  for (size_t p = 0; p < sums.size() && p < sumsqs.size(); ++p) {
    gc.position_checksums.push_back({sums[p], sumsqs[p]});
  }
  const auto step_sums = c.at("greedy_logit_sum").get<std::vector<double>>();
  const auto step_sumsqs =
      c.at("greedy_logit_sumsq").get<std::vector<double>>();
  for (size_t k = 0; k < step_sums.size() && k < step_sumsqs.size(); ++k) {
    gc.step_checksums.push_back({step_sums[k], step_sumsqs[k]});
  }
  if (format == GoldenFormat::kSrm) {
    gc.state_after_prompt = c.at("state_after_prompt").get<Rows>();
  } else {
    ReadBmojoStates(c, gc);
  }
}

// Blocks that hold every case's tokens at once (per-token state).
int BlocksForCases(const std::vector<GoldenCase>& cases, int block_tokens) {
  int blocks = 0;
  for (const GoldenCase& gc : cases) {
    const int tokens =
        static_cast<int>(gc.prompt_ids.size()) + gc.greedy_tokens;
    blocks += (tokens + block_tokens - 1) / block_tokens;
  }
  return blocks;
}

// The computed state in the golden file's shape when the sizes agree
// ([layers][width]; B'MOJO split into its SSM and conv fields), else flat.
void WriteState(GoldenFormat format, const GoldenCase& gc,
                const std::vector<float>& state, nlohmann::json& c) {
  const Rows& ref = gc.state_after_prompt;
  size_t total = 0;
  for (const auto& row : ref) total += row.size();
  const bool bmojo = format == GoldenFormat::kBmojo;
  if (ref.empty() || state.size() != total) {
    c[bmojo ? "ssm_state_after_prompt" : "state_after_prompt"] = state;
    return;
  }
  nlohmann::json rows = nlohmann::json::array();
  nlohmann::json ssm = nlohmann::json::array();
  nlohmann::json conv = nlohmann::json::array();
  auto at = state.begin();
  for (size_t l = 0; l < ref.size(); ++l) {
    const size_t width = ref[l].size();
    const size_t split = bmojo ? gc.ssm_state_width[l] : width;
    rows.push_back(std::vector<float>(at, at + width));
    ssm.push_back(std::vector<float>(at, at + split));
    conv.push_back(std::vector<float>(at + split, at + width));
    at += width;
  }
  if (bmojo) {
    c["ssm_state_after_prompt"] = ssm;
    c["conv_state_after_prompt"] = conv;
  } else {
    c["state_after_prompt"] = rows;
  }
}

}  // namespace

absl::StatusOr<GoldenFile> LoadGoldenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  GoldenFile golden;
  golden.path = path;
  golden.json = nlohmann::json::parse(text.str(), nullptr, false);
  if (golden.json.is_discarded() || !golden.json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a JSON object"));
  }
  const nlohmann::json& top = golden.json;
  if (top.value("schema", "") == "srm-golden/1") {
    golden.format = GoldenFormat::kSrm;
  } else if (top.value("schema", "") == "bmojo-golden/1") {
    golden.format = GoldenFormat::kBmojo;
  } else if (top.value("format", "") == "slabserve-golden/1") {
    golden.format = GoldenFormat::kGriffin;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": unknown golden format (expected 'format' "
                     "slabserve-golden/1 or 'schema' srm-golden/1 or "
                     "bmojo-golden/1)"));
  }
  const auto cases = top.find("cases");
  if (cases == top.end() || !cases->is_array() || cases->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'cases' is missing or empty"));
  }
  size_t i = 0;
  try {
    const int default_greedy = top.value("greedy_new_tokens", 0);
    for (; i < cases->size(); ++i) {
      const nlohmann::json& c = (*cases)[i];
      GoldenCase gc;
      gc.name = c.at("name").get<std::string>();
      gc.prompt_ids = c.at("prompt_ids").get<std::vector<int32_t>>();
      gc.last_logits = c.at("last_logits").get<std::vector<double>>();
      gc.greedy_ids = c.at("greedy_ids").get<std::vector<int32_t>>();
      gc.greedy_tokens = gc.greedy_ids.empty()
                             ? c.value("greedy_new_tokens", default_greedy)
                             : static_cast<int>(gc.greedy_ids.size());
      if (golden.format == GoldenFormat::kGriffin) {
        ReadGriffinExtras(c, gc);
      } else {
        ReadChecksumsAndStates(c, golden.format, gc);
      }
      if (gc.prompt_ids.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": case ", i, " has an empty prompt"));
      }
      golden.cases.push_back(std::move(gc));
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": case ", i, ": ", e.what()));
  }
  return golden;
}

absl::StatusOr<std::vector<CaseResult>> RunCases(
    Model& model, const std::vector<GoldenCase>& cases,
    const RunOptions& options) {
  std::vector<CaseResult> results(cases.size());
  std::vector<Run> runs(cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    runs[i].golden = &cases[i];
    runs[i].result = &results[i];
    results[i].position_checksums.resize(cases[i].prompt_ids.size());
  }
  const int capacity = options.batched ? static_cast<int>(cases.size()) : 1;
  const TokenStateLayout tokens = model.TokenLayout();
  absl::StatusOr<std::unique_ptr<StatePool>> pool =
      StatePool::CreateWithCapacity(model.StateLayout(), capacity, tokens,
                                    BlocksForCases(cases, tokens.block_tokens));
  if (!pool.ok()) return pool.status();
  if (options.batched) {
    for (Run& run : runs) run.slot = (*pool)->Allocate();
    absl::Status status = Drive(model, **pool, runs, options.prompt_chunk);
    if (!status.ok()) return status;
  } else {
    for (Run& run : runs) {
      run.slot = (*pool)->Allocate();
      std::vector<Run> one = {run};
      absl::Status status = Drive(model, **pool, one, options.prompt_chunk);
      if (!status.ok()) return status;
      (*pool)->Release(run.slot);
    }
  }
  return results;
}

CaseReport CompareCase(const GoldenFile& golden, size_t index,
                       const CaseResult& result) {
  const GoldenCase& gc = golden.cases[index];
  CaseReport report;
  report.name = gc.name;
  std::vector<std::string>& problems = report.problems;
  const int vocab = static_cast<int>(gc.last_logits.size());
  if (result.last_logits.size() != gc.last_logits.size()) {
    problems.push_back(absl::StrCat("model has ", result.last_logits.size(),
                                    " logits, golden ", vocab));
    return report;
  }
  for (int v = 0; v < vocab; ++v) {
    report.max_logit_diff =
        std::max(report.max_logit_diff,
                 std::fabs(result.last_logits[v] - gc.last_logits[v]));
  }
  if (!(report.max_logit_diff <= kLogitAbs)) {
    problems.push_back(absl::StrCat("last logits max |diff| ",
                                    Fmt(report.max_logit_diff), " > ",
                                    kLogitAbs));
  }
  report.greedy_match = result.greedy_ids == gc.greedy_ids;
  if (!report.greedy_match) problems.push_back("greedy ids differ");

  // Per-position checksums (where the run produced them).
  for (size_t p = 0;
       p < gc.position_checksums.size() && p < result.position_checksums.size();
       ++p) {
    if (!result.position_checksums[p].has_value()) continue;
    CheckChecksum(absl::StrCat("position ", p), *result.position_checksums[p],
                  gc.position_checksums[p], golden.format, vocab, problems);
  }

  // Greedy steps: checksums, and the golden top-5 logits where given.
  for (size_t k = 0; k < result.step_logits.size(); ++k) {
    const std::vector<float>& logits = result.step_logits[k];
    const std::string what = absl::StrCat("step ", k);
    if (k < gc.step_checksums.size()) {
      CheckChecksum(what, SumAndSquares(logits), gc.step_checksums[k],
                    golden.format, vocab, problems);
    }
    if (k >= gc.step_top5.size()) continue;
    const GoldenTop5& top5 = gc.step_top5[k];
    for (size_t j = 0; j < top5.ids.size() && j < top5.logits.size(); ++j) {
      const int id = top5.ids[j];
      if (id < 0 || id >= vocab) {
        problems.push_back(
            absl::StrCat(what, ": golden id ", id, " outside the vocabulary"));
      } else if (!(std::fabs(logits[id] - top5.logits[j]) <= kLogitAbs)) {
        problems.push_back(absl::StrCat(what, " logit of id ", id, " ",
                                        Fmt(logits[id]), " vs ",
                                        Fmt(top5.logits[j])));
      }
    }
  }

  if (golden.format != GoldenFormat::kGriffin) {
    std::vector<double> ref_state;
    for (const auto& row : gc.state_after_prompt) {
      ref_state.insert(ref_state.end(), row.begin(), row.end());
    }
    if (result.state_after_prompt.size() != ref_state.size()) {
      problems.push_back(absl::StrCat("state after prompt has ",
                                      result.state_after_prompt.size(),
                                      " values, golden ", ref_state.size()));
    } else {
      for (size_t i = 0; i < ref_state.size(); ++i) {
        const double limit =
            golden.format == GoldenFormat::kSrm
                ? kSrmStateRel * std::max(1.0, std::fabs(ref_state[i]))
                : kBmojoStateAbs;
        if (!(std::fabs(result.state_after_prompt[i] - ref_state[i]) <=
              limit)) {
          problems.push_back(absl::StrCat("state after prompt [", i, "] ",
                                          result.state_after_prompt[i], " vs ",
                                          Fmt(ref_state[i])));
          break;
        }
      }
    }
  }
  return report;
}

nlohmann::json ResultsJson(const GoldenFile& golden,
                           const std::vector<CaseResult>& results) {
  nlohmann::json out = golden.json;
  for (size_t i = 0; i < results.size() && i < golden.cases.size(); ++i) {
    const CaseResult& r = results[i];
    nlohmann::json& c = out["cases"][i];
    std::vector<Checksum> checksums;
    for (const auto& checksum : r.position_checksums) {
      if (checksum.has_value()) checksums.push_back(*checksum);
    }
    const bool all_positions = checksums.size() == r.position_checksums.size();
    c["last_logits"] = r.last_logits;
    c["greedy_ids"] = r.greedy_ids;
    if (golden.format == GoldenFormat::kGriffin) {
      c.erase("hf");
      c.erase("hf_vs_reference");
      nlohmann::json block = {{"status", "ok"},
                              {"last_logits", r.last_logits},
                              {"greedy_ids", r.greedy_ids}};
      if (all_positions) {
        nlohmann::json pairs = nlohmann::json::array();
        for (const Checksum& cs : checksums)
          pairs.push_back({cs.first, cs.second});
        block["position_checksums"] = pairs;
      }
      nlohmann::json steps = nlohmann::json::array();
      double min_margin = INFINITY;
      for (const std::vector<float>& logits : r.step_logits) {
        const std::vector<int> top = TopK(logits, 5);
        std::vector<float> top_logits;
        for (int id : top) top_logits.push_back(logits[id]);
        if (top.size() >= 2) {
          min_margin =
              std::min<double>(min_margin, top_logits[0] - top_logits[1]);
        }
        const Checksum cs = SumAndSquares(logits);
        steps.push_back({{"top5_ids", top},
                         {"top5_logits", top_logits},
                         {"checksum", {cs.first, cs.second}}});
      }
      block["steps"] = steps;
      if (std::isfinite(min_margin)) c["min_top1_margin"] = min_margin;
      c["sliding_window_reference"] = block;
    } else {
      if (all_positions) {
        std::vector<double> sums, sumsqs;
        for (const Checksum& cs : checksums) {
          sums.push_back(cs.first);
          sumsqs.push_back(cs.second);
        }
        c["logit_sum"] = sums;
        c["logit_sumsq"] = sumsqs;
      } else {
        c.erase("logit_sum");
        c.erase("logit_sumsq");
      }
      std::vector<double> margins, sums, sumsqs;
      for (const std::vector<float>& logits : r.step_logits) {
        const std::vector<int> top = TopK(logits, 2);
        margins.push_back(top.size() == 2 ? logits[top[0]] - logits[top[1]]
                                          : 0);
        const Checksum cs = SumAndSquares(logits);
        sums.push_back(cs.first);
        sumsqs.push_back(cs.second);
      }
      c["greedy_top2_margin"] = margins;
      c["greedy_logit_sum"] = sums;
      c["greedy_logit_sumsq"] = sumsqs;
      WriteState(golden.format, golden.cases[i], r.state_after_prompt, c);
    }
  }
  return out;
}

}  // namespace slabserve
