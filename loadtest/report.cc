#include "loadtest/report.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace slabload {
namespace {

constexpr char kGnuplot[] = "/usr/bin/gnuplot";
// Server series shown in the text summary; JSON carries all of them.
constexpr int kMaxMetricLines = 20;

struct NamedDistribution {
  const char* name;
  const Distribution RunSummary::*field;
};

// Decimals of the latencies (ms) in the sweep CSV, which gnuplot draws from.
constexpr int kLatencyDecimals = 4;

// Half a unit of the last printed decimal: smaller values print as zero.
constexpr double HalfLastDecimal(int decimals) {
  double unit = 1.0;
  for (int i = 0; i < decimals; ++i) unit /= 10;
  return unit / 2;
}
constexpr double kSmallestPrintedLatency = HalfLastDecimal(kLatencyDecimals);

constexpr NamedDistribution kDistributions[] = {
    {"ttft", &RunSummary::ttft_ms},
    {"tpot", &RunSummary::tpot_ms},
    {"itl", &RunSummary::itl_ms},
    {"e2e", &RunSummary::e2e_ms},
};

std::string Describe(const PointResult& point) {
  if (point.mode == "closed") {
    return absl::StrCat("closed loop, concurrency ", point.concurrency);
  }
  if (point.mode == "burst") return "burst (all requests at once)";
  return absl::StrFormat("open loop, Poisson %.4g requests/s", point.rate);
}

nlohmann::json DistributionToJson(const Distribution& d) {
  return {{"count", d.count}, {"mean", d.mean}, {"p50", d.p50}, {"p90", d.p90},
          {"p95", d.p95},     {"p99", d.p99},   {"max", d.max}};
}

}  // namespace

void PrintSummary(const PointResult& point, std::FILE* out) {
  const RunSummary& s = point.summary;
  std::fprintf(out, "== %s ==\n", Describe(point).c_str());
  if (!point.stopped_early.empty()) {
    std::fprintf(out, "  STOPPED EARLY: %s\n", point.stopped_early.c_str());
  }
  std::fprintf(out,
               "  requests: %lld sent, %lld completed, %lld errors "
               "(%lld warmup excluded)\n",
               static_cast<long long>(s.sent),
               static_cast<long long>(s.completed),
               static_cast<long long>(s.errors),
               static_cast<long long>(s.warmup_requests));
  std::fprintf(out,
               "  duration %.2f s   %.2f requests/s   %.1f output tokens/s   "
               "(%lld prompt, %lld output tokens, %.2f per chunk)\n",
               s.duration_s, s.requests_per_s, s.output_tokens_per_s,
               static_cast<long long>(s.prompt_tokens),
               static_cast<long long>(s.output_tokens), s.tokens_per_chunk);
  if (s.has_slo) {
    std::fprintf(out, "  goodput %.2f requests/s: %lld of %lld within",
                 s.goodput_per_s, static_cast<long long>(s.good_requests),
                 static_cast<long long>(s.sent));
    if (s.slo.ttft_ms > 0) std::fprintf(out, " TTFT <= %g ms", s.slo.ttft_ms);
    if (s.slo.itl_ms > 0) {
      std::fprintf(out, " mean ITL <= %g ms", s.slo.itl_ms);
    }
    std::fprintf(out, "\n");
  }
  std::fprintf(out, "  %-10s %9s %9s %9s %9s %9s %9s\n", "(ms)", "mean", "p50",
               "p90", "p95", "p99", "max");
  const char* labels[] = {"TTFT", "TPOT", "ITL", "E2E"};
  for (int i = 0; i < 4; ++i) {
    const Distribution& d = s.*kDistributions[i].field;
    std::fprintf(out, "  %-10s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f\n",
                 labels[i], d.mean, d.p50, d.p90, d.p95, d.p99, d.max);
  }
  for (const auto& [code, error] : s.errors_by_status) {
    std::fprintf(out, "  error %s x%lld, e.g. \"%s\"\n", code.c_str(),
                 static_cast<long long>(error.count), error.example.c_str());
  }
  if (!point.metrics_error.empty()) {
    std::fprintf(out, "  server metrics: %s\n", point.metrics_error.c_str());
  }
  if (!point.replicas.empty()) {
    std::fprintf(out, "  replicas (requests served: before -> after):\n");
  }
  for (const ReplicaShare& r : point.replicas) {
    if (!r.error.empty()) {
      std::fprintf(out, "    %-24s %s\n", r.address.c_str(), r.error.c_str());
      continue;
    }
    std::fprintf(out, "    %-24s %g -> %g: %g (%.1f%%)\n", r.address.c_str(),
                 r.served_before, r.served_after, r.served, 100 * r.share);
  }
  int shown = 0;
  for (const auto& [series, value] : point.server_metrics) {
    if (absl::StrContains(series, "_bucket")) continue;
    if (shown++ == 0) std::fprintf(out, "  server (counters end - start):\n");
    if (shown > kMaxMetricLines) {
      std::fprintf(out, "    ... (all series in the JSON report)\n");
      break;
    }
    std::fprintf(out, "    %-60s %g\n", series.c_str(), value);
  }
}

