// hybrid_qwen3 config parsing and the loader's checkpoint checks: every
// rejection names the key or tensor at fault.
#include "engine/models/bmojo_config.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/io/checkpoint.h"
#include "engine/io/config.h"
#include "engine/io/safetensors.h"
#include "engine/io/test_util.h"
#include "engine/models/bmojo.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace slabserve {
namespace {

const std::string kDir = "tests/golden/bmojo_tiny";

nlohmann::json TinyJson() {
  return nlohmann::json::parse(testing::ReadFile(kDir + "/config.json"));
}

absl::StatusOr<BmojoConfig> Parse(const nlohmann::json& json) {
  absl::StatusOr<std::unique_ptr<Config>> config =
      Config::Parse(json.dump(), "config.json");
  if (!config.ok()) return config.status();
  return ParseBmojoConfig(**config);
}

// Expects `edit` of the tiny config to be rejected with a message that
// contains `names`.
void ExpectRejected(const std::function<void(nlohmann::json&)>& edit,
                    const std::string& names) {
  nlohmann::json json = TinyJson();
  edit(json);
  const absl::StatusOr<BmojoConfig> config = Parse(json);
  ASSERT_FALSE(config.ok()) << names;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find(names), std::string::npos)
      << config.status();
}

TEST(BmojoConfigTest, ReadsTheTinyConfig) {
  const absl::StatusOr<BmojoConfig> c = Parse(TinyJson());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vocab_size, 512);
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->num_heads, 4);
  EXPECT_EQ(c->num_kv_heads, 2);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->window, 4);
  EXPECT_EQ(c->conv_width, 4);
  EXPECT_EQ(c->in_proj_rows(), 196);
  EXPECT_EQ(c->conv_channels(), 128);
  EXPECT_EQ(c->max_positions, 4096);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->bos_id, -1);
  const std::vector<BmojoLayerType> want = {
      BmojoLayerType::kAttention, BmojoLayerType::kBmojoF,
      BmojoLayerType::kAttention, BmojoLayerType::kBmojoF};
  EXPECT_EQ(c->layers, want);
  EXPECT_FALSE(c->eidetic.enabled());
}

TEST(BmojoConfigTest, OddWindowIsRoundedUpAndLegacyRopeThetaIsRead) {
  nlohmann::json json = TinyJson();
  json["bmojo_config"]["window_size"] = 7;
  json.erase("rope_parameters");
  json["rope_theta"] = 500.0;
  const absl::StatusOr<BmojoConfig> c = Parse(json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->window_size, 7);
  EXPECT_EQ(c->window, 8);
  EXPECT_DOUBLE_EQ(c->rope_theta, 500.0);
  EXPECT_EQ(EffectiveWindow(2048), 2048);
  EXPECT_EQ(EffectiveWindow(2047), 2048);
}

TEST(BmojoConfigTest, TokenIdsAndAllOneKindPatterns) {
  nlohmann::json json = TinyJson();
  json["eos_token_id"] = {7, 9};
  json["pad_token_id"] = 0;
  json["bos_token_id"] = 151643;  // past the vocabulary: ignored
  json["hybrid_override_pattern"] = "BMF-BMF-BMF-BMF";
  absl::StatusOr<BmojoConfig> c = Parse(json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->eos_id, 7);
  EXPECT_EQ(c->pad_id, 0);
  EXPECT_EQ(c->bos_id, -1);
  EXPECT_EQ(c->num_bmojo_layers(), 4);
  json["hybrid_override_pattern"] = "*-*-*-*";
  c = Parse(json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_attention_layers(), 4);
}

TEST(BmojoConfigTest, RejectsPatternsThatDoNotFitTheModel) {
  ExpectRejected([](auto& j) { j["hybrid_override_pattern"] = "*-BMF-*"; },
                 "'hybrid_override_pattern' has 3 layer symbols, expected 4");
  ExpectRejected([](auto& j) { j["hybrid_override_pattern"] = "*-M2-*-BMF"; },
                 "layer 1 has type \"M2\"");
  ExpectRejected([](auto& j) { j["hybrid_override_pattern"] = "*-BMF*-*-BMF"; },
                 "\"BMF*\"");
  ExpectRejected([](auto& j) { j.erase("hybrid_override_pattern"); },
                 "'hybrid_override_pattern' is missing");
}

