#include "engine/io/checkpoint.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/io/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace slabserve {
namespace {

using ::slabserve::testing::MakeTempDir;
using ::slabserve::testing::RawTensor;
using ::slabserve::testing::ReadFile;
using ::slabserve::testing::SafetensorsImage;
using ::slabserve::testing::WriteFile;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kGriffin[] = "tests/golden/griffin_tiny";
constexpr char kEmbed[] = "model.embed_tokens.weight";
constexpr char kDownProj[] = "model.layers.0.mlp_block.down_proj.weight";
constexpr char kQProj[] = "model.layers.2.temporal_block.q_proj.weight";
constexpr char kConfig[] = R"({"hidden_size": 4})";

std::unique_ptr<Checkpoint> OpenOrDie(const std::string& dir,
                                      const std::string& weights_file = "") {
  auto checkpoint = Checkpoint::Open(dir, weights_file);
  EXPECT_TRUE(checkpoint.ok()) << checkpoint.status();
  return checkpoint.ok() ? std::move(*checkpoint) : nullptr;
}

// Round-to-nearest-even f32 -> bf16 -> f32 (inputs are finite).
float RoundToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  bits &= 0xffff0000u;
  float result;
  std::memcpy(&result, &bits, 4);
  return result;
}

std::string U16Bytes(const std::vector<uint16_t>& values) {
  std::string bytes;
  for (uint16_t v : values) {
    bytes += static_cast<char>(v & 0xff);
    bytes += static_cast<char>(v >> 8);
  }
  return bytes;
}

