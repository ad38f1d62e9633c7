// Scrapes the server's Prometheus endpoint (plain HTTP GET /metrics) so a
// run can report server-side figures: counters as end - start, gauges and
// everything else at the end.
#ifndef SLABSERVE_LOADTEST_SERVER_METRICS_H_
#define SLABSERVE_LOADTEST_SERVER_METRICS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace slabload {

struct MetricsSnapshot {
  // Series ("name" or "name{labels}") to value.
  std::map<std::string, double> values;
  // Metric family name to its # TYPE (counter, gauge, histogram, summary).
  std::map<std::string, std::string> types;
};

// Parses the Prometheus text exposition format. Malformed lines are skipped:
// a scrape is informative, never a reason to fail the run.
MetricsSnapshot ParseMetrics(absl::string_view text);

// GETs http://HOST:PORT/metrics with a few seconds' timeout.
absl::StatusOr<MetricsSnapshot> ScrapeMetrics(const std::string& host_port);

// Counters (and histogram/summary _sum, _count, _bucket series) as end minus
// start; other series at their end value.
std::map<std::string, double> MetricsDelta(const MetricsSnapshot& start,
                                           const MetricsSnapshot& end);

// Requests one replica behind a gateway served during a run, from its
// slabserve_requests_total (all statuses) scraped before and after.
struct ReplicaShare {
  std::string address;  // its metrics HOST:PORT
  double served_before = 0;
  double served_after = 0;
  double served = 0;  // after - before
  double share = 0;   // of all replicas' served; 0 when none served any
  std::string error;  // why it could not be scraped; the figures are 0 then
};

// slabserve_requests_total summed over its status labels.
double RequestsServed(const MetricsSnapshot& snapshot);

// Fills each replica's served and share from its before/after figures;
// replicas with an error count as serving none.
void ComputeShares(std::vector<ReplicaShare>* replicas);

}  // namespace slabload

#endif  // SLABSERVE_LOADTEST_SERVER_METRICS_H_
