#include "server/openai_request.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slabserve::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

absl::StatusOr<OpenAiRequest> Parse(OpenAiEndpoint endpoint,
                                    const std::string& body) {
  OpenAiLimits limits;
  limits.max_messages = 2;
  return ParseOpenAiRequest(endpoint, body, "tiny", ChatTemplate::Default(),
                            limits);
}

TEST(OpenAiRequestTest, MapsCompletionFields) {
  absl::StatusOr<OpenAiRequest> parsed =
      Parse(OpenAiEndpoint::kCompletions, R"({
    "model": "tiny", "prompt": "In the beginning", "max_tokens": 7,
    "temperature": 0, "top_p": 0.5, "n": 2, "stop": ["\n", "God"],
    "seed": 42, "logprobs": 3, "stream": true, "ignore_eos": true,
    "stream_options": {"include_usage": true}})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const v1::GenerateRequest& request = parsed->generate;
  EXPECT_EQ(request.text(), "In the beginning");
  EXPECT_EQ(request.max_tokens(), 7);
  EXPECT_EQ(request.sampling().temperature(), 0);
  EXPECT_FLOAT_EQ(request.sampling().top_p(), 0.5);
  EXPECT_EQ(request.n(), 2);
  EXPECT_THAT(request.stop(), ElementsAre("\n", "God"));
  EXPECT_EQ(request.sampling().seed(), 42u);
  EXPECT_TRUE(request.logprobs());
  EXPECT_EQ(request.top_logprobs(), 3);
  EXPECT_TRUE(parsed->stream);
  EXPECT_TRUE(parsed->include_usage);
  EXPECT_TRUE(request.ignore_eos());
}

TEST(OpenAiRequestTest, DefaultsFollowOpenAi) {
  absl::StatusOr<OpenAiRequest> parsed = Parse(
      OpenAiEndpoint::kCompletions, R"({"model": "tiny", "prompt": [5, 6]})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->generate.token_ids().ids(), ElementsAre(5, 6));
  EXPECT_EQ(parsed->generate.max_tokens(), 16);
  EXPECT_EQ(parsed->generate.sampling().temperature(), 1);
  EXPECT_EQ(parsed->generate.n(), 1);
  EXPECT_FALSE(parsed->generate.logprobs());
  EXPECT_FALSE(parsed->stream);
}

TEST(OpenAiRequestTest, ChatRendersTheTemplate) {
  absl::StatusOr<OpenAiRequest> parsed = Parse(OpenAiEndpoint::kChat, R"({
    "model": "tiny", "max_completion_tokens": 3, "logprobs": true,
    "top_logprobs": 2, "messages": [
      {"role": "system", "content": "Answer in verse."},
      {"role": "user", "content": [{"type": "text", "text": "Who?"}]}]})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->generate.text(),
            "system: Answer in verse.\nuser: Who?\nassistant: ");
  EXPECT_EQ(parsed->generate.max_tokens(), 3);
  EXPECT_EQ(parsed->generate.top_logprobs(), 2);
}

void ExpectInvalid(OpenAiEndpoint endpoint, const std::string& body,
                   const std::string& param, const std::string& reason) {
  absl::StatusOr<OpenAiRequest> parsed = Parse(endpoint, body);
  ASSERT_FALSE(parsed.ok()) << body;
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(reason));
  EXPECT_THAT(OpenAiParamOf(parsed.status()), Optional(param)) << body;
}

TEST(OpenAiRequestTest, NamesTheBadField) {
  const auto kCompletions = OpenAiEndpoint::kCompletions;
  ExpectInvalid(kCompletions, "{not json", "", "JSON object");
  ExpectInvalid(kCompletions, R"({"model": "other", "prompt": "x"})", "model",
                "does not exist");
  ExpectInvalid(kCompletions, R"({"prompt": "x"})", "model", "required");
  ExpectInvalid(kCompletions, R"({"model": "tiny"})", "prompt", "required");
  ExpectInvalid(kCompletions,
                R"({"model": "tiny", "prompt": "x", "temperature": 3})",
                "temperature", "between");
  ExpectInvalid(kCompletions,
                R"({"model": "tiny", "prompt": "x", "max_tokens": "9"})",
                "max_tokens", "integer");
  ExpectInvalid(
      kCompletions,
      R"({"model": "tiny", "prompt": "x", "stop": ["a","b","c","d","e"]})",
      "stop", "at most 4");
  ExpectInvalid(kCompletions, R"({"model": "tiny", "prompt": "x", "n": 0})",
                "n", "at least");
  ExpectInvalid(kCompletions,
                R"({"model": "tiny", "prompt": "x", "echo": true})", "echo",
                "not supported");
  ExpectInvalid(
      OpenAiEndpoint::kChat,
      R"({"model": "tiny", "messages": [{"role": "user", "content": "a"},
                   {"role": "user", "content": "b"},
                   {"role": "user", "content": "c"}]})",
      "messages", "at most 2");
  ExpectInvalid(
      OpenAiEndpoint::kChat,
      R"({"model": "tiny", "messages": [{"role": "wizard", "content": "a"}]})",
      "messages", "role");
}

}  // namespace
}  // namespace slabserve::server
