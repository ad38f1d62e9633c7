#include "loadtest/server_metrics.h"

#include <gtest/gtest.h>

namespace slabload {
namespace {

constexpr char kBefore[] = R"(# HELP slabserve_requests_total Requests.
# TYPE slabserve_requests_total counter
slabserve_requests_total{status="ok"} 10
# TYPE slabserve_slots_in_use gauge
slabserve_slots_in_use 3
# TYPE slabserve_ttft_seconds histogram
slabserve_ttft_seconds_bucket{le="0.1"} 4
slabserve_ttft_seconds_sum 1.5
slabserve_ttft_seconds_count 10
)";

constexpr char kAfter[] = R"(# TYPE slabserve_requests_total counter
slabserve_requests_total{status="ok"} 25 1700000000000
slabserve_requests_total{status="a b"} 2
# TYPE slabserve_slots_in_use gauge
slabserve_slots_in_use 1
# TYPE slabserve_ttft_seconds histogram
slabserve_ttft_seconds_bucket{le="0.1"} 9
slabserve_ttft_seconds_sum 4
slabserve_ttft_seconds_count 25
broken_line_without_value
also broken x
)";

TEST(ServerMetricsTest, ParsesSeriesAndTypes) {
  const MetricsSnapshot s = ParseMetrics(kAfter);
  EXPECT_EQ(s.values.at("slabserve_requests_total{status=\"ok\"}"), 25);
  EXPECT_EQ(s.values.at("slabserve_requests_total{status=\"a b\"}"), 2);
  EXPECT_EQ(s.types.at("slabserve_slots_in_use"), "gauge");
  EXPECT_EQ(s.values.count("broken_line_without_value"), 0u);
  EXPECT_EQ(s.values.count("also"), 0u);
}

TEST(ServerMetricsTest, CountersAreDeltasGaugesAreEndValues) {
  const std::map<std::string, double> d =
      MetricsDelta(ParseMetrics(kBefore), ParseMetrics(kAfter));
  EXPECT_EQ(d.at("slabserve_requests_total{status=\"ok\"}"), 15);
  EXPECT_EQ(d.at("slabserve_requests_total{status=\"a b\"}"), 2);
  EXPECT_EQ(d.at("slabserve_slots_in_use"), 1);
  EXPECT_EQ(d.at("slabserve_ttft_seconds_bucket{le=\"0.1\"}"), 5);
  EXPECT_EQ(d.at("slabserve_ttft_seconds_sum"), 2.5);
  EXPECT_EQ(d.at("slabserve_ttft_seconds_count"), 15);
}

TEST(ServerMetricsTest, UnreachableEndpointIsAnError) {
  EXPECT_FALSE(ScrapeMetrics("127.0.0.1:1").ok());
  EXPECT_FALSE(ScrapeMetrics("no-port").ok());
}

}  // namespace
TEST(ServerMetricsTest, RequestsServedSumsEveryStatus) {
  MetricsSnapshot snapshot = ParseMetrics(
      "slabserve_requests_total{status=\"ok\"} 7\n"
      "slabserve_requests_total{status=\"unavailable\"} 2\n"
      "slabserve_prompt_tokens_total 100\n");
  EXPECT_EQ(RequestsServed(snapshot), 9);
  EXPECT_EQ(RequestsServed(MetricsSnapshot()), 0);
}

TEST(ServerMetricsTest, SharesAreOfAllReplicasServed) {
  std::vector<ReplicaShare> replicas(3);
  replicas[0].served_before = 10;
  replicas[0].served_after = 40;  // 30
  replicas[1].served_after = 10;  // 10
  replicas[2].served_after = 99;
  replicas[2].error = "connection refused";  // counts as none
  ComputeShares(&replicas);
  EXPECT_EQ(replicas[0].served, 30);
  EXPECT_DOUBLE_EQ(replicas[0].share, 0.75);
  EXPECT_DOUBLE_EQ(replicas[1].share, 0.25);
  EXPECT_EQ(replicas[2].served, 0);
  EXPECT_EQ(replicas[2].share, 0);

  std::vector<ReplicaShare> idle(2);
  ComputeShares(&idle);
  EXPECT_EQ(idle[0].share, 0);
}

}  // namespace slabload