void PrintSweepTable(const std::vector<PointResult>& points, bool by_rate,
                     std::FILE* out) {
  std::fprintf(out, "%8s %8s %7s %9s %10s %9s %9s %9s %9s %9s %9s\n",
               by_rate ? "rate" : "streams", "sent", "errors", "req/s",
               "out tok/s", "ttft p50", "ttft p99", "itl p50", "itl p99",
               "e2e p50", "e2e p99");
  for (const PointResult& p : points) {
    const RunSummary& s = p.summary;
    const std::string x =
        by_rate ? absl::StrFormat("%.4g", p.rate) : absl::StrCat(p.concurrency);
    std::fprintf(out,
                 "%8s %8lld %7lld %9.2f %10.1f %9.2f %9.2f %9.2f %9.2f "
                 "%9.2f %9.2f\n",
                 x.c_str(), static_cast<long long>(s.sent),
                 static_cast<long long>(s.errors), s.requests_per_s,
                 s.output_tokens_per_s, s.ttft_ms.p50, s.ttft_ms.p99,
                 s.itl_ms.p50, s.itl_ms.p99, s.e2e_ms.p50, s.e2e_ms.p99);
  }
  std::fprintf(out, "(latencies in ms)\n");
}

nlohmann::json PointToJson(const PointResult& point) {
  const RunSummary& s = point.summary;
  nlohmann::json errors = nlohmann::json::object();
  for (const auto& [code, error] : s.errors_by_status) {
    errors[code] = {{"count", error.count}, {"example", error.example}};
  }
  nlohmann::json j = {
      {"mode", point.mode},
      {"concurrency", point.concurrency},
      {"rate", point.rate},
      {"sent", s.sent},
      {"completed", s.completed},
      {"errors", s.errors},
      {"errors_by_status", errors},
      {"warmup_requests", s.warmup_requests},
      {"duration_s", s.duration_s},
      {"prompt_tokens", s.prompt_tokens},
      {"output_tokens", s.output_tokens},
      {"chunks", s.chunks},
      {"tokens_per_chunk", s.tokens_per_chunk},
      {"requests_per_s", s.requests_per_s},
      {"output_tokens_per_s", s.output_tokens_per_s},
  };
  for (const NamedDistribution& d : kDistributions) {
    j[absl::StrCat(d.name, "_ms")] = DistributionToJson(s.*d.field);
  }
  if (s.has_slo) {
    j["goodput"] = {{"ttft_slo_ms", s.slo.ttft_ms},
                    {"itl_slo_ms", s.slo.itl_ms},
                    {"good_requests", s.good_requests},
                    {"requests_per_s", s.goodput_per_s}};
  }
  if (!point.stopped_early.empty()) j["stopped_early"] = point.stopped_early;
  if (!point.metrics_error.empty())
    j["server_metrics_error"] = point.metrics_error;
  if (!point.server_metrics.empty()) j["server_metrics"] = point.server_metrics;
  for (const ReplicaShare& r : point.replicas) {
    nlohmann::json replica = {{"address", r.address},
                              {"served_before", r.served_before},
                              {"served_after", r.served_after},
                              {"served", r.served},
                              {"share", r.share}};
    if (!r.error.empty()) replica["error"] = r.error;
    j["replicas"].push_back(std::move(replica));
  }
  return j;
}