std::string F32Bytes(const std::vector<float>& values) {
  std::string bytes(values.size() * 4, '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// A checkpoint directory with kConfig and one weights file.
std::string WriteCheckpoint(const std::string& name,
                            const std::vector<RawTensor>& tensors,
                            size_t header_alignment = 8) {
  const std::string dir = MakeTempDir(name);
  WriteFile(dir + "/config.json", kConfig);
  WriteFile(dir + "/model.safetensors",
            SafetensorsImage(tensors, header_alignment));
  return dir;
}

TEST(CheckpointTest, LoadsGriffinTinyF32AsView) {
  auto checkpoint = OpenOrDie(kGriffin);
  ASSERT_NE(checkpoint, nullptr);
  EXPECT_EQ(*checkpoint->config().Int("hidden_size", 1, 1 << 20), 64);
  EXPECT_EQ(checkpoint->WeightsDType(), "f32");
  EXPECT_TRUE(checkpoint->Has(kEmbed));
  EXPECT_EQ(checkpoint->DType(kEmbed), "F32");
  EXPECT_EQ(checkpoint->DType("model.absent"), "");
  auto embed = checkpoint->Load(kEmbed, {512, 64});
  ASSERT_TRUE(embed.ok()) << embed.status();
  EXPECT_TRUE(embed->is_view());
  EXPECT_EQ(embed->size(), 512u * 64u);
  EXPECT_EQ(embed->shape(), (std::vector<int64_t>{512, 64}));
  float max_abs = 0;
  for (size_t i = 0; i < embed->size(); ++i) {
    ASSERT_TRUE(std::isfinite(embed->data()[i]));
    max_abs = std::max(max_abs, std::fabs(embed->data()[i]));
  }
  EXPECT_GT(max_abs, 0.0f);
}

TEST(CheckpointTest, Bf16WidensToRoundedF32) {
  auto f32 = OpenOrDie(kGriffin);
  auto bf16 = OpenOrDie(kGriffin, "model.bf16.safetensors");
  ASSERT_NE(f32, nullptr);
  ASSERT_NE(bf16, nullptr);
  EXPECT_EQ(bf16->WeightsDType(), "bf16");
  EXPECT_EQ(bf16->DType(kEmbed), "BF16");
  const std::vector<std::pair<std::string, std::vector<int64_t>>> tensors = {
      {kEmbed, {512, 64}}, {kDownProj, {64, 96}}, {kQProj, {64, 64}}};
  for (const auto& [name, shape] : tensors) {
    auto exact = f32->Load(name, shape);
    auto widened = bf16->Load(name, shape);
    ASSERT_TRUE(exact.ok()) << exact.status();
    ASSERT_TRUE(widened.ok()) << widened.status();
    EXPECT_FALSE(widened->is_view());
    ASSERT_EQ(exact->size(), widened->size());
    for (size_t i = 0; i < exact->size(); ++i) {
      ASSERT_EQ(widened->data()[i], RoundToBf16(exact->data()[i]))
          << name << "[" << i << "]";
    }
  }
}

TEST(CheckpointTest, F16ConvertsNormalsAndSubnormals) {
  const std::string dir = WriteCheckpoint(
      "f16",
      {{"h", "F16", {5}, U16Bytes({0x3c00, 0xc000, 0x0001, 0x03ff, 0x8000})}});
  auto checkpoint = OpenOrDie(dir);
  ASSERT_NE(checkpoint, nullptr);
  EXPECT_EQ(checkpoint->WeightsDType(), "f16");
  auto weight = checkpoint->Load("h", {5});
  ASSERT_TRUE(weight.ok()) << weight.status();
  const float* v = weight->data();
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], -2.0f);
  EXPECT_EQ(v[2], std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(v[3], std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(v[4], 0.0f);
  EXPECT_TRUE(std::signbit(v[4]));
}

TEST(CheckpointTest, NonFiniteWeightsAreRefusedWithTheTensorNamed) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    RawTensor tensor;
    std::string message;
  };
  const Case cases[] = {
      {{"f32_nan", "F32", {3}, F32Bytes({1.0f, nan, 2.0f})},
       "tensor 'f32_nan' holds NaN at element 1"},
      {{"f32_inf", "F32", {2}, F32Bytes({-inf, 0.0f})},
       "tensor 'f32_inf' holds an infinity at element 0"},
      {{"bf16_inf", "BF16", {2}, U16Bytes({0x3f80, 0x7f80})},
       "tensor 'bf16_inf' holds an infinity at element 1"},
      {{"f16_inf", "F16", {2}, U16Bytes({0xfc00, 0x3c00})},
       "tensor 'f16_inf' holds an infinity at element 0"},
      {{"f16_nan", "F16", {3}, U16Bytes({0x3c00, 0x3c00, 0x7e00})},
       "tensor 'f16_nan' holds NaN at element 2"},
  };
  for (const Case& c : cases) {
    const std::string dir = WriteCheckpoint(c.tensor.name, {c.tensor});
    auto checkpoint = OpenOrDie(dir);
    ASSERT_NE(checkpoint, nullptr);
    auto weight = checkpoint->Load(c.tensor.name, c.tensor.shape);
    ASSERT_FALSE(weight.ok()) << c.tensor.name;
    EXPECT_EQ(weight.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(weight.status().message(),
                AllOf(HasSubstr(c.message), HasSubstr("model.safetensors")));
  }
}

TEST(CheckpointTest, MisalignedF32IsCopied) {
  // Header padded to an odd length puts the data at an odd address.
  const std::vector<float> values = {1.5f, -2.0f, 3.25f};
  const std::string dir =
      WriteCheckpoint("misaligned", {{"w", "F32", {3}, F32Bytes(values)}},
                      /*header_alignment=*/1);
  const std::string image = ReadFile(dir + "/model.safetensors");
  ASSERT_NE(image.size() % 4, 0u) << "fixture must be misaligned";
  auto checkpoint = OpenOrDie(dir);
  ASSERT_NE(checkpoint, nullptr);
  auto weight = checkpoint->Load("w", {3});
  ASSERT_TRUE(weight.ok()) << weight.status();
  EXPECT_FALSE(weight->is_view());
  EXPECT_EQ(std::vector<float>(weight->data(), weight->data() + 3), values);
}

TEST(CheckpointTest, MixedDTypes) {
  const std::string dir =
      WriteCheckpoint("mixed", {{"a", "F32", {1}, F32Bytes({1})},
                                {"b", "BF16", {1}, U16Bytes({0x3f80})}});
  auto checkpoint = OpenOrDie(dir);
  ASSERT_NE(checkpoint, nullptr);
  EXPECT_EQ(checkpoint->WeightsDType(), "mixed");
  EXPECT_EQ(checkpoint->Load("b", {1})->data()[0], 1.0f);
}

TEST(CheckpointTest, MissingTensorAndWrongShape) {
  auto checkpoint = OpenOrDie(kGriffin);
  ASSERT_NE(checkpoint, nullptr);
  auto missing = checkpoint->Load("model.lm_head.weight", {512, 64});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              AllOf(HasSubstr("griffin_tiny/model.safetensors"),
                    HasSubstr("missing tensor 'model.lm_head.weight'"),
                    HasSubstr("[512, 64]")));
  auto wrong = checkpoint->Load(kEmbed, {64, 512});
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(
      wrong.status().message(),
      AllOf(HasSubstr("griffin_tiny/model.safetensors"), HasSubstr(kEmbed),
            HasSubstr("has shape [512, 64]"), HasSubstr("expected [64, 512]")));
}

