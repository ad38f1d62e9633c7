// slabload: load generator and benchmark for a slabserve server.
//
//   slabload --target=127.0.0.1:50051 --concurrency=8 --requests=200
//       --prompt-len=128 --output-len=64:128 --json=run.json  (one line)
//   slabload --rate=20 --duration=60 --warmup=5s         # open loop
//   slabload --sweep=1,8,64,512 --requests=256 --plot-dir=plots
//
// Flags are Abseil flags with underscores (--prompt_len); the dashed
// spellings (--prompt-len) are accepted too: dashes in a flag's name are
// turned into underscores before parsing. Run with --help for all flags.
//
// Exit status: 0 when every load point ran; 1 when the server cannot be
// reached, rejects everything or a run stopped early; 2 for bad flags.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "clients/cpp/client.h"
#include "clients/cpp/security_flags.h"
#include "loadtest/openai_stream.h"
#include "loadtest/report.h"
#include "loadtest/runner.h"
#include "loadtest/server_metrics.h"
#include "loadtest/stats.h"
#include "loadtest/workload.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "Server address HOST:PORT.");
ABSL_FLAG(std::string, protocol, "grpc",
          "grpc, or openai: stream /v1/completions from --openai_target "
          "(--target still answers the model info)");
ABSL_FLAG(std::string, openai_target, "",
          "The server's OpenAI API address HOST:PORT (--protocol=openai).");
ABSL_FLAG(std::string, metrics_target, "",
          "HOST:PORT of the server's Prometheus endpoint, scraped at the "
          "start and end of each run (empty = skip).");
ABSL_FLAG(std::vector<std::string>, replica_metrics, {},
          "With --target a gateway: the replicas' metrics HOST:PORTs "
          "(comma-separated); reports the requests each served per run.");
ABSL_FLAG(int, concurrency, 1, "Closed loop: streams kept in flight.");
ABSL_FLAG(int64_t, requests, 100,
          "Measured requests per run (0 = bounded by --duration only).");
ABSL_FLAG(double, rate, 0,
          "Open loop: Poisson arrivals per second (0 = closed loop).");
ABSL_FLAG(bool, burst, false, "Open loop: send all --requests at once.");
ABSL_FLAG(double, duration, 0,
          "Seconds of measured load per run (0 = bounded by --requests).");
ABSL_FLAG(std::string, warmup, "",
          "Excluded from the figures: '5s' = the first 5 seconds, '20' = the "
          "first 20 requests.");
ABSL_FLAG(uint64_t, seed, 1, "Seed of prompts, lengths, arrivals, sampling.");
ABSL_FLAG(std::vector<std::string>, sweep, {},
          "Runs one load point per value: concurrencies, or rates with "
          "--rate_sweep (e.g. 1,8,64).");
ABSL_FLAG(bool, rate_sweep, false, "--sweep values are open-loop rates.");
ABSL_FLAG(std::string, plot_dir, "",
          "Directory for PNG plots of a sweep (drawn with gnuplot).");
ABSL_FLAG(std::string, json, "", "Write the report as JSON here.");
ABSL_FLAG(std::string, csv, "",
          "Write a sweep's table as CSV here (default: --json's path with "
          ".csv).");
ABSL_FLAG(std::string, prompt_len, "128",
          "Synthetic prompt length in tokens: N or A:B (uniform).");
ABSL_FLAG(std::string, output_len, "128",
          "Output tokens per request (max_tokens): N or A:B (uniform).");
ABSL_FLAG(std::string, prompts, "",
          "JSON-lines file of prompts ({\"prompt\": \"...\"} or {\"ids\": "
          "[...]}) used instead of synthetic ones.");
ABSL_FLAG(int, shared_prefix, 0,
          "Tokens every prompt starts with (same for all requests).");
ABSL_FLAG(double, temperature, 0, "Sampling temperature (0 = greedy).");
ABSL_FLAG(int, top_k, 0, "Top-k filter (0 = off).");
ABSL_FLAG(double, top_p, 0, "Nucleus filter (0 = off).");
ABSL_FLAG(bool, ignore_eos, true,
          "Generate exactly the output length, past EOS.");
ABSL_FLAG(double, ttft_slo, 0, "Goodput: TTFT objective in ms (0 = none).");
ABSL_FLAG(double, itl_slo, 0,
          "Goodput: mean inter-token latency objective in ms (0 = none).");
