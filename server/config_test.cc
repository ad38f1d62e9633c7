#include "server/config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slabserve::server {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, DefaultConfigFileLoadsAndValidates) {
  absl::StatusOr<ServerConfig> config =
      LoadConfigFile("configs/default.textproto");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->model_dir(), "models/default");
  EXPECT_TRUE(ValidateConfig(*config).ok()) << ValidateConfig(*config);
  // The default model carries its own tokenizer.model.
  EXPECT_EQ(ResolveTokenizerPath(*config), "models/default/tokenizer.model");
}

TEST(ConfigTest, UnsetFieldsKeepTheirDefaults) {
  absl::StatusOr<ServerConfig> config =
      ParseConfigText("model_dir: \"tests/golden/griffin_tiny\"", "inline");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->listen(), "127.0.0.1:50051");
  EXPECT_EQ(config->max_tokens_limit(), 4096);
  EXPECT_EQ(config->log_level(), "info");
  EXPECT_EQ(config->backend(), "auto");
  EXPECT_TRUE(ValidateConfig(*config).ok());
  // griffin_tiny has no tokenizer.model of its own.
  EXPECT_EQ(ResolveTokenizerPath(*config), "");
}

TEST(ConfigTest, SyntaxErrorsNameTheSourceAndLine) {
  absl::StatusOr<ServerConfig> config =
      ParseConfigText("model_dir: \"x\"\nno_such_field: 3\n", "my.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("my.textproto"));
  EXPECT_THAT(config.status().message(), HasSubstr("line 2"));
  EXPECT_THAT(config.status().message(), HasSubstr("no_such_field"));
}

TEST(ConfigTest, MissingFileIsNotFound) {
  absl::StatusOr<ServerConfig> config = LoadConfigFile("no/such/file");
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(config.status().message(), HasSubstr("no/such/file"));
}

TEST(ConfigTest, ValidationNamesTheBadField) {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::string model = "model_dir: \"tests/golden/griffin_tiny\" ";
  const Case cases[] = {
      {"", "model_dir is not set"},
      {"model_dir: \"tests/golden\"", "has no config.json"},
      {model + "listen: \"nowhere\"", "listen: address \"nowhere\""},
      {model + "listen: \"127.0.0.1:99999\"", "no valid port"},
      {model + "metrics_listen: \"x:y\"", "metrics_listen"},
      {model + "openai_listen: \"x:y\"", "openai_listen"},
      {model + "openai_max_body_bytes: 0", "openai_max_body_bytes must be > 0"},
      {model + "state_memory_bytes: 0", "state_memory_bytes must be > 0"},
      {model + "step_token_budget: -1", "step_token_budget must be > 0"},
      {model + "max_batch: 0", "max_batch must be > 0"},
      {model + "block_tokens: -1", "block_tokens must be in [0, 65536]"},
      {model + "swap_space_bytes: -1", "swap_space_bytes must be >= 0"},
      {model + "stream_interval: 0", "stream_interval must be > 0"},
      {model + "stream_buffer_tokens: 8 stream_interval: 9",
       "stream_interval (9) must be at most stream_buffer_tokens (8)"},
      {model + "log_level: \"loud\"", "log_level \"loud\" is not one of"},
      {model + "backend: \"gpu\"",
       "config: backend \"gpu\" is not one of auto, cpu, cuda"},
      {model + "cuda_graph_max_batch: -2", "cuda_graph_max_batch must be >= 0"},
      {model + "device_weights: \"fp8\"",
       "device_weights \"fp8\" is not one of f32, bf16"},
      {model + "max_tokens_limit: 0", "max_tokens_limit must be > 0"},
      {model + "drain_grace_seconds: -1", "drain_grace_seconds must be >= 0"},
      {model + "drain_listen_seconds: -1", "drain_listen_seconds must be >= 0"},
      {model + "tokenizer_path: \"missing.model\"", "tokenizer_path"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ServerConfig> config = ParseConfigText(c.text, "inline");
    ASSERT_TRUE(config.ok()) << c.text;
    absl::Status status = ValidateConfig(*config);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(status.message(), HasSubstr(c.message)) << c.text;
  }
}

TEST(ConfigTest, ByteSizesAcceptBinaryAndDecimalUnits) {
  EXPECT_EQ(*ParseByteSize("1024"), 1024);
  EXPECT_EQ(*ParseByteSize("64KiB"), 64 << 10);
  EXPECT_EQ(*ParseByteSize("512MiB"), int64_t{512} << 20);
  EXPECT_EQ(*ParseByteSize("2GiB"), int64_t{2} << 30);
  EXPECT_EQ(*ParseByteSize("3 gb"), int64_t{3000000000});
  EXPECT_THAT(ParseByteSize("lots").status().message(),
              HasSubstr("must start with a number"));
  EXPECT_THAT(ParseByteSize("5 parsecs").status().message(),
              HasSubstr("unknown unit"));
  EXPECT_FALSE(ParseByteSize("99999999999999GiB").ok());
}

TEST(ConfigTest, HostPortParsing) {
  std::string host;
  int port = -1;
  ASSERT_TRUE(ParseHostPort("127.0.0.1:0", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(ParseHostPort("[::1]:8080", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 8080);
  EXPECT_FALSE(ParseHostPort(":80", &host, &port).ok());
  EXPECT_FALSE(ParseHostPort("host:-1", &host, &port).ok());
}

}  // namespace
}  // namespace slabserve::server
