#include "loadtest/stats.h"

#include <gtest/gtest.h>

namespace slabload {
namespace {

TEST(SummarizeTest, EmptyGivesZeros) {
  const Distribution d = Summarize({});
  EXPECT_EQ(d.count, 0);
  EXPECT_EQ(d.max, 0);
}

TEST(SummarizeTest, InterpolatesBetweenRanks) {
  std::vector<double> values;
  for (int i = 100; i >= 1; --i) values.push_back(i);  // unsorted input
  const Distribution d = Summarize(values);
  EXPECT_EQ(d.count, 100);
  EXPECT_DOUBLE_EQ(d.mean, 50.5);
  EXPECT_DOUBLE_EQ(d.p50, 50.5);
  EXPECT_DOUBLE_EQ(d.p90, 90.1);
  EXPECT_DOUBLE_EQ(d.p99, 99.01);
  EXPECT_DOUBLE_EQ(d.max, 100);
}

TEST(SummarizeTest, PercentilesAreOrdered) {
  const Distribution d = Summarize({5, 1, 1, 1, 200, 3, 7, 7, 9});
  EXPECT_LE(d.p50, d.p90);
  EXPECT_LE(d.p90, d.p95);
  EXPECT_LE(d.p95, d.p99);
  EXPECT_LE(d.p99, d.max);
  EXPECT_EQ(d.max, 200);
}

RequestRecord Finished(double start, std::vector<double> chunks) {
  RequestRecord r;
  r.start = start;
  r.chunk_times = chunks;
  r.chunk_tokens.assign(chunks.size(), 1);
  r.end = chunks.back();
  r.ok = true;
  r.status_code = "OK";
  r.prompt_tokens = 4;
  return r;
}

TEST(SummarizeRunTest, CountsLatenciesAndThroughput) {
  std::vector<RequestRecord> records;
  RequestRecord warm = Finished(0, {0.5, 0.6});
  warm.warmup = true;
  records.push_back(warm);
  records.push_back(Finished(1.0, {1.1, 1.2, 1.3}));  // TTFT 100 ms
  records.push_back(Finished(1.0, {1.4, 1.6, 2.0}));  // TTFT 400 ms
  records.back().chunk_tokens = {1, 4, 3};            // 8 tokens in 3 chunks
  RequestRecord failed;
  failed.start = 1.5;
  failed.end = 1.6;
  failed.status_code = "RESOURCE_EXHAUSTED";
  failed.error = "no free slot";
  records.push_back(failed);

  const RunSummary s = SummarizeRun(records, Slo{200, 0});
  EXPECT_EQ(s.sent, 3);
  EXPECT_EQ(s.completed, 2);
  EXPECT_EQ(s.errors, 1);
  EXPECT_EQ(s.sent, s.completed + s.errors);
  EXPECT_EQ(s.warmup_requests, 1);
  EXPECT_EQ(s.errors_by_status.at("RESOURCE_EXHAUSTED").count, 1);
  EXPECT_EQ(s.errors_by_status.at("RESOURCE_EXHAUSTED").example,
            "no free slot");
  EXPECT_DOUBLE_EQ(s.duration_s, 1.0);
  EXPECT_EQ(s.output_tokens, 11);
  EXPECT_EQ(s.chunks, 6);
  EXPECT_DOUBLE_EQ(s.tokens_per_chunk, 11.0 / 6);
  EXPECT_EQ(s.prompt_tokens, 8);
  EXPECT_DOUBLE_EQ(s.output_tokens_per_s, 11.0);
  EXPECT_DOUBLE_EQ(s.requests_per_s, 2.0);
  EXPECT_NEAR(s.ttft_ms.p50, 250, 1e-9);
  EXPECT_NEAR(s.ttft_ms.max, 400, 1e-9);
  EXPECT_EQ(s.itl_ms.count, 4);
  EXPECT_NEAR(s.itl_ms.max, 400, 1e-9);
  // Per token: 200 ms over 2 tokens after the first, 600 ms over 7.
  EXPECT_NEAR(s.tpot_ms.mean, (100 + 600.0 / 7) / 2.0, 1e-9);
  EXPECT_NEAR(s.e2e_ms.max, 1000, 1e-9);
  EXPECT_TRUE(s.has_slo);
  EXPECT_EQ(s.good_requests, 1);  // only the 100 ms TTFT meets 200 ms
  EXPECT_DOUBLE_EQ(s.goodput_per_s, 1.0);
}

TEST(SummarizeRunTest, ItlObjective) {
  const std::vector<RequestRecord> records = {Finished(0, {0.1, 0.11, 0.12}),
                                              Finished(0, {0.1, 0.3, 0.5})};
  const RunSummary s = SummarizeRun(records, Slo{0, 50});
  EXPECT_EQ(s.good_requests, 1);
}

}  // namespace
}  // namespace slabload