absl::Status WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << contents;
  file.close();
  if (!file) {
    return absl::UnavailableError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

std::string SweepCsv(const std::vector<PointResult>& points) {
  std::vector<std::string> header = {
      "mode",         "concurrency",    "rate",
      "sent",         "completed",      "errors",
      "duration_s",   "requests_per_s", "output_tokens_per_s",
      "goodput_per_s"};
  for (const NamedDistribution& d : kDistributions) {
    for (const char* stat : {"mean", "p50", "p90", "p95", "p99", "max"}) {
      header.push_back(absl::StrCat(d.name, "_", stat, "_ms"));
    }
  }
  std::string csv = absl::StrCat(absl::StrJoin(header, ","), "\n");
  for (const PointResult& p : points) {
    const RunSummary& s = p.summary;
    std::vector<std::string> row = {
        p.mode,
        absl::StrCat(p.concurrency),
        absl::StrCat(p.rate),
        absl::StrCat(s.sent),
        absl::StrCat(s.completed),
        absl::StrCat(s.errors),
        absl::StrFormat("%.4f", s.duration_s),
        absl::StrFormat("%.4f", s.requests_per_s),
        absl::StrFormat("%.3f", s.output_tokens_per_s),
        absl::StrFormat("%.4f", s.goodput_per_s)};
    for (const NamedDistribution& d : kDistributions) {
      const Distribution& v = s.*d.field;
      for (double x : {v.mean, v.p50, v.p90, v.p95, v.p99, v.max}) {
        row.push_back(absl::StrFormat("%.*f", kLatencyDecimals, x));
      }
    }
    absl::StrAppend(&csv, absl::StrJoin(row, ","), "\n");
  }
  return csv;
}

namespace {

// CSV columns (1-based): x is concurrency (2) or rate (3); then requests/s
// 8, tokens/s 9; each distribution has mean, p50, p90, p95, p99, max from
// column 11 on, in the order of kDistributions.
int Column(int distribution, int stat) { return 11 + distribution * 6 + stat; }

// Whether every point's p50, p90 and p99 of `distribution` are positive as
// the CSV prints them. A log axis cannot show zero, and zeros are real: a
// request whose tokens all came in one chunk has no inter-token gaps.
bool AllPositive(const std::vector<PointResult>& points, int distribution) {
  for (const PointResult& p : points) {
    const Distribution& d = p.summary.*kDistributions[distribution].field;
    if (std::min({d.p50, d.p90, d.p99}) < kSmallestPrintedLatency) {
      return false;
    }
  }
  return true;
}

// latency.png: TTFT, ITL and E2E side by side (p50, p90, p99), each on a
// log axis where its values allow.
std::string LatencyScript(const std::string& dir, const std::string& data,
                          int x, const std::vector<PointResult>& points) {
  std::string script = absl::StrCat(
      "set terminal pngcairo size 1500,480 font 'sans,10'\n", "set output '",
      dir, "/latency.png'\n", "set multiplot layout 1,3\nset ylabel 'ms'\n");
  const struct {
    int distribution;
    const char* title;
  } panels[] = {{0, "Time to first token"},
                {2, "Inter-token latency"},
                {3, "End-to-end latency"}};
  for (const auto& panel : panels) {
    const int d = panel.distribution;
    absl::StrAppend(
        &script, "set title '", panel.title, "'\n",
        AllPositive(points, d) ? "set logscale y\n" : "unset logscale y\n",
        absl::StrFormat(
            "plot '%s' every ::1 using %d:%d with linespoints lw 2 title "
            "'p50', '' every ::1 using %d:%d with linespoints lw 2 title "
            "'p90', '' every ::1 using %d:%d with linespoints lw 2 title "
            "'p99'\n",
            data, x, Column(d, 1), x, Column(d, 2), x, Column(d, 4)));
  }
  absl::StrAppend(&script, "unset multiplot\n");
  return script;
}

// throughput.png and latency.png from the CSV at `data`.
std::string SweepScript(const std::string& dir, const std::string& data,
                        const std::vector<PointResult>& points, bool by_rate) {
  const int x = by_rate ? 3 : 2;
  double lo = 1e300, hi = 0;
  for (const PointResult& p : points) {
    const double v = by_rate ? p.rate : p.concurrency;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const bool log_x = lo > 0 && hi / lo >= 8;
  const std::string xlabel =
      by_rate ? "offered load (requests/s)" : "concurrent streams";
  return absl::StrCat(
      "set datafile separator ','\n"
      "set terminal pngcairo size 900,560 font 'sans,10'\n"
      "set grid\nset key top left\n",
      log_x ? "set logscale x 2\n" : "", "set xlabel '", xlabel, "'\n",
      "set output '", dir, "/throughput.png'\n",
      "set title 'Throughput'\nset ylabel 'output tokens/s'\n"
      "set y2label 'requests/s'\nset ytics nomirror\nset y2tics\n",
      absl::StrFormat("plot '%s' every ::1 using %d:9 with linespoints lw 2 "
                      "title 'output tokens/s', '' every ::1 using %d:8 axes "
                      "x1y2 with linespoints lw 2 title 'requests/s'\n",
                      data, x, x),
      "unset y2label\nunset y2tics\nset ytics mirror\n",
      LatencyScript(dir, data, x, points));
}

}  // namespace

absl::Status PlotSweep(const std::string& dir,
                       const std::vector<PointResult>& points, bool by_rate) {
  if (access(kGnuplot, X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no plots: ", kGnuplot,
                     " is missing (install the gnuplot-nox package); the "
                     "JSON and CSV reports are still written"));
  }
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::UnavailableError(absl::StrCat(
        "cannot create plot directory ", dir, ": ", std::strerror(errno)));
  }
  const std::string data = absl::StrCat(dir, "/sweep.csv");
  absl::Status status = WriteFile(data, SweepCsv(points));
  if (!status.ok()) return status;
  const std::string script_path = absl::StrCat(dir, "/plots.gp");
  status = WriteFile(script_path, SweepScript(dir, data, points, by_rate));
  if (!status.ok()) return status;
  const std::string command =
      absl::StrCat(kGnuplot, " '", script_path, "' 2>&1");
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot run ", kGnuplot));
  }
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  if (pclose(pipe) != 0) {
    return absl::InternalError(
        absl::StrCat("gnuplot failed on ", script_path, ": ", output));
  }
  return absl::OkStatus();
}

}  // namespace slabload
