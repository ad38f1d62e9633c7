// The default model served by configs/default.textproto: the C++ engine
// reproduces the PyTorch reference logits of the exported checkpoint, and the
// exported tokenizer round-trips text.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/eval/golden.h"
#include "engine/io/tokenizer.h"
#include "engine/models/registry.h"

namespace slabserve {
namespace {

constexpr char kModelDir[] = "models/default";

TEST(DefaultModelTest, EngineMatchesPytorchReference) {
  auto model = LoadModel(kModelDir);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->info().architecture, "griffin");
  auto golden = LoadGoldenFile(std::string(kModelDir) + "/reference.json");
  ASSERT_TRUE(golden.ok()) << golden.status();
  ASSERT_EQ(golden->cases.size(), 4u);
  for (int chunk : {0, 64}) {
    RunOptions options;
    options.prompt_chunk = chunk;
    auto results = RunCases(**model, golden->cases, options);
    ASSERT_TRUE(results.ok()) << results.status();
    for (size_t i = 0; i < results->size(); ++i) {
      CaseReport report = CompareCase(*golden, i, (*results)[i]);
      EXPECT_TRUE(report.ok())
          << report.name << " (chunk " << chunk
          << "): " << (report.problems.empty() ? "" : report.problems[0]);
      EXPECT_LE(report.max_logit_diff, 1e-4) << report.name;
      EXPECT_TRUE(report.greedy_match) << report.name;
    }
  }
}

TEST(DefaultModelTest, TokenizerRoundTripsWithGemmaSpecialIds) {
  auto tokenizer = Tokenizer::Load(std::string(kModelDir) + "/tokenizer.model");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->pad_id(), 0);
  EXPECT_EQ((*tokenizer)->eos_id(), 1);
  EXPECT_EQ((*tokenizer)->bos_id(), 2);
  for (const std::string text :
       {"In the beginning God created the heaven and the earth.",
        "And God said, Let there be light: and there was light.",
        "  two spaces, digits 1234, and café ünïcode — ok\n"}) {
    auto ids = (*tokenizer)->Encode(text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_FALSE(ids->empty());
    auto decoded = (*tokenizer)->Decode(*ids);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, text);
  }
}

TEST(DefaultModelTest, ReferencePromptsAreBosPlusTokenizerIds) {
  auto tokenizer = Tokenizer::Load(std::string(kModelDir) + "/tokenizer.model");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto golden = LoadGoldenFile(std::string(kModelDir) + "/reference.json");
  ASSERT_TRUE(golden.ok()) << golden.status();
  for (const auto& c : golden->json["cases"]) {
    auto ids = (*tokenizer)->Encode(c["prompt_text"].get<std::string>());
    ASSERT_TRUE(ids.ok()) << ids.status();
    ids->insert(ids->begin(), 2);
    EXPECT_EQ(*ids, c["prompt_ids"].get<std::vector<int32_t>>())
        << c["name"].get<std::string>();
  }
}

}  // namespace
}  // namespace slabserve
