#include "loadtest/report.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace slabload {
namespace {

Distribution Spread(double p50) {
  Distribution d;
  d.count = 4;
  d.mean = d.p50 = p50;
  d.p90 = d.p95 = d.p99 = d.max = 2 * p50;
  return d;
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A sweep whose requests each got all their tokens in one chunk has no
// inter-token gaps: its ITL figures are zero, which a log axis cannot draw.
// The plot still succeeds, with that panel on a linear axis.
TEST(PlotSweepTest, ZeroLatenciesGetALinearAxis) {
  if (access("/usr/bin/gnuplot", X_OK) != 0) {
    GTEST_SKIP() << "no /usr/bin/gnuplot";
  }
  std::vector<PointResult> points(2);
  for (int i = 0; i < 2; ++i) {
    PointResult& p = points[i];
    p.mode = "closed";
    p.concurrency = 1 << (2 * i);
    p.summary.sent = p.summary.completed = 8;
    p.summary.duration_s = 1;
    p.summary.requests_per_s = 8;
    p.summary.output_tokens_per_s = 32;
    p.summary.ttft_ms = Spread(3.0 + i);
    p.summary.tpot_ms = Spread(1.0);
    p.summary.e2e_ms = Spread(10.0 + i);
    // itl_ms stays all zero.
  }
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/plots";
  const absl::Status status = PlotSweep(dir, points, /*by_rate=*/false);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_GT(Read(dir + "/latency.png").size(), 0u);
  EXPECT_GT(Read(dir + "/throughput.png").size(), 0u);
  // The line after each panel's title sets its y axis.
  const std::string script = Read(dir + "/plots.gp");
  auto axis = [&script](const std::string& title) {
    const std::string line = "set title '" + title + "'\n";
    const size_t at = script.find(line);
    if (at == std::string::npos) return std::string("no panel");
    const size_t begin = at + line.size();
    return script.substr(begin, script.find('\n', begin) - begin);
  };
  EXPECT_EQ(axis("Time to first token"), "set logscale y");
  EXPECT_EQ(axis("Inter-token latency"), "unset logscale y");
  EXPECT_EQ(axis("End-to-end latency"), "set logscale y");
}

}  // namespace
}  // namespace slabload