ABSL_FLAG(double, timeout, 300, "Deadline of each request in seconds.");
ABSL_FLAG(int, channels, 0,
          "gRPC connections to spread streams over (0 = one per 512 "
          "streams, at most 8).");
ABSL_FLAG(bool, progress, true,
          "Progress line on stderr when it is a terminal.");

namespace {

using slabload::PointResult;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kMaxChannels = 64;

// Lets the dashed flag names work: --prompt-len=5 becomes --prompt_len=5.
// Only the name part changes; values keep their dashes.
void UnderscoreFlagNames(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* arg = argv[i];
    if (absl::string_view(arg) == "--") break;
    if (arg[0] != '-' || arg[1] != '-') continue;
    for (char* c = arg + 2; *c != '\0' && *c != '='; ++c) {
      if (*c == '-') *c = '_';
    }
  }
}

int UsageError(const std::string& message) {
  std::fprintf(stderr, "slabload: %s (see --help)\n", message.c_str());
  return kExitUsage;
}

// Where a report file will go must be writable before the run, not after.
absl::Status CheckOutputPath(const std::string& path, const char* flag) {
  if (path.empty()) return absl::OkStatus();
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  struct stat info;
  if (stat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", path, ": directory '", dir, "' does not exist"));
  }
  if (access(dir.c_str(), W_OK) != 0 ||
      (stat(path.c_str(), &info) == 0 &&
       (S_ISDIR(info.st_mode) || access(path.c_str(), W_OK) != 0))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", path, ": cannot be written"));
  }
  return absl::OkStatus();
}

struct Warmup {
  int64_t requests = 0;
  double seconds = 0;
};

bool ParseWarmup(const std::string& text, Warmup* warmup) {
  if (text.empty()) return true;
  absl::string_view number = text;
  if (absl::ConsumeSuffix(&number, "s")) {
    return absl::SimpleAtod(number, &warmup->seconds) && warmup->seconds >= 0;
  }
  return absl::SimpleAtoi(number, &warmup->requests) && warmup->requests >= 0;
}

// Fails fast, with a clear message, when the server is unreachable or not
// serving; fills `info` (the vocabulary and limits the workload needs).
bool ProbeServer(slabserve::Client& client, slabserve::v1::ModelInfo* info) {
  using grpc::health::v1::HealthCheckResponse;
  HealthCheckResponse::ServingStatus serving;
  grpc::Status status =
      client.Health(&serving, "", slabserve::CallOptions::WithTimeout(5));
  // A server without the health service still answers GetModelInfo.
  if (!status.ok() && status.error_code() != grpc::StatusCode::UNIMPLEMENTED) {
    std::fprintf(stderr, "slabload: cannot reach slabserve at %s: %s: %s\n",
                 client.target().c_str(),
                 slabserve::StatusCodeName(status.error_code()).c_str(),
                 status.error_message().c_str());
    return false;
  }
  if (status.ok() && serving != HealthCheckResponse::SERVING) {
    std::fprintf(stderr, "slabload: server at %s is %s, not SERVING\n",
                 client.target().c_str(),
                 slabserve::ServingStatusName(serving).c_str());
    return false;
  }
  status = client.Info(info, slabserve::CallOptions::WithTimeout(5));
  if (!status.ok()) {
    std::fprintf(stderr, "slabload: GetModelInfo on %s failed: %s: %s\n",
                 client.target().c_str(),
                 slabserve::StatusCodeName(status.error_code()).c_str(),
                 status.error_message().c_str());
    return false;
  }
  return true;
}

// Scrapes the metrics endpoint; records why not into `point` on failure.
bool Scrape(const std::string& target, slabload::MetricsSnapshot* snapshot,
            PointResult* point) {
  absl::StatusOr<slabload::MetricsSnapshot> scraped =
      slabload::ScrapeMetrics(target);
  if (!scraped.ok()) {
    point->metrics_error = std::string(scraped.status().message());
    return false;
  }
  *snapshot = *std::move(scraped);
  return true;
}

