// Per-request timings and the summary figures slabload reports: TTFT, TPOT,
// ITL and end-to-end latency distributions, throughput, errors, goodput.
#ifndef SLABSERVE_LOADTEST_STATS_H_
#define SLABSERVE_LOADTEST_STATS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace slabload {

// What happened to one request. Times are seconds since the run started.
struct RequestRecord {
  bool warmup = false;
  double start = 0;
  double end = 0;
  // Arrival time of each chunk that carried tokens, and its token count.
  std::vector<double> chunk_times;
  std::vector<int> chunk_tokens;
  int prompt_tokens = 0;  // from the server's usage, when it reports it
  bool ok = false;
  std::string status_code;  // gRPC status name; "OK" on success
  std::string error;        // the server's message when not ok
};

struct Distribution {
  int64_t count = 0;
  double mean = 0;
  double p50 = 0;
  double p90 = 0;
  double p95 = 0;
  double p99 = 0;
  double max = 0;
};

// Percentiles interpolate linearly between the closest ranks, so
// p50 <= p90 <= p95 <= p99 <= max always holds. Empty input gives zeros.
Distribution Summarize(std::vector<double> values);

// Service-level objectives for goodput, in milliseconds; 0 = not set.
struct Slo {
  double ttft_ms = 0;
  double itl_ms = 0;
};

struct ErrorCount {
  int64_t count = 0;
  std::string example;  // one message, to show what went wrong
};

struct RunSummary {
  int64_t sent = 0;  // measured requests (warmup excluded)
  int64_t completed = 0;
  int64_t errors = 0;
  int64_t warmup_requests = 0;
  std::map<std::string, ErrorCount> errors_by_status;
  // From the first measured request's start to the last one's end.
  double duration_s = 0;
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  // Token-carrying chunks of the measured requests and their mean size:
  // above 1 where the server sends several steps per message
  // (stream_interval) or the client fell behind.
  int64_t chunks = 0;
  double tokens_per_chunk = 0;
  double requests_per_s = 0;
  double output_tokens_per_s = 0;
  // In milliseconds. TTFT: start to first token. TPOT: (last chunk - first
  // chunk) / (tokens - 1), per request with 2+ tokens. ITL: gap between
  // successive token-carrying chunks, over all chunks. E2E: start to end.
  Distribution ttft_ms;
  Distribution tpot_ms;
  Distribution itl_ms;
  Distribution e2e_ms;
  // Completed requests with TTFT <= slo.ttft_ms and mean ITL <= slo.itl_ms
  // (each only when set), per second and as a share of those sent.
  bool has_slo = false;
  Slo slo;
  int64_t good_requests = 0;
  double goodput_per_s = 0;
};

// Summarizes the measured (non-warmup) requests of a run.
RunSummary SummarizeRun(const std::vector<RequestRecord>& records,
                        const Slo& slo);

}  // namespace slabload

#endif  // SLABSERVE_LOADTEST_STATS_H_
