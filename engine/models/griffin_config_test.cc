#include "engine/models/griffin_config.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/io/checkpoint.h"
#include "engine/models/griffin.h"
#include "engine/models/registry.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace slabserve {
namespace {

const char kGolden[] = "tests/golden/griffin_tiny";

nlohmann::json TinyConfig() {
  std::ifstream in(std::string(kGolden) + "/config.json");
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

absl::StatusOr<GriffinConfig> Parse(const nlohmann::json& json) {
  absl::StatusOr<std::unique_ptr<Config>> config =
      Config::Parse(json.dump(), "model/config.json");
  if (!config.ok()) return config.status();
  return ParseGriffinConfig(**config);
}

// The error for `json`, which must name the file and `key`.
void ExpectError(const nlohmann::json& json, const std::string& key) {
  absl::StatusOr<GriffinConfig> config = Parse(json);
  ASSERT_FALSE(config.ok()) << "accepted a bad '" << key << "'";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(config.status().message());
  EXPECT_NE(message.find("config.json"), std::string::npos) << message;
  EXPECT_NE(message.find(key), std::string::npos) << message;
}

TEST(GriffinConfigTest, ReadsTheTinyConfig) {
  absl::StatusOr<GriffinConfig> c = Parse(TinyConfig());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vocab_size, 512);
  EXPECT_EQ(c->num_layers, 6);
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->lru_width, 64);
  EXPECT_EQ(c->num_heads, 4);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->num_kv_heads, 1);
  EXPECT_EQ(c->mlp_width, 96);  // intermediate_size / 2
  EXPECT_EQ(c->attention_window, 8);
  EXPECT_EQ(c->conv_width, 4);
  EXPECT_EQ(c->rotary_dims, 8);
  EXPECT_EQ(c->embedding_scale, 8.0f);
  EXPECT_EQ(c->logits_soft_cap, 30.0f);
  EXPECT_FLOAT_EQ(c->rms_norm_eps, 1e-6f);
  EXPECT_EQ(c->num_attention_layers(), 2);
  EXPECT_EQ(c->layers[2], GriffinBlock::kAttention);
  EXPECT_EQ(c->layers[3], GriffinBlock::kRecurrent);
  EXPECT_EQ(c->layers[5], GriffinBlock::kAttention);
}

TEST(GriffinConfigTest, DefaultsAndAlternativeKeys) {
  nlohmann::json json = TinyConfig();
  json.erase("block_types");    // the underscored key alone is enough
  json["lru_width"] = nullptr;  // R = D
  json["hidden_size"] = 96;
  json["lru_width"] = nullptr;
  json["head_dim"] = 999;  // ignored: recomputed as D / H
  json.erase("logits_soft_cap");
  json["embeddings_scale_by_sqrt_dim"] = true;
  absl::StatusOr<GriffinConfig> c = Parse(json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->lru_width, 96);
  EXPECT_EQ(c->head_dim, 24);
  EXPECT_EQ(c->embedding_scale, 9.8125f);  // bf16(sqrt(96)), not 9.75
  EXPECT_EQ(c->logits_soft_cap, 30.0f);    // absent: the HF default

  json["logits_soft_cap"] = nullptr;
  json["embeddings_scale_by_sqrt_dim"] = false;
  json["_block_types"] = {"recurrent"};
  c = Parse(json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->logits_soft_cap, 0.0f);  // null: no cap
  EXPECT_EQ(c->embedding_scale, 1.0f);
  EXPECT_EQ(c->num_attention_layers(), 0);
}

TEST(GriffinConfigTest, RejectsMalformedConfigs) {
  auto with = [](const std::string& key, const nlohmann::json& value) {
    nlohmann::json json = TinyConfig();
    json[key] = value;
    return json;
  };
  ExpectError(with("block_types", {"recurrent", "mamba"}), "block_types");
  ExpectError(with("block_types", nlohmann::json::array()), "block_types");
  ExpectError(with("num_attention_heads", 5), "num_attention_heads");
  ExpectError(with("lru_width", 66), "num_attention_heads");
  ExpectError(with("num_key_value_heads", 3), "num_key_value_heads");
  ExpectError(with("intermediate_size", 191), "intermediate_size");
  ExpectError(with("hidden_size", 0), "hidden_size");
  ExpectError(with("attention_window_size", 0), "attention_window_size");
  ExpectError(with("vocab_size", "big"), "vocab_size");
  ExpectError(with("hidden_activation", "relu"), "hidden_activation");
  ExpectError(with("partial_rotary_factor", 0.5625), "partial_rotary_factor");
  ExpectError(with("rms_norm_eps", -1.0), "rms_norm_eps");
  ExpectError(with("bos_token_id", 512), "bos_token_id");
  ExpectError(with("logits_soft_cap", -1.0), "logits_soft_cap");
  nlohmann::json json = TinyConfig();
  json.erase("block_types");
  json.erase("_block_types");
  ExpectError(json, "block_types");
  json = TinyConfig();
  json.erase("num_hidden_layers");
  ExpectError(json, "num_hidden_layers");
}

// A model directory with `config` and a link to the tiny model's weights.
std::string MakeModelDir(const std::string& name,
                         const nlohmann::json& config) {
  const std::filesystem::path dir =
      std::filesystem::path(std::getenv("TEST_TMPDIR")) / name;
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << config.dump();
  std::filesystem::remove(dir / "model.safetensors");
  std::filesystem::create_symlink(
      std::filesystem::absolute(std::string(kGolden) + "/model.safetensors"),
      dir / "model.safetensors");
  return dir.string();
}

std::string LoadError(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<Model>> model = LoadModel(dir);
  EXPECT_FALSE(model.ok());
  return model.ok() ? "" : std::string(model.status().message());
}

TEST(GriffinLoadTest, WeightsMustMatchTheConfigExactly) {
  nlohmann::json json = TinyConfig();
  json["intermediate_size"] = 200;  // MLP width 100, file has 96
  std::string message = LoadError(MakeModelDir("wide_mlp", json));
  EXPECT_NE(message.find("model.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("model.layers.0.mlp_block.gate_proj.weight"),
            std::string::npos)
      << message;

  json = TinyConfig();
  json["num_hidden_layers"] = 5;  // layer 5 is left over
  message = LoadError(MakeModelDir("fewer_layers", json));
  EXPECT_NE(message.find("model.layers.5."), std::string::npos) << message;

  json = TinyConfig();
  json["block_types"] = {"recurrent"};  // layer 2 has attention tensors
  message = LoadError(MakeModelDir("all_recurrent", json));
  EXPECT_NE(message.find("model.layers.2.temporal_block.linear_x.weight"),
            std::string::npos)
      << message;

  json = TinyConfig();
  json["model_type"] = "llama";
  message = LoadError(MakeModelDir("llama", json));
  EXPECT_NE(message.find("model_type"), std::string::npos) << message;
  EXPECT_NE(message.find("llama"), std::string::npos) << message;
}

}  // namespace
}  // namespace slabserve