// Streams over gRPC with `client`, or over the OpenAI API per the flags.
absl::Status MakeStreamStarter(slabserve::Client& client,
                               const std::string& model,
                               slabload::StreamStarter* start) {
  const std::string protocol = absl::GetFlag(FLAGS_protocol);
  if (protocol == "grpc") {
    *start = [&client](const slabserve::v1::GenerateRequest& request,
                       slabserve::StreamCallbacks callbacks, double timeout_s) {
      return client.GenerateAsync(
          request, std::move(callbacks),
          slabserve::CallOptions::WithTimeout(timeout_s));
    };
    return absl::OkStatus();
  }
  if (protocol != "openai") {
    return absl::InvalidArgumentError("--protocol must be grpc or openai");
  }
  const std::string target = absl::GetFlag(FLAGS_openai_target);
  const size_t colon = target.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(target.substr(colon + 1), &port) || port <= 0) {
    return absl::InvalidArgumentError(
        "--protocol=openai needs --openai_target=HOST:PORT (IPv4)");
  }
  *start = [host = target.substr(0, colon), port, model](
               const slabserve::v1::GenerateRequest& request,
               slabserve::StreamCallbacks callbacks, double timeout_s) {
    return slabload::StartOpenAiStream(host, port, model, request,
                                       std::move(callbacks), timeout_s);
  };
  return absl::OkStatus();
}

// Requests served so far by each of `addresses` (a replica's error, if
// any, in its entry).
std::vector<slabload::ReplicaShare> ScrapeReplicas(
    const std::vector<std::string>& addresses) {
  std::vector<slabload::ReplicaShare> replicas;
  for (const std::string& address : addresses) {
    slabload::ReplicaShare replica;
    replica.address = address;
    absl::StatusOr<slabload::MetricsSnapshot> scraped =
        slabload::ScrapeMetrics(address);
    if (scraped.ok()) {
      replica.served_before = slabload::RequestsServed(*scraped);
    } else {
      replica.error = std::string(scraped.status().message());
    }
    replicas.push_back(std::move(replica));
  }
  return replicas;
}

// Records each replica's count after the run and the shares.
void FinishReplicas(std::vector<slabload::ReplicaShare>* replicas) {
  for (slabload::ReplicaShare& replica : *replicas) {
    if (!replica.error.empty()) continue;
    absl::StatusOr<slabload::MetricsSnapshot> scraped =
        slabload::ScrapeMetrics(replica.address);
    if (scraped.ok()) {
      replica.served_after = slabload::RequestsServed(*scraped);
    } else {
      replica.error = std::string(scraped.status().message());
    }
  }
  slabload::ComputeShares(replicas);
}

nlohmann::json ConfigJson(const slabserve::v1::ModelInfo& info) {
  return {{"target", absl::GetFlag(FLAGS_target)},
          {"protocol", absl::GetFlag(FLAGS_protocol)},
          {"model", info.name()},
          {"architecture", info.architecture()},
          {"seed", absl::GetFlag(FLAGS_seed)},
          {"requests", absl::GetFlag(FLAGS_requests)},
          {"duration_s", absl::GetFlag(FLAGS_duration)},
          {"warmup", absl::GetFlag(FLAGS_warmup)},
          {"prompt_len", absl::GetFlag(FLAGS_prompt_len)},
          {"output_len", absl::GetFlag(FLAGS_output_len)},
          {"prompts", absl::GetFlag(FLAGS_prompts)},
          {"shared_prefix", absl::GetFlag(FLAGS_shared_prefix)},
          {"temperature", absl::GetFlag(FLAGS_temperature)},
          {"top_k", absl::GetFlag(FLAGS_top_k)},
          {"top_p", absl::GetFlag(FLAGS_top_p)},
          {"ignore_eos", absl::GetFlag(FLAGS_ignore_eos)}};
}

// What the flags ask for, every one validated before touching the network.
struct Plan {
  slabload::RunConfig config;
  bool by_rate = false;
  std::vector<double> sweep;  // concurrencies, or rates when by_rate
  slabload::WorkloadOptions workload;
  slabload::Slo slo;
};

