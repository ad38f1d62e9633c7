#include "server/metrics.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace slabserve::server {
namespace {

std::string FormatDouble(double v) { return absl::StrFormat("%.17g", v); }

void AppendHeader(const std::string& name, const std::string& help,
                  const char* type, std::string* out) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type,
                  "\n");
}

void AppendGauge(const std::string& name, const std::string& help, double value,
                 std::string* out) {
  AppendHeader(name, help, "gauge", out);
  absl::StrAppend(out, name, " ", FormatDouble(value), "\n");
}

void AppendCounter(const std::string& name, const std::string& help,
                   double value, std::string* out) {
  AppendHeader(name, help, "counter", out);
  absl::StrAppend(out, name, " ", FormatDouble(value), "\n");
}

// Latency buckets from 1 ms to 2 min.
std::vector<double> SecondsBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
          0.5,   1,      2.5,   5,    10,    30,   60,  120};
}

std::vector<double> BatchBuckets() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
}

// The gauges inference-aware gateways (Kubernetes Gateway API Inference
// Extension) scrape from vLLM-compatible servers, so one endpoint picker can
// route across slabserve and vLLM alike. Slots and per-token state blocks
// are slabserve's KV cache: the usage is the fraction of state memory they
// hold in use.
void AppendGatewayGauges(const SchedulerStats& stats, std::string* out) {
  AppendGauge("vllm:num_requests_waiting",
              "Requests waiting for a slot (same as slabserve_waiting).",
              stats.waiting, out);
  AppendGauge("vllm:num_requests_running",
              "Requests holding slots (same as slabserve_running).",
              stats.running, out);
  const double usage = stats.state_bytes_capacity > 0
                           ? static_cast<double>(stats.state_bytes_in_use) /
                                 static_cast<double>(stats.state_bytes_capacity)
                           : 0.0;
  AppendGauge("vllm:kv_cache_usage_perc",
              "Fraction of state memory in use (slots and per-token state "
              "blocks), 0 to 1.",
              usage, out);
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  size_t bucket = 0;
  while (bucket < bounds_.size() && value > bounds_[bucket]) ++bucket;
  absl::MutexLock lock(&mu_);
  ++counts_[bucket];
  sum_ += value;
}

void Histogram::Render(const std::string& name, const std::string& help,
                       std::string* out) const {
  AppendHeader(name, help, "histogram", out);
  absl::MutexLock lock(&mu_);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    absl::StrAppend(out, name, "_bucket{le=\"", FormatDouble(bounds_[i]),
                    "\"} ", cumulative, "\n");
  }
  cumulative += counts_.back();
  absl::StrAppend(out, name, "_bucket{le=\"+Inf\"} ", cumulative, "\n", name,
                  "_sum ", FormatDouble(sum_), "\n", name, "_count ",
                  cumulative, "\n");
}

ServerMetrics::ServerMetrics()
    : time_to_first_token_(SecondsBuckets()),
      inter_token_latency_(SecondsBuckets()),
      e2e_latency_(SecondsBuckets()),
      queue_time_(SecondsBuckets()),
      step_time_(SecondsBuckets()),
      batch_size_(BatchBuckets()) {}

void ServerMetrics::CountRequest(const std::string& status) {
  absl::MutexLock lock(&mu_);
  ++requests_[status];
}

void ServerMetrics::ObserveStep(const StepMetrics& step) {
  ++steps_;
  prefill_tokens_ += step.prefill_tokens;
  step_time_.Observe(absl::ToDoubleSeconds(step.step_time));
  batch_size_.Observe(step.batch_size);
}

