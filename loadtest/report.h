// Reports of slabload runs: a readable summary on stdout, JSON, CSV for
// sweeps and PNG plots drawn with gnuplot.
#ifndef SLABSERVE_LOADTEST_REPORT_H_
#define SLABSERVE_LOADTEST_REPORT_H_

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "loadtest/server_metrics.h"
#include "loadtest/stats.h"

namespace slabload {

// One load point: how it was driven and what came out.
struct PointResult {
  std::string mode;  // "closed", "open" or "burst"
  int concurrency = 0;
  double rate = 0;
  RunSummary summary;
  std::string stopped_early;
  // Server-side figures (counters end - start); empty when not scraped.
  std::map<std::string, double> server_metrics;
  std::string metrics_error;
  // With --replica-metrics: requests each replica behind a gateway served.
  std::vector<ReplicaShare> replicas;
};

void PrintSummary(const PointResult& point, std::FILE* out);

// One row per point, x being the concurrency or, with by_rate, the rate.
void PrintSweepTable(const std::vector<PointResult>& points, bool by_rate,
                     std::FILE* out);

nlohmann::json PointToJson(const PointResult& point);

absl::Status WriteFile(const std::string& path, const std::string& contents);

// Comma-separated, one row per point, with a header.
std::string SweepCsv(const std::vector<PointResult>& points);

// Draws throughput.png and latency.png into `dir` with /usr/bin/gnuplot.
absl::Status PlotSweep(const std::string& dir,
                       const std::vector<PointResult>& points, bool by_rate);

}  // namespace slabload

#endif  // SLABSERVE_LOADTEST_REPORT_H_