// The run's pacing and bounds.
absl::Status RunConfigFromFlags(slabload::RunConfig* config) {
  config->concurrency = absl::GetFlag(FLAGS_concurrency);
  config->rate = absl::GetFlag(FLAGS_rate);
  config->burst = absl::GetFlag(FLAGS_burst);
  config->requests = absl::GetFlag(FLAGS_requests);
  config->duration_s = absl::GetFlag(FLAGS_duration);
  config->request_timeout_s = absl::GetFlag(FLAGS_timeout);
  config->arrival_seed = absl::GetFlag(FLAGS_seed) + 1;
  config->progress = absl::GetFlag(FLAGS_progress) && isatty(STDERR_FILENO);
  Warmup warmup;
  if (!ParseWarmup(absl::GetFlag(FLAGS_warmup), &warmup)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--warmup=", absl::GetFlag(FLAGS_warmup),
                     ": expected seconds ('5s') or a request count ('20')"));
  }
  config->warmup_requests = warmup.requests;
  config->warmup_s = warmup.seconds;
  if (config->concurrency < 1) {
    return absl::InvalidArgumentError("--concurrency must be >= 1");
  }
  // Written so that NaN fails too; infinities are no durations or rates.
  if (!(config->rate >= 0) || std::isinf(config->rate)) {
    return absl::InvalidArgumentError("--rate must be a finite number >= 0");
  }
  if (config->requests < 0) {
    return absl::InvalidArgumentError("--requests must be >= 0");
  }
  if (!(config->duration_s >= 0) || std::isinf(config->duration_s)) {
    return absl::InvalidArgumentError(
        "--duration must be a finite number >= 0");
  }
  if (!(config->request_timeout_s > 0) ||
      std::isinf(config->request_timeout_s)) {
    return absl::InvalidArgumentError("--timeout must be a finite number > 0");
  }
  if (config->requests == 0 && config->duration_s == 0) {
    return absl::InvalidArgumentError(
        "unbounded run: give --requests and/or --duration");
  }
  if (config->burst && (config->rate > 0 || config->requests == 0)) {
    return absl::InvalidArgumentError("--burst needs --requests and no --rate");
  }
  return absl::OkStatus();
}

// The load points: --sweep's values, or the one point the config names.
absl::Status SweepFromFlags(Plan* plan) {
  plan->by_rate = absl::GetFlag(FLAGS_rate_sweep);
  for (const std::string& value : absl::GetFlag(FLAGS_sweep)) {
    double x;
    if (!absl::SimpleAtod(value, &x) || !(x > 0) || std::isinf(x) ||
        (!plan->by_rate && x != std::floor(x))) {
      return absl::InvalidArgumentError(
          absl::StrCat("--sweep value '", value, "' is not a ",
                       plan->by_rate ? "positive rate" : "positive integer"));
    }
    plan->sweep.push_back(x);
  }
  if (plan->by_rate && plan->sweep.empty()) {
    return absl::InvalidArgumentError("--rate_sweep needs --sweep");
  }
  if (plan->sweep.empty()) {
    plan->sweep.push_back(plan->config.rate > 0 ? plan->config.rate
                                                : plan->config.concurrency);
  }
  return absl::OkStatus();
}

// The requests' prompts, lengths and sampling; the goodput objectives.
absl::Status WorkloadFromFlags(Plan* plan) {
  slabload::WorkloadOptions& workload = plan->workload;
  for (auto [flag, text, range] :
       {std::make_tuple("prompt-len", absl::GetFlag(FLAGS_prompt_len),
                        &workload.prompt_len),
        std::make_tuple("output-len", absl::GetFlag(FLAGS_output_len),
                        &workload.output_len)}) {
    absl::StatusOr<slabload::LengthRange> parsed =
        slabload::ParseLengthRange(text, flag);
    if (!parsed.ok()) return parsed.status();
    *range = *parsed;
  }
  if (!absl::GetFlag(FLAGS_prompts).empty()) {
    auto prompts = slabload::LoadPrompts(absl::GetFlag(FLAGS_prompts));
    if (!prompts.ok()) return prompts.status();
    workload.prompts = *std::move(prompts);
  }
  workload.shared_prefix = absl::GetFlag(FLAGS_shared_prefix);
  workload.seed = absl::GetFlag(FLAGS_seed);
  workload.ignore_eos = absl::GetFlag(FLAGS_ignore_eos);
  workload.sampling.set_temperature(absl::GetFlag(FLAGS_temperature));
  workload.sampling.set_top_k(absl::GetFlag(FLAGS_top_k));
  workload.sampling.set_top_p(absl::GetFlag(FLAGS_top_p));
  workload.sampling.set_seed(absl::GetFlag(FLAGS_seed));
  plan->slo = {absl::GetFlag(FLAGS_ttft_slo), absl::GetFlag(FLAGS_itl_slo)};
  if (!(plan->slo.ttft_ms >= 0) || !(plan->slo.itl_ms >= 0)) {
    return absl::InvalidArgumentError(
        "--ttft_slo and --itl_slo must be >= 0 (0: none)");
  }
  return absl::OkStatus();
}