TEST(BmojoConfigTest, RejectsMamba2GeometryOtherThanTheAttentions) {
  ExpectRejected([](auto& j) { j["mamba2_config"]["d_inner"] = 128; },
                 "'mamba2_config.d_inner' is 128, expected 64");
  ExpectRejected([](auto& j) { j["mamba2_config"]["d_xb"] = 64; },
                 "'mamba2_config.d_xb' is 64, expected 32");
  ExpectRejected([](auto& j) { j["mamba2_config"]["ssm_cfg"]["d_state"] = 64; },
                 "'mamba2_config.ssm_cfg.d_state' is 64, expected 16");
  ExpectRejected([](auto& j) { j["mamba2_config"]["ssm_cfg"]["ngroups"] = 1; },
                 "'mamba2_config.ssm_cfg.ngroups' is 1, expected 4");
  ExpectRejected([](auto& j) { j["mamba2_config"]["d_model"] = 32; },
                 "'mamba2_config.d_model' is 32, expected 64");
  ExpectRejected([](auto& j) { j["mamba2_config"]["d_conv"] = 1; },
                 "'mamba2_config.d_conv' must be in [2, 64]");
  ExpectRejected([](auto& j) { j["mamba2_config"]["use_pos_emb"] = true; },
                 "'mamba2_config.use_pos_emb' is true");
  ExpectRejected([](auto& j) { j.erase("mamba2_config"); },
                 "'mamba2_config' is missing");
}

TEST(BmojoConfigTest, RejectsBmojoSettingsThatAreNotImplemented) {
  ExpectRejected([](auto& j) { j["bmojo_config"]["ssm_mixer"] = "gka"; },
                 "'bmojo_config.ssm_mixer' \"gka\" is not supported");
  ExpectRejected([](auto& j) { j["bmojo_config"]["tie_attn_weights"] = false; },
                 "'bmojo_config.tie_attn_weights' is false");
  ExpectRejected([](auto& j) { j["bmojo_config"]["window_size"] = 0; },
                 "'bmojo_config.window_size' must be in [1");
  ExpectRejected([](auto& j) { j["bmojo_config"]["num_heads"] = 8; },
                 "'bmojo_config.num_heads' is 8, expected 4");
  ExpectRejected([](auto& j) { j["bmojo_config"]["head_dim"] = 32; },
                 "'bmojo_config.head_dim' is 32, expected 16");
  ExpectRejected([](auto& j) { j["bmojo_config"]["rms_norm_eps"] = 1e-5; },
                 "'bmojo_config.rms_norm_eps' is 1e-05");
  ExpectRejected([](auto& j) { j.erase("bmojo_config"); },
                 "'bmojo_config' is missing");
}

TEST(BmojoConfigTest, RejectsQwen3SettingsThatAreNotImplemented) {
  ExpectRejected([](auto& j) { j["attention_bias"] = true; },
                 "'attention_bias' is true");
  ExpectRejected([](auto& j) { j["num_key_value_heads"] = 3; },
                 "'num_key_value_heads' (3) must divide");
  ExpectRejected([](auto& j) { j["hidden_act"] = "gelu"; },
                 "'hidden_act' \"gelu\" is not supported");
  ExpectRejected([](auto& j) { j["rope_parameters"]["rope_type"] = "yarn"; },
                 "'rope_parameters.rope_type' \"yarn\" is not supported");
  ExpectRejected([](auto& j) { j["head_dim"] = 15; },
                 "'head_dim' must be even");
  ExpectRejected([](auto& j) { j.erase("max_position_embeddings"); },
                 "'max_position_embeddings' is missing");
}

TEST(BmojoConfigTest, EideticOptionsAreRangeChecked) {
  EXPECT_TRUE(EideticConfig{}.Validate().ok());
  EXPECT_TRUE((EideticConfig{256, 0.5, 2}).Validate().ok());
  EXPECT_FALSE((EideticConfig{-1, 0.5, 0}).Validate().ok());
  EXPECT_FALSE((EideticConfig{8, 1.5, 0}).Validate().ok());
  EXPECT_FALSE((EideticConfig{8, 0.5, -2}).Validate().ok());
}