std::string ServerMetrics::Render(const SchedulerStats& stats) const {
  std::string out;
  AppendHeader("slabserve_requests_total",
               "Finished Generate requests by final status.", "counter", &out);
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [status, count] : requests_) {
      absl::StrAppend(&out, "slabserve_requests_total{status=\"", status,
                      "\"} ", count, "\n");
    }
  }
  AppendCounter("slabserve_prompt_tokens_total",
                "Prompt tokens of admitted requests.", prompt_tokens_.load(),
                &out);
  AppendCounter("slabserve_generated_tokens_total",
                "Tokens streamed to clients.", generated_tokens_.load(), &out);
  AppendCounter("slabserve_prefill_tokens_total",
                "Prompt tokens run through the model (cache hits excluded).",
                prefill_tokens_.load(), &out);
  AppendCounter("slabserve_steps_total", "Scheduler steps with a forward pass.",
                steps_.load(), &out);
  time_to_first_token_.Render("slabserve_time_to_first_token_seconds",
                              "From arrival to the first generated token.",
                              &out);
  inter_token_latency_.Render("slabserve_inter_token_latency_seconds",
                              "Between consecutive tokens of a completion.",
                              &out);
  e2e_latency_.Render("slabserve_e2e_latency_seconds",
                      "From arrival to the end of the request.", &out);
  queue_time_.Render("slabserve_queue_time_seconds",
                     "From arrival to the first prefill step.", &out);
  step_time_.Render("slabserve_step_time_seconds",
                    "Forward pass plus sampling of one step.", &out);
  batch_size_.Render("slabserve_batch_size", "Sequences per forward pass.",
                     &out);
  AppendGauge("slabserve_running", "Requests holding slots.", stats.running,
              &out);
  AppendGauge("slabserve_waiting", "Requests waiting for a slot.",
              stats.waiting, &out);
  AppendGauge("slabserve_waiting_bytes",
              "Bytes held by requests waiting for a slot.",
              static_cast<double>(stats.waiting_bytes), &out);
  AppendGauge("slabserve_slot_capacity", "Slots the state memory holds.",
              stats.slot_capacity, &out);
  AppendGauge("slabserve_slots_in_use", "Slots holding a sequence.",
              stats.slots_in_use, &out);
  AppendGauge("slabserve_free_slots", "Slots free for new sequences.",
              stats.slot_capacity - stats.slots_in_use, &out);
  AppendGauge("slabserve_block_capacity",
              "Per-token state blocks the state memory holds (0: the model "
              "keeps no per-token state).",
              stats.block_capacity, &out);
  AppendGauge("slabserve_blocks_in_use",
              "Per-token state blocks held by sequences and cached prefixes.",
              stats.blocks_in_use, &out);
  AppendGauge("slabserve_free_blocks", "Per-token state blocks free.",
              stats.block_capacity - stats.blocks_in_use, &out);
  AppendGauge("slabserve_state_memory_bytes",
              "State memory in use (slots and per-token state blocks).",
              static_cast<double>(stats.state_bytes_in_use), &out);
  AppendGauge("slabserve_state_memory_capacity_bytes",
              "State memory of all slots and blocks.",
              static_cast<double>(stats.state_bytes_capacity), &out);
  AppendCounter("slabserve_preemptions_total",
                "Requests preempted (swapped out to host memory, or ended "
                "past the swap budget) for lack of state blocks.",
                static_cast<double>(stats.preemptions), &out);
  AppendGauge("slabserve_swapped_requests",
              "Preempted requests waiting in host memory to resume.",
              stats.swapped, &out);
  AppendGauge("slabserve_swap_memory_bytes",
              "Host memory held by preempted requests' state.",
              static_cast<double>(stats.swap_bytes), &out);
  AppendGatewayGauges(stats, &out);
  return out;
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& host, int port, Handlers handlers,
    const HttpServerOptions& options) {
  auto route = [handlers = std::move(handlers)](const HttpRequest& request) {
    const std::string& path = request.path;
    if (request.method != "GET") {
      return HttpResponse{405, "text/plain", "only GET is supported\n"};
    }
    if (path == "/metrics") {
      return HttpResponse{200, "text/plain; version=0.0.4",
                          handlers.metrics ? handlers.metrics() : ""};
    }
    if (path == "/healthz") {
      return handlers.healthy && !handlers.healthy()
                 ? HttpResponse{503, "text/plain", "draining\n"}
                 : HttpResponse{200, "text/plain", "ok\n"};
    }
    return HttpResponse{404, "text/plain", "try /metrics or /healthz\n"};
  };
  absl::StatusOr<std::unique_ptr<HttpServer>> http =
      HttpServer::Start(host, port, options, std::move(route));
  if (!http.ok()) return http.status();
  return std::unique_ptr<MetricsHttpServer>(
      new MetricsHttpServer(*std::move(http)));
}

}  // namespace slabserve::server
