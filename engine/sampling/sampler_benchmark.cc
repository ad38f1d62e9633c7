// Cost of choosing one token from one row of logits, per sampling setting and
// vocabulary size, on one thread: the part of a decode step that grows with
// the vocabulary rather than the model. Prints a table and one JSON line.
//
// Usage (from the workspace root):
//   bazel run --config=opt //engine/sampling:sampler_benchmark
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "engine/sampling/sampler.h"

namespace slabserve {
namespace {

struct Setting {
  const char* name;
  SamplingParams params;
  int top_logprobs = -1;  // -1: none
};

std::vector<Setting> Settings() {
  auto with = [](float temperature, int top_k, float top_p, float min_p) {
    SamplingParams p;
    p.temperature = temperature;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    return p;
  };
  return {{"greedy", with(0.0f, 0, 1.0f, 0.0f)},
          {"temperature", with(0.8f, 0, 1.0f, 0.0f)},
          {"top_k=50", with(0.8f, 50, 1.0f, 0.0f)},
          {"top_p=0.9", with(0.8f, 0, 0.9f, 0.0f)},
          {"top_k=50,top_p=0.9", with(0.8f, 50, 0.9f, 0.0f)},
          {"min_p=0.05,top_p=0.95", with(0.8f, 0, 0.95f, 0.05f)},
          {"greedy,logprobs=0", with(0.0f, 0, 1.0f, 0.0f), 0},
          {"greedy,logprobs=5", with(0.0f, 0, 1.0f, 0.0f), 5}};
}

// Logits shaped like a trained model's: a few strong candidates over a broad
// normal floor.
std::vector<std::vector<float>> Rows(int vocab, int rows) {
  std::mt19937 rng(17);
  std::normal_distribution<float> floor(0.0f, 2.0f);
  std::uniform_int_distribution<int> pick(0, vocab - 1);
  std::vector<std::vector<float>> out(rows, std::vector<float>(vocab));
  for (std::vector<float>& row : out) {
    for (float& x : row) x = floor(rng);
    for (int i = 0; i < 8; ++i) row[pick(rng)] += 8.0f;
  }
  return out;
}

// Microseconds per row, the best of three passes over `rows`.
double MicrosPerRow(const Setting& setting,
                    const std::vector<std::vector<float>>& rows) {
  double best = 1e30;
  std::vector<float> scratch;
  for (int pass = 0; pass < 3; ++pass) {
    Sampler sampler(setting.params, 5);
    const auto start = std::chrono::steady_clock::now();
    for (const std::vector<float>& row : rows) {
      scratch = row;  // penalties may write the row
      sampler.Sample(absl::MakeSpan(scratch), setting.top_logprobs);
    }
    const std::chrono::duration<double, std::micro> took =
        std::chrono::steady_clock::now() - start;
    best = std::min(best, took.count() / rows.size());
  }
  return best;
}

int Main() {
  const std::vector<int> vocabs = {4096, 32000, 256000};
  const std::vector<Setting> settings = Settings();
  std::printf("%-24s", "us per row");
  for (int vocab : vocabs) std::printf("%12d", vocab);
  std::printf("\n");
  std::string json = "{\"us_per_row\":{";
  for (size_t s = 0; s < settings.size(); ++s) {
    std::printf("%-24s", settings[s].name);
    json += (s ? ",\"" : "\"") + std::string(settings[s].name) + "\":{";
    for (size_t v = 0; v < vocabs.size(); ++v) {
      // About 2^24 logits per measurement, at least 8 rows.
      const int rows = std::max(8, (1 << 24) / vocabs[v]);
      const double us = MicrosPerRow(settings[s], Rows(vocabs[v], rows));
      std::printf("%12.1f", us);
      json += (v ? ",\"" : "\"") + std::to_string(vocabs[v]) +
              "\":" + std::to_string(us);
    }
    std::printf("\n");
    json += "}";
  }
  std::printf("%s}}\n", json.c_str());
  return 0;
}

}  // namespace
}  // namespace slabserve

int main() { return slabserve::Main(); }