// A copy of the tiny checkpoint whose tensors went through `edit`.
std::string EditedCheckpoint(
    const std::string& name,
    const std::function<void(std::vector<testing::RawTensor>&)>& edit) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open(kDir + "/model.safetensors");
  EXPECT_TRUE(file.ok()) << file.status();
  std::vector<testing::RawTensor> tensors;
  for (const auto& [tensor, entry] : (*file)->tensors()) {
    tensors.push_back(
        {tensor, "F32", entry.shape,
         std::string(reinterpret_cast<const char*>(entry.data), entry.nbytes)});
  }
  edit(tensors);
  const std::string dir = testing::MakeTempDir(name);
  testing::WriteFile(dir + "/config.json",
                     testing::ReadFile(kDir + "/config.json"));
  testing::WriteFile(dir + "/model.safetensors",
                     testing::SafetensorsImage(tensors));
  return dir;
}

std::string LoadError(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint =
      Checkpoint::Open(dir);
  if (!checkpoint.ok()) return checkpoint.status().ToString();
  absl::StatusOr<std::unique_ptr<Model>> model = LoadBmojo(**checkpoint);
  return model.ok() ? "" : model.status().ToString();
}

testing::RawTensor* Find(std::vector<testing::RawTensor>& tensors,
                         const std::string& name) {
  for (testing::RawTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  ADD_FAILURE() << "no tensor " << name;
  return &tensors[0];
}

TEST(BmojoLoadTest, TheTinyCheckpointLoads) {
  EXPECT_EQ(LoadError(EditedCheckpoint("same", [](auto&) {})), "");
}

TEST(BmojoLoadTest, RejectsAStockMamba2InProjSplit) {
  // 2·d_in + 2·ngroups·N + H rows, as a stock Mamba2 would have.
  const std::string error = LoadError(EditedCheckpoint("in_proj", [](auto& t) {
    testing::RawTensor* in_proj =
        Find(t, "model.layers.1.bmojo_f.mamba.in_proj.weight");
    in_proj->shape = {260, 64};
    in_proj->bytes.resize(260 * 64 * 4);
  }));
  EXPECT_NE(error.find("model.layers.1.bmojo_f.mamba.in_proj.weight"),
            std::string::npos)
      << error;
}

TEST(BmojoLoadTest, ConvWidthMustMatchDConv) {
  const std::string error = LoadError(EditedCheckpoint("conv", [](auto& t) {
    testing::RawTensor* conv =
        Find(t, "model.layers.3.bmojo_f.mamba.conv1d.weight");
    conv->shape = {128, 1, 3};
    conv->bytes.resize(128 * 3 * 4);
  }));
  EXPECT_NE(error.find("'model.layers.3.bmojo_f.mamba.conv1d.weight' has conv "
                       "width 3 but mamba2_config.d_conv is 4"),
            std::string::npos)
      << error;
}

TEST(BmojoLoadTest, RejectsProjectionBiases) {
  for (const std::string bias :
       {"model.layers.1.bmojo_f.bmojo_attn.q_proj.bias",
        "model.layers.3.bmojo_f.mamba.in_proj.bias",
        "model.layers.0.self_attn.k_proj.bias"}) {
    const std::string error = LoadError(EditedCheckpoint("bias", [&](auto& t) {
      t.push_back({bias, "F32", {4}, std::string(16, '\0')});
    }));
    EXPECT_NE(error.find("'" + bias + "': projection biases are not supported"),
              std::string::npos)
        << error;
  }
}

TEST(BmojoLoadTest, RejectsMissingAndUnexpectedTensors) {
  std::string error = LoadError(EditedCheckpoint("missing", [](auto& t) {
    t.erase(t.begin() + 20);  // some layer-1 tensor
  }));
  EXPECT_NE(error.find("missing tensor"), std::string::npos) << error;
  error = LoadError(EditedCheckpoint("extra", [](auto& t) {
    t.push_back({"model.layers.1.bmojo_f.bmojo_attn.q_proj_.weight",
                 "F32",
                 {64, 64},
                 std::string(64 * 64 * 4, '\0')});
  }));
  EXPECT_NE(error.find("q_proj_.weight"), std::string::npos) << error;
}

}  // namespace
}  // namespace slabserve
