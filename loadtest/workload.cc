#include "loadtest/workload.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace slabload {
namespace {

// Synthetic ids come from [kFirstSyntheticId, vocab) minus BOS/EOS, which
// keeps clear of the special tokens sentencepiece puts at the bottom.
constexpr int kFirstSyntheticId = 4;

// Parses one JSON line of a prompts file into `entry`.
absl::Status ParsePromptLine(const std::string& line, PromptEntry* entry) {
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not JSON: ", e.what()));
  }
  if (!value.is_object()) {
    return absl::InvalidArgumentError("expected a JSON object");
  }
  const bool has_prompt = value.contains("prompt");
  const bool has_ids = value.contains("ids");
  if (has_prompt == has_ids) {
    return absl::InvalidArgumentError(
        "expected exactly one of \"prompt\" or \"ids\"");
  }
  if (has_prompt) {
    if (!value["prompt"].is_string() ||
        value["prompt"].get<std::string>().empty()) {
      return absl::InvalidArgumentError(
          "\"prompt\" must be a non-empty string");
    }
    entry->text = value["prompt"].get<std::string>();
    return absl::OkStatus();
  }
  const nlohmann::json& ids = value["ids"];
  if (!ids.is_array() || ids.empty()) {
    return absl::InvalidArgumentError("\"ids\" must be a non-empty array");
  }
  for (const nlohmann::json& id : ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() > INT32_MAX) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"ids\" holds ", id.dump(), ", not a non-negative 32-bit integer"));
    }
    entry->ids.push_back(id.get<int32_t>());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LengthRange> ParseLengthRange(absl::string_view text,
                                             absl::string_view flag) {
  const std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  LengthRange range;
  bool ok = parts.size() == 1 || parts.size() == 2;
  ok = ok && absl::SimpleAtoi(parts[0], &range.min);
  range.max = range.min;
  if (ok && parts.size() == 2) ok = absl::SimpleAtoi(parts[1], &range.max);
  if (!ok || range.min < 1 || range.max < range.min) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", text,
                     ": expected a length N or a range A:B with 1 <= A <= B"));
  }
  return range;
}

absl::StatusOr<std::vector<PromptEntry>> LoadPrompts(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    return absl::NotFoundError(absl::StrCat("cannot open prompts file ", path));
  }
  std::vector<PromptEntry> prompts;
  std::string line;
  for (int number = 1; std::getline(file, line); ++number) {
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    PromptEntry entry;
    absl::Status status = ParsePromptLine(line, &entry);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", number, ": ", status.message()));
    }
    prompts.push_back(std::move(entry));
  }
  if (prompts.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompts file ", path, " holds no prompts"));
  }
  return prompts;
}

absl::Status ValidateWorkload(const WorkloadOptions& options) {
  if (options.shared_prefix < 0) {
    return absl::InvalidArgumentError("--shared-prefix must be >= 0");
  }
  for (const PromptEntry& entry : options.prompts) {
    if (!entry.text.empty() && options.shared_prefix > 0) {
      return absl::InvalidArgumentError(
          "--shared-prefix needs token-id prompts: the --prompts file holds "
          "text prompts");
    }
  }
  const bool synthetic = options.prompts.empty();
  if ((synthetic || options.shared_prefix > 0) &&
      options.vocab_size < kFirstSyntheticId + 3) {
    return absl::FailedPreconditionError(
        absl::StrCat("the model's vocabulary (", options.vocab_size,
                     " tokens) is too small for synthetic prompts"));
  }
  return absl::OkStatus();
}

Workload::Workload(WorkloadOptions options)
    : options_(std::move(options)), rng_(options_.seed) {
  for (int i = 0; i < options_.shared_prefix; ++i) {
    prefix_.push_back(RandomTokenId());
  }
}

int32_t Workload::RandomTokenId() {
  std::uniform_int_distribution<int32_t> id(kFirstSyntheticId,
                                            options_.vocab_size - 1);
  while (true) {
    const int32_t value = id(rng_);
    if (value != options_.bos_token_id && value != options_.eos_token_id) {
      return value;
    }
  }
}

slabserve::v1::GenerateRequest Workload::Next() {
  slabserve::v1::GenerateRequest request;
  request.set_request_id(absl::StrCat("slabload-", count_++));
  if (!options_.prompts.empty()) {
    std::uniform_int_distribution<size_t> pick(0, options_.prompts.size() - 1);
    const PromptEntry& entry = options_.prompts[pick(rng_)];
    if (!entry.text.empty()) {
      request.set_text(entry.text);
    } else {
      auto* ids = request.mutable_token_ids()->mutable_ids();
      ids->Add(prefix_.begin(), prefix_.end());
      ids->Add(entry.ids.begin(), entry.ids.end());
    }
  } else {
    std::uniform_int_distribution<int> length(options_.prompt_len.min,
                                              options_.prompt_len.max);
    const int n = length(rng_);
    auto* ids = request.mutable_token_ids()->mutable_ids();
    ids->Add(prefix_.begin(), prefix_.end());
    for (int i = 0; i < n; ++i) ids->Add(RandomTokenId());
  }
  std::uniform_int_distribution<int> output(options_.output_len.min,
                                            options_.output_len.max);
  request.set_max_tokens(output(rng_));
  request.set_ignore_eos(options_.ignore_eos);
  *request.mutable_sampling() = options_.sampling;
  return request;
}

PoissonArrivals::PoissonArrivals(double rate, uint64_t seed)
    : rng_(seed), gap_(rate) {}

double PoissonArrivals::Next() {
  now_ += gap_(rng_);
  return now_;
}

}  // namespace slabload
