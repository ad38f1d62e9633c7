#include "loadtest/workload.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace slabload {
namespace {

TEST(ParseLengthRangeTest, FixedAndRange) {
  absl::StatusOr<LengthRange> fixed = ParseLengthRange("128", "prompt-len");
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->min, 128);
  EXPECT_EQ(fixed->max, 128);
  absl::StatusOr<LengthRange> range = ParseLengthRange("8:32", "prompt-len");
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->min, 8);
  EXPECT_EQ(range->max, 32);
}

TEST(ParseLengthRangeTest, RejectsBadInputNamingTheFlag) {
  for (const char* bad : {"", "0", "-3", "x", "9:3", "1:2:3", "4:"}) {
    absl::StatusOr<LengthRange> r = ParseLengthRange(bad, "output-len");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("--output-len"), std::string::npos);
  }
}

std::string WriteTemp(const std::string& contents) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir ? dir : "/tmp") + "/prompts.jsonl";
  std::ofstream(path) << contents;
  return path;
}

TEST(LoadPromptsTest, ReadsTextAndIds) {
  const std::string path =
      WriteTemp("{\"prompt\": \"hello\"}\n\n{\"ids\": [5, 6, 7]}\n");
  absl::StatusOr<std::vector<PromptEntry>> prompts = LoadPrompts(path);
  ASSERT_TRUE(prompts.ok()) << prompts.status();
  ASSERT_EQ(prompts->size(), 2u);
  EXPECT_EQ((*prompts)[0].text, "hello");
  EXPECT_EQ((*prompts)[1].ids, (std::vector<int32_t>{5, 6, 7}));
}

TEST(LoadPromptsTest, ErrorsNameTheLine) {
  const std::string path =
      WriteTemp("{\"prompt\": \"ok\"}\n{\"ids\": [1, \"two\"]}\n");
  absl::StatusOr<std::vector<PromptEntry>> prompts = LoadPrompts(path);
  ASSERT_FALSE(prompts.ok());
  EXPECT_NE(prompts.status().message().find(":2:"), std::string::npos)
      << prompts.status();
  EXPECT_FALSE(LoadPrompts(WriteTemp("not json\n")).ok());
  EXPECT_FALSE(LoadPrompts(WriteTemp("{\"text\": \"x\"}\n")).ok());
  EXPECT_FALSE(LoadPrompts(WriteTemp("\n")).ok());
  EXPECT_FALSE(LoadPrompts("/nonexistent/prompts.jsonl").ok());
}

WorkloadOptions Synthetic() {
  WorkloadOptions options;
  options.prompt_len = {4, 12};
  options.output_len = {2, 5};
  options.vocab_size = 64;
  options.bos_token_id = 2;
  options.eos_token_id = 1;
  options.seed = 7;
  return options;
}

TEST(WorkloadTest, SyntheticRequestsAreSeededAndInRange) {
  Workload a(Synthetic()), b(Synthetic());
  for (int i = 0; i < 50; ++i) {
    const slabserve::v1::GenerateRequest ra = a.Next(), rb = b.Next();
    EXPECT_EQ(ra.SerializeAsString(), rb.SerializeAsString());
    const int n = ra.token_ids().ids_size();
    EXPECT_GE(n, 4);
    EXPECT_LE(n, 12);
    EXPECT_GE(ra.max_tokens(), 2);
    EXPECT_LE(ra.max_tokens(), 5);
    EXPECT_TRUE(ra.ignore_eos());
    for (int id : ra.token_ids().ids()) {
      EXPECT_GE(id, 4);
      EXPECT_LT(id, 64);
    }
  }
}

TEST(WorkloadTest, SharedPrefixStartsEveryPrompt) {
  WorkloadOptions options = Synthetic();
  options.shared_prefix = 6;
  ASSERT_TRUE(ValidateWorkload(options).ok());
  Workload workload(options);
  const auto first = workload.Next().token_ids().ids();
  for (int i = 0; i < 10; ++i) {
    const auto ids = workload.Next().token_ids().ids();
    ASSERT_GE(ids.size(), 6 + 4);
    for (int j = 0; j < 6; ++j) EXPECT_EQ(ids[j], first[j]);
  }
}

TEST(WorkloadTest, ValidationNamesTheProblem) {
  WorkloadOptions options = Synthetic();
  options.prompts = {PromptEntry{"text prompt", {}}};
  options.shared_prefix = 3;
  absl::Status status = ValidateWorkload(options);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("--shared-prefix"), std::string::npos);
  options = Synthetic();
  options.vocab_size = 5;
  EXPECT_FALSE(ValidateWorkload(options).ok());
}

TEST(PoissonArrivalsTest, MeanGapMatchesRate) {
  PoissonArrivals arrivals(50.0, 3);
  double last = 0;
  for (int i = 0; i < 20000; ++i) {
    const double t = arrivals.Next();
    ASSERT_GT(t, last);
    last = t;
  }
  EXPECT_NEAR(last / 20000, 1.0 / 50, 0.001);
}

}  // namespace
}  // namespace slabload
