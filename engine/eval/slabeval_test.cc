// Runs the slabeval binary as a user would and checks its exit status and the
// results file it writes.
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "engine/eval/golden.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace {

const std::string kGriffin = "tests/golden/griffin_tiny";

// The exit status of slabeval with `args`; its output goes to `log`.
int Slabeval(const std::string& args, const std::string& log) {
  const std::string command =
      "engine/eval/slabeval " + args + " > " + log + " 2>&1";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string TmpPath(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

TEST(SlabevalTest, WritesResultsThatMatchTheGolden) {
  for (const std::string mode : {"", " --batch"}) {
    const std::string out = TmpPath("results.json");
    ASSERT_EQ(Slabeval("--model=" + kGriffin + " --golden=" + kGriffin +
                           "/golden.json --out=" + out + mode,
                       TmpPath("log.txt")),
              0)
        << mode;
    // The results file has the golden file's structure, so it loads as one;
    // every computed field must agree with the golden values.
    absl::StatusOr<GoldenFile> golden =
        LoadGoldenFile(kGriffin + "/golden.json");
    absl::StatusOr<GoldenFile> results = LoadGoldenFile(out);
    ASSERT_TRUE(golden.ok()) << golden.status();
    ASSERT_TRUE(results.ok()) << results.status();
    ASSERT_EQ(results->cases.size(), golden->cases.size());
    for (size_t i = 0; i < golden->cases.size(); ++i) {
      const GoldenCase& want = golden->cases[i];
      const GoldenCase& got = results->cases[i];
      EXPECT_EQ(got.name, want.name);
      EXPECT_EQ(got.greedy_ids, want.greedy_ids) << want.name;
      ASSERT_EQ(got.last_logits.size(), want.last_logits.size());
      for (size_t v = 0; v < want.last_logits.size(); ++v) {
        ASSERT_NEAR(got.last_logits[v], want.last_logits[v], 1e-4) << want.name;
      }
      ASSERT_EQ(got.position_checksums.size(), want.prompt_ids.size());
      ASSERT_EQ(got.step_top5.size(), want.step_top5.size());
      for (size_t k = 0; k < want.step_top5.size(); ++k) {
        EXPECT_EQ(got.step_top5[k].ids, want.step_top5[k].ids) << want.name;
      }
    }
  }
}

// SRM golden files have their own schema, states after the prompt included.
TEST(SlabevalTest, RunsSrmGoldenFiles) {
  const std::string srm = "tests/golden/srm_tiny";
  const std::string out = TmpPath("srm.json");
  ASSERT_EQ(Slabeval("--model=" + srm + " --golden=" + srm +
                         "/golden.json --out=" + out + " --batch",
                     TmpPath("srm.txt")),
            0);
  absl::StatusOr<GoldenFile> golden = LoadGoldenFile(srm + "/golden.json");
  absl::StatusOr<GoldenFile> results = LoadGoldenFile(out);
  ASSERT_TRUE(golden.ok()) << golden.status();
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->cases.size(), golden->cases.size());
  for (size_t i = 0; i < golden->cases.size(); ++i) {
    const GoldenCase& want = golden->cases[i];
    const GoldenCase& got = results->cases[i];
    EXPECT_EQ(got.greedy_ids, want.greedy_ids) << want.name;
    EXPECT_EQ(got.position_checksums.size(), want.prompt_ids.size());
    ASSERT_EQ(got.state_after_prompt.size(), want.state_after_prompt.size());
    for (size_t l = 0; l < want.state_after_prompt.size(); ++l) {
      ASSERT_EQ(got.state_after_prompt[l].size(),
                want.state_after_prompt[l].size());
      for (size_t c = 0; c < want.state_after_prompt[l].size(); ++c) {
        const double ref = want.state_after_prompt[l][c];
        EXPECT_NEAR(got.state_after_prompt[l][c], ref,
                    1e-4 * std::max(1.0, std::fabs(ref)));
      }
    }
  }
}

// B'MOJO golden files: per-position checksums and both states after the
// prompt come back in the golden file's own fields.
TEST(SlabevalTest, RunsBmojoGoldenFiles) {
  const std::string bmojo = "tests/golden/bmojo_tiny";
  for (const std::string mode : {" --batch", " --prefill_chunk=0"}) {
    const std::string out = TmpPath("bmojo.json");
    ASSERT_EQ(Slabeval("--model=" + bmojo + " --golden=" + bmojo +
                           "/golden.json --out=" + out + mode,
                       TmpPath("bmojo.txt")),
              0)
        << mode;
    absl::StatusOr<GoldenFile> golden = LoadGoldenFile(bmojo + "/golden.json");
    absl::StatusOr<GoldenFile> results = LoadGoldenFile(out);
    ASSERT_TRUE(golden.ok()) << golden.status();
    ASSERT_TRUE(results.ok()) << results.status();
    ASSERT_EQ(results->format, GoldenFormat::kBmojo);
    ASSERT_EQ(results->cases.size(), golden->cases.size());
    for (size_t i = 0; i < golden->cases.size(); ++i) {
      const GoldenCase& want = golden->cases[i];
      const GoldenCase& got = results->cases[i];
      EXPECT_EQ(got.greedy_ids, want.greedy_ids) << want.name;
      EXPECT_EQ(got.ssm_state_width, want.ssm_state_width);
      ASSERT_EQ(got.state_after_prompt.size(), want.state_after_prompt.size());
      for (size_t l = 0; l < want.state_after_prompt.size(); ++l) {
        ASSERT_EQ(got.state_after_prompt[l].size(),
                  want.state_after_prompt[l].size());
        for (size_t c = 0; c < want.state_after_prompt[l].size(); ++c) {
          EXPECT_NEAR(got.state_after_prompt[l][c],
                      want.state_after_prompt[l][c], 1e-4);
        }
      }
    }
  }
}

TEST(SlabevalTest, BadFlagsAndMismatchesExitNonZero) {
  const std::string out = TmpPath("bad.json");
  const std::string log = TmpPath("bad.txt");
  EXPECT_EQ(Slabeval("--golden=" + kGriffin + "/golden.json --out=" + out, log),
            2);
  EXPECT_EQ(Slabeval("--model=tests/golden/missing --golden=" + kGriffin +
                         "/golden.json --out=" + out,
                     log),
            2);
  EXPECT_EQ(Slabeval("--model=" + kGriffin + " --golden=" + kGriffin +
                         "/missing.json --out=" + out,
                     log),
            2);
  // Hawk's weights cannot reproduce Griffin's golden data.
  EXPECT_EQ(Slabeval("--model=tests/golden/hawk_tiny --golden=" + kGriffin +
                         "/golden.json --out=" + out,
                     log),
            1);
}

}  // namespace
}  // namespace slabserve