TEST(CheckpointTest, CheckAllLoadedNamesUnexpectedTensors) {
  const std::string dir =
      WriteCheckpoint("unexpected", {{"used", "F32", {1}, F32Bytes({1})},
                                     {"extra", "F32", {1}, F32Bytes({2})},
                                     {"skipped", "F32", {1}, F32Bytes({3})}});
  auto checkpoint = OpenOrDie(dir);
  ASSERT_NE(checkpoint, nullptr);
  ASSERT_TRUE(checkpoint->Load("used", {1}).ok());
  const absl::Status status = checkpoint->CheckAllLoaded({"skipped"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("unexpected tensor 'extra' in "),
                    HasSubstr("model.safetensors")));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("skipped")));
  ASSERT_TRUE(checkpoint->Load("extra", {1}).ok());
  EXPECT_TRUE(checkpoint->CheckAllLoaded({"skipped"}).ok());
  EXPECT_FALSE(checkpoint->CheckAllLoaded().ok());
}

TEST(CheckpointTest, OpenErrors) {
  const std::string no_config = MakeTempDir("no_config");
  auto missing_config = Checkpoint::Open(no_config);
  ASSERT_FALSE(missing_config.ok());
  EXPECT_THAT(missing_config.status().message(),
              HasSubstr("no_config/config.json: cannot open"));

  const std::string no_weights = MakeTempDir("no_weights");
  WriteFile(no_weights + "/config.json", kConfig);
  auto missing_weights = Checkpoint::Open(no_weights);
  ASSERT_FALSE(missing_weights.ok());
  EXPECT_THAT(missing_weights.status().message(),
              AllOf(HasSubstr("no_weights"), HasSubstr("model.safetensors")));

  WriteFile(no_weights + "/model.safetensors", "short");
  auto truncated = Checkpoint::Open(no_weights);
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(
      truncated.status().message(),
      AllOf(HasSubstr("no_weights/model.safetensors"), HasSubstr("truncated")));

  auto bad_override = Checkpoint::Open(kGriffin, "model.f16.safetensors");
  ASSERT_FALSE(bad_override.ok());
  EXPECT_THAT(bad_override.status().message(),
              HasSubstr("model.f16.safetensors: cannot open"));
}