absl::StatusOr<Plan> PlanFromFlags() {
  if (absl::GetFlag(FLAGS_target).empty()) {
    return absl::InvalidArgumentError("--target is empty");
  }
  Plan plan;
  if (absl::Status s = RunConfigFromFlags(&plan.config); !s.ok()) return s;
  if (absl::GetFlag(FLAGS_channels) < 0 ||
      absl::GetFlag(FLAGS_channels) > kMaxChannels) {
    return absl::InvalidArgumentError(
        absl::StrCat("--channels must be in [0, ", kMaxChannels,
                     "] (0: one per 512 streams)"));
  }
  for (const auto& [flag, path] :
       {std::pair<const char*, std::string>{"json", absl::GetFlag(FLAGS_json)},
        {"csv", absl::GetFlag(FLAGS_csv)}}) {
    if (absl::Status s = CheckOutputPath(path, flag); !s.ok()) return s;
  }
  if (absl::Status s = SweepFromFlags(&plan); !s.ok()) return s;
  if (absl::Status s = WorkloadFromFlags(&plan); !s.ok()) return s;
  return plan;
}

// --channels, or one connection per 512 streams of the largest point (at
// most 8).
int Channels(const Plan& plan) {
  if (absl::GetFlag(FLAGS_channels) > 0) return absl::GetFlag(FLAGS_channels);
  double max_streams = plan.by_rate || plan.config.rate > 0 ? 512 : 1;
  for (double x : plan.sweep) max_streams = std::max(max_streams, x);
  return std::min(8, static_cast<int>(std::ceil(max_streams / 512)));
}

// The workload must fit the server's vocabulary and limits.
absl::Status FitWorkloadToServer(const slabserve::v1::ModelInfo& info,
                                 slabload::WorkloadOptions* workload) {
  workload->vocab_size = info.vocab_size();
  workload->bos_token_id = info.bos_token_id();
  workload->eos_token_id = info.eos_token_id();
  if (absl::Status valid = slabload::ValidateWorkload(*workload); !valid.ok()) {
    return valid;
  }
  if (info.max_tokens_limit() > 0 &&
      workload->output_len.max > info.max_tokens_limit()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--output-len up to ", workload->output_len.max,
        " exceeds the server's max_tokens limit ", info.max_tokens_limit()));
  }
  return absl::OkStatus();
}

// One load point at sweep value `x`, with the server's (and replicas')
// metrics around it when asked for.
PointResult RunPoint(const Plan& plan, double x,
                     const slabload::StreamStarter& start_stream) {
  PointResult point;
  slabload::RunConfig run = plan.config;
  if (plan.by_rate || plan.config.rate > 0) {
    run.rate = x;
    point.mode = "open";
    point.rate = x;
  } else if (plan.config.burst) {
    point.mode = "burst";
  } else {
    run.concurrency = static_cast<int>(x);
    point.mode = "closed";
    point.concurrency = run.concurrency;
  }
  const std::string metrics_target = absl::GetFlag(FLAGS_metrics_target);
  slabload::MetricsSnapshot before, after;
  const bool scraped =
      !metrics_target.empty() && Scrape(metrics_target, &before, &point);
  point.replicas = ScrapeReplicas(absl::GetFlag(FLAGS_replica_metrics));
  slabload::Workload requests(plan.workload);
  slabload::RunResult result = slabload::RunLoad(start_stream, requests, run);
  FinishReplicas(&point.replicas);
  point.summary = slabload::SummarizeRun(result.records, plan.slo);
  point.stopped_early = result.stopped_early;
  if (scraped && Scrape(metrics_target, &after, &point)) {
    point.server_metrics = slabload::MetricsDelta(before, after);
  }
  return point;
}

