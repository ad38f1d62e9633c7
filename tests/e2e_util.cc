#include "tests/e2e_util.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include "nlohmann/json.hpp"

namespace slabserve::testing {

GenerateResult Generate(v1::Slabserve::Stub& stub,
                        const v1::GenerateRequest& request,
                        absl::Duration timeout) {
  GenerateResult result;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(timeout));
  std::unique_ptr<grpc::ClientReader<v1::GenerateChunk>> reader =
      stub.Generate(&context, request);
  v1::GenerateChunk chunk;
  while (reader->Read(&chunk)) {
    if (chunk.index() >= static_cast<int>(result.completions.size())) {
      result.completions.resize(chunk.index() + 1);
    }
    CompletionResult& completion = result.completions[chunk.index()];
    if (completion.finish != v1::FINISH_REASON_UNSPECIFIED) {
      ++completion.chunks_after_finish;
    }
    completion.ids.insert(completion.ids.end(), chunk.token_ids().begin(),
                          chunk.token_ids().end());
    if (chunk.token_ids_size() > 0) {
      completion.chunk_tokens.push_back(chunk.token_ids_size());
    }
    completion.text += chunk.text();
    completion.logprobs.insert(completion.logprobs.end(),
                               chunk.logprobs().begin(),
                               chunk.logprobs().end());
    if (chunk.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      completion.finish = chunk.finish_reason();
      completion.usage = chunk.usage();
    }
    result.request_ids.push_back(chunk.request_id());
  }
  result.status = reader->Finish();
  return result;
}

v1::GenerateRequest GreedyRequest(const std::vector<int32_t>& ids,
                                  int max_tokens) {
  v1::GenerateRequest request;
  for (int32_t id : ids) request.mutable_token_ids()->add_ids(id);
  request.set_max_tokens(max_tokens);
  request.set_ignore_eos(true);
  return request;
}

std::vector<GoldenCase> LoadGoldenCases(const std::string& model_dir) {
  std::vector<GoldenCase> cases;
  std::ifstream file(model_dir + "/golden.json");
  nlohmann::json golden = nlohmann::json::parse(file, nullptr, false);
  if (golden.is_discarded()) return cases;
  for (const nlohmann::json& entry : golden["cases"]) {
    GoldenCase c;
    c.name = entry.value("name", "");
    c.prompt_text = entry.value("prompt_text", "");
    c.prompt_ids = entry["prompt_ids"].get<std::vector<int32_t>>();
    c.greedy_ids = entry["greedy_ids"].get<std::vector<int32_t>>();
    cases.push_back(std::move(c));
  }
  return cases;
}

double MetricValue(const std::string& exposition, const std::string& series) {
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() > series.size() &&
        line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return -1;
}

}  // namespace slabserve::testing