// Splits griffin_tiny into two shards plus an index.
class ShardedCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto file =
        SafetensorsFile::Open(std::string(kGriffin) + "/model.safetensors");
    ASSERT_TRUE(file.ok()) << file.status();
    original_ = std::move(*file);
    dir_ = MakeTempDir("sharded");
    WriteFile(dir_ + "/config.json",
              ReadFile(std::string(kGriffin) + "/config.json"));
    std::vector<RawTensor> shards[2];
    size_t i = 0;
    for (const auto& [name, entry] : original_->tensors()) {
      const int shard = i++ < original_->tensors().size() / 2 ? 0 : 1;
      shards[shard].push_back(
          {name, TensorDTypeName(entry.dtype), entry.shape,
           std::string(reinterpret_cast<const char*>(entry.data),
                       entry.nbytes)});
      index_["weight_map"][name] = ShardName(shard);
    }
    for (int shard = 0; shard < 2; ++shard) {
      WriteFile(dir_ + "/" + ShardName(shard), SafetensorsImage(shards[shard]));
    }
    index_["metadata"] = {{"total_size", 0}};
  }

  static std::string ShardName(int shard) {
    return "model-0000" + std::to_string(shard + 1) + "-of-00002.safetensors";
  }

  void WriteIndex() {
    WriteFile(dir_ + "/model.safetensors.index.json", index_.dump());
  }

  std::unique_ptr<SafetensorsFile> original_;
  std::string dir_;
  nlohmann::json index_;
};

TEST_F(ShardedCheckpointTest, LoadsIdenticalData) {
  WriteIndex();
  auto checkpoint = OpenOrDie(dir_);
  ASSERT_NE(checkpoint, nullptr);
  EXPECT_EQ(checkpoint->WeightsDType(), "f32");
  for (const auto& [name, entry] : original_->tensors()) {
    auto weight = checkpoint->Load(name, entry.shape);
    ASSERT_TRUE(weight.ok()) << weight.status();
    ASSERT_EQ(weight->size() * 4, entry.nbytes) << name;
    EXPECT_EQ(std::memcmp(weight->data(), entry.data, entry.nbytes), 0) << name;
  }
  EXPECT_TRUE(checkpoint->CheckAllLoaded().ok());
}

TEST_F(ShardedCheckpointTest, TensorMissingFromShard) {
  index_["weight_map"]["model.ghost.weight"] = ShardName(1);
  WriteIndex();
  auto checkpoint = Checkpoint::Open(dir_);
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_THAT(checkpoint.status().message(),
              AllOf(HasSubstr("model.safetensors.index.json"),
                    HasSubstr("'model.ghost.weight'"),
                    HasSubstr("missing from"), HasSubstr(ShardName(1))));
}

TEST_F(ShardedCheckpointTest, ShardOutsideDirectory) {
  index_["weight_map"][kEmbed] = "../" + ShardName(0);
  WriteIndex();
  auto checkpoint = Checkpoint::Open(dir_);
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_THAT(checkpoint.status().message(),
              AllOf(HasSubstr(kEmbed), HasSubstr("not a file inside")));
  index_["weight_map"][kEmbed] = "/etc/passwd";
  WriteIndex();
  EXPECT_FALSE(Checkpoint::Open(dir_).ok());
}

TEST_F(ShardedCheckpointTest, MalformedIndex) {
  WriteFile(dir_ + "/model.safetensors.index.json", "{\"weight_map\": [");
  auto not_json = Checkpoint::Open(dir_);
  ASSERT_FALSE(not_json.ok());
  EXPECT_THAT(not_json.status().message(),
              HasSubstr("model.safetensors.index.json: not valid JSON"));
  WriteFile(dir_ + "/model.safetensors.index.json", "{\"metadata\": {}}");
  auto no_map = Checkpoint::Open(dir_);
  ASSERT_FALSE(no_map.ok());
  EXPECT_THAT(no_map.status().message(),
              HasSubstr("missing object 'weight_map'"));
  index_["weight_map"][kEmbed] = 7;
  WriteIndex();
  auto bad_name = Checkpoint::Open(dir_);
  ASSERT_FALSE(bad_name.ok());
  EXPECT_THAT(bad_name.status().message(),
              HasSubstr("shard name must be a string"));
}

TEST_F(ShardedCheckpointTest, MissingShardFile) {
  index_["weight_map"][kEmbed] = "model-extra.safetensors";
  WriteIndex();
  auto checkpoint = Checkpoint::Open(dir_);
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_THAT(checkpoint.status().message(),
              HasSubstr("model-extra.safetensors: cannot open"));
}

}  // namespace
}  // namespace slabserve