// The JSON report, a sweep's CSV and plots, as the flags ask; what could
// not be written.
std::vector<std::string> WriteReports(const std::vector<PointResult>& points,
                                      const slabserve::v1::ModelInfo& info,
                                      bool by_rate) {
  std::vector<std::string> problems;
  const std::string json_path = absl::GetFlag(FLAGS_json);
  if (!json_path.empty()) {
    nlohmann::json report = {{"config", ConfigJson(info)}};
    for (const PointResult& p : points) {
      report["points"].push_back(slabload::PointToJson(p));
    }
    if (absl::Status s = slabload::WriteFile(json_path, report.dump(2) + "\n");
        !s.ok()) {
      problems.push_back(std::string(s.message()));
    }
  }
  std::string csv_path = absl::GetFlag(FLAGS_csv);
  if (csv_path.empty() && !json_path.empty() && points.size() > 1) {
    absl::string_view stem = json_path;
    absl::ConsumeSuffix(&stem, ".json");
    csv_path = absl::StrCat(stem, ".csv");
  }
  if (!csv_path.empty()) {
    if (absl::Status s =
            slabload::WriteFile(csv_path, slabload::SweepCsv(points));
        !s.ok()) {
      problems.push_back(std::string(s.message()));
    }
  }
  const std::string plot_dir = absl::GetFlag(FLAGS_plot_dir);
  if (!plot_dir.empty()) {
    if (points.size() < 2) {
      problems.push_back("no plots: they need a sweep of 2+ points (--sweep)");
    } else if (absl::Status s = slabload::PlotSweep(plot_dir, points, by_rate);
               !s.ok()) {
      problems.push_back(std::string(s.message()));
    }
  }
  return problems;
}

// Runs the sweep's points in order, stopping at the first that fails;
// whether one did.
bool RunSweep(const Plan& plan, const slabload::StreamStarter& start_stream,
              std::vector<PointResult>* points) {
  for (double x : plan.sweep) {
    PointResult point = RunPoint(plan, x, start_stream);
    slabload::PrintSummary(point, stdout);
    std::fflush(stdout);
    const bool failed =
        !point.stopped_early.empty() || point.summary.completed == 0;
    if (failed) {
      std::fprintf(
          stderr, "slabload: %s\n",
          point.stopped_early.empty()
              ? "no request completed"
              : absl::StrCat("stopped early: ", point.stopped_early).c_str());
    }
    points->push_back(std::move(point));
    if (failed) return true;
    if (slabload::Interrupted()) return false;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "slabload --target=HOST:PORT [--concurrency=N | --rate=R | --burst] "
      "[--requests=M] [--duration=S] [--sweep=1,8,64] [--json=FILE] ...");
  UnderscoreFlagNames(argc, argv);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    return UsageError(
        absl::StrCat("unexpected argument '", positional[1], "'"));
  }
  absl::StatusOr<Plan> plan = PlanFromFlags();
  if (!plan.ok()) return UsageError(std::string(plan.status().message()));
  slabserve::ConnectOptions connect;
  connect.channels = Channels(*plan);
  if (std::string error; !slabserve::ApplySecurityFlags(&connect, &error)) {
    return UsageError(error);
  }
  std::unique_ptr<slabserve::Client> client =
      slabserve::Client::Connect(absl::GetFlag(FLAGS_target), connect);
  slabserve::v1::ModelInfo info;
  if (!ProbeServer(*client, &info)) return kExitFailure;
  if (absl::Status s = FitWorkloadToServer(info, &plan->workload); !s.ok()) {
    return UsageError(std::string(s.message()));
  }
  slabload::StreamStarter start_stream;
  if (absl::Status s = MakeStreamStarter(*client, info.name(), &start_stream);
      !s.ok()) {
    return UsageError(std::string(s.message()));
  }

  slabload::InstallInterruptHandler();
  std::vector<PointResult> points;
  const bool failed = RunSweep(*plan, start_stream, &points);
  if (points.size() > 1)
    slabload::PrintSweepTable(points, plan->by_rate, stdout);
  const std::vector<std::string> problems =
      WriteReports(points, info, plan->by_rate);
  for (const std::string& problem : problems) {
    std::fprintf(stderr, "slabload: %s\n", problem.c_str());
  }
  return failed || !problems.empty() ? kExitFailure : 0;
}
