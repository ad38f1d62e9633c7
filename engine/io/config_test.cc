#include "engine/io/config.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/io/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Config> ParseOrDie(const std::string& text) {
  auto config = Config::Parse(text, "dir/config.json");
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? std::move(*config) : nullptr;
}

TEST(ConfigTest, LoadsGoldenConfig) {
  auto config = Config::Load("tests/golden/griffin_tiny/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->path(), "tests/golden/griffin_tiny/config.json");
  EXPECT_EQ(*(*config)->Int("hidden_size", 1, 1 << 20), 64);
  EXPECT_DOUBLE_EQ(*(*config)->Float("rms_norm_eps", 0, 1), 1e-6);
  EXPECT_EQ(*(*config)->Bool("embeddings_scale_by_sqrt_dim"), true);
  EXPECT_EQ(*(*config)->String("hidden_activation"), "gelu_pytorch_tanh");
  EXPECT_EQ(*(*config)->StringList("block_types"),
            (std::vector<std::string>{"recurrent", "recurrent", "attention"}));
}

TEST(ConfigTest, MissingFileNamesPath) {
  auto config =
      Config::Load(testing::MakeTempDir("config_missing") + "/x.json");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(config.status().message(), HasSubstr("x.json: cannot open"));
}

TEST(ConfigTest, RejectsNonJsonAndNonObject) {
  auto not_json = Config::Parse("{\"a\": ", "dir/config.json");
  ASSERT_FALSE(not_json.ok());
  EXPECT_EQ(not_json.status().message(), "dir/config.json: not valid JSON");
  auto array = Config::Parse("[1]", "dir/config.json");
  ASSERT_FALSE(array.ok());
  EXPECT_EQ(array.status().message(), "dir/config.json: not a JSON object");
}

TEST(ConfigTest, IntRangeAndTypeErrors) {
  auto config =
      ParseOrDie(R"({"hidden_size": 0, "big": 18446744073709551615, "f": 64.0,)"
                 R"( "half": 2.5, "s": "64", "n": null})");
  ASSERT_NE(config, nullptr);
  auto zero = config->Int("hidden_size", 1, 1048576);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(zero.status().message(),
            "dir/config.json: 'hidden_size' must be in [1, 1048576], got 0");
  EXPECT_THAT(config->Int("big", 0, 100).status().message(),
              HasSubstr("'big' must be in [0, 100], got 18446744073709551615"));
  EXPECT_EQ(*config->Int("f", 1, 100), 64);
  EXPECT_THAT(config->Int("half", 0, 10).status().message(),
              HasSubstr("'half' must be an integer, got 2.5"));
  EXPECT_THAT(config->Int("s", 0, 100).status().message(),
              HasSubstr("'s' must be an integer, got \"64\""));
  EXPECT_THAT(config->Int("absent", 0, 1).status().message(),
              HasSubstr("'absent' is missing"));
  EXPECT_EQ(*config->Int("absent", 0, 10, 7), 7);
  EXPECT_EQ(*config->Int("n", 0, 10, 3), 3);  // null counts as absent
  EXPECT_FALSE(config->Has("n"));
  EXPECT_TRUE(config->Has("s"));
}

TEST(ConfigTest, FloatBoolStringErrors) {
  auto config = ParseOrDie(
      R"({"eps": -1, "theta": "x", "flag": 1, "name": 3, "cap": 30})");
  ASSERT_NE(config, nullptr);
  EXPECT_THAT(config->Float("eps", 0, 1).status().message(),
              HasSubstr("'eps' must be in [0, 1], got -1"));
  EXPECT_THAT(config->Float("theta", 0, 1).status().message(),
              HasSubstr("'theta' must be a number"));
  EXPECT_DOUBLE_EQ(*config->Float("cap", 0, 100), 30.0);
  EXPECT_DOUBLE_EQ(*config->Float("absent", 0, 1, 0.5), 0.5);
  EXPECT_THAT(config->Bool("flag").status().message(),
              HasSubstr("'flag' must be a boolean, got 1"));
  EXPECT_EQ(*config->Bool("absent", false), false);
  EXPECT_THAT(config->String("name").status().message(),
              HasSubstr("'name' must be a string, got 3"));
  EXPECT_EQ(*config->String("absent", std::string("d")), "d");
}

TEST(ConfigTest, Lists) {
  auto config = ParseOrDie(
      R"({"types": ["a", 1], "scales": [1, 2.5], "bad": [1, "x"], "o": {}})");
  ASSERT_NE(config, nullptr);
  EXPECT_THAT(config->StringList("types").status().message(),
              HasSubstr("'types' must be a list of strings"));
  EXPECT_THAT(config->StringList("o").status().message(),
              HasSubstr("'o' must be a list of strings"));
  EXPECT_EQ(*config->FloatList("scales"), (std::vector<double>{1.0, 2.5}));
  EXPECT_THAT(config->FloatList("bad").status().message(),
              HasSubstr("'bad' must be a list of numbers"));
  EXPECT_THAT(config->FloatList("absent").status().message(),
              HasSubstr("'absent' is missing"));
  EXPECT_EQ(config->Error("k", "is odd").message(),
            "dir/config.json: 'k' is odd");
}

}  // namespace
}  // namespace slabserve
