#include "loadtest/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace slabload {
namespace {

double Percentile(const std::vector<double>& sorted, double p) {
  const double rank = p * static_cast<double>(sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(rank));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  const double fraction = rank - static_cast<double>(below);
  return sorted[below] + (sorted[above] - sorted[below]) * fraction;
}

}  // namespace

Distribution Summarize(std::vector<double> values) {
  Distribution d;
  if (values.empty()) return d;
  std::sort(values.begin(), values.end());
  d.count = static_cast<int64_t>(values.size());
  d.mean = std::accumulate(values.begin(), values.end(), 0.0) /
           static_cast<double>(values.size());
  d.p50 = Percentile(values, 0.50);
  d.p90 = Percentile(values, 0.90);
  d.p95 = Percentile(values, 0.95);
  d.p99 = Percentile(values, 0.99);
  d.max = values.back();
  return d;
}

RunSummary SummarizeRun(const std::vector<RequestRecord>& records,
                        const Slo& slo) {
  RunSummary s;
  s.slo = slo;
  s.has_slo = slo.ttft_ms > 0 || slo.itl_ms > 0;
  std::vector<double> ttft, tpot, itl, e2e;
  double first_start = INFINITY;
  double last_end = -INFINITY;
  for (const RequestRecord& r : records) {
    if (r.warmup) {
      ++s.warmup_requests;
      continue;
    }
    ++s.sent;
    first_start = std::min(first_start, r.start);
    last_end = std::max(last_end, r.end);
    const int tokens =
        std::accumulate(r.chunk_tokens.begin(), r.chunk_tokens.end(), 0);
    // Tokens streamed before a failure were still produced by the server.
    s.output_tokens += tokens;
    s.chunks += static_cast<int64_t>(r.chunk_tokens.size());
    if (!r.ok) {
      ++s.errors;
      ErrorCount& error = s.errors_by_status[r.status_code];
      if (error.count++ == 0) error.example = r.error;
      continue;
    }
    ++s.completed;
    s.prompt_tokens += r.prompt_tokens;
    e2e.push_back((r.end - r.start) * 1e3);
    if (r.chunk_times.empty()) continue;
    const double first_ms = (r.chunk_times.front() - r.start) * 1e3;
    ttft.push_back(first_ms);
    if (tokens > 1) {
      tpot.push_back((r.chunk_times.back() - r.chunk_times.front()) * 1e3 /
                     (tokens - 1));
    }
    double gap_sum_ms = 0;
    for (size_t i = 1; i < r.chunk_times.size(); ++i) {
      const double gap_ms = (r.chunk_times[i] - r.chunk_times[i - 1]) * 1e3;
      itl.push_back(gap_ms);
      gap_sum_ms += gap_ms;
    }
    const double mean_itl_ms =
        r.chunk_times.size() > 1 ? gap_sum_ms / (r.chunk_times.size() - 1) : 0;
    const bool good = (slo.ttft_ms <= 0 || first_ms <= slo.ttft_ms) &&
                      (slo.itl_ms <= 0 || mean_itl_ms <= slo.itl_ms);
    if (good) ++s.good_requests;
  }
  if (s.chunks > 0) {
    s.tokens_per_chunk = static_cast<double>(s.output_tokens) / s.chunks;
  }
  if (s.sent > 0) s.duration_s = std::max(last_end - first_start, 0.0);
  if (s.duration_s > 0) {
    s.requests_per_s = s.completed / s.duration_s;
    s.output_tokens_per_s = s.output_tokens / s.duration_s;
    s.goodput_per_s = s.good_requests / s.duration_s;
  }
  s.ttft_ms = Summarize(std::move(ttft));
  s.tpot_ms = Summarize(std::move(tpot));
  s.itl_ms = Summarize(std::move(itl));
  s.e2e_ms = Summarize(std::move(e2e));
  return s;
}

}  // namespace slabload
