// Prometheus text exposition of the server's counters, histograms and
// scheduler gauges, served by a small HTTP/1.1 endpoint (GET /metrics and
// GET /healthz) on its own port.
#ifndef SLABSERVE_SERVER_METRICS_H_
#define SLABSERVE_SERVER_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/scheduler/scheduler.h"
#include "server/http_server.h"

namespace slabserve::server {

class Histogram {
 public:
  // `bounds`: the upper bounds of the buckets, ascending (+Inf is implied).
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  // Appends the _bucket, _sum and _count series of `name`.
  void Render(const std::string& name, const std::string& help,
              std::string* out) const;

 private:
  const std::vector<double> bounds_;
  mutable absl::Mutex mu_;
  std::vector<uint64_t> counts_ ABSL_GUARDED_BY(mu_);  // per bucket, +Inf last
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
};

// Everything /metrics reports. Thread-safe; request handlers and the step loop
// record into it while scrapes read it.
class ServerMetrics {
 public:
  ServerMetrics();

  // `status`: "ok" or the lower-case gRPC code name of the failure.
  void CountRequest(const std::string& status);
  void AddPromptTokens(int64_t n) { prompt_tokens_ += n; }
  void AddGeneratedTokens(int64_t n) { generated_tokens_ += n; }
  void ObserveStep(const StepMetrics& step);

  Histogram& time_to_first_token() { return time_to_first_token_; }
  Histogram& inter_token_latency() { return inter_token_latency_; }
  Histogram& e2e_latency() { return e2e_latency_; }
  Histogram& queue_time() { return queue_time_; }

  // The full exposition, with gauges taken from `stats`.
  std::string Render(const SchedulerStats& stats) const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, uint64_t> requests_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> prompt_tokens_{0};
  std::atomic<int64_t> generated_tokens_{0};
  std::atomic<int64_t> prefill_tokens_{0};
  std::atomic<int64_t> steps_{0};
  Histogram time_to_first_token_;
  Histogram inter_token_latency_;
  Histogram e2e_latency_;
  Histogram queue_time_;
  Histogram step_time_;
  Histogram batch_size_;
};

// Answers GET /metrics and GET /healthz on an HttpServer: many connections
// at once, each bounded in header size and idle time.
class MetricsHttpServer {
 public:
  struct Handlers {
    std::function<std::string()> metrics;  // the exposition text
    std::function<bool()> healthy;         // false: /healthz answers 503
  };

  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& host, int port, Handlers handlers,
      const HttpServerOptions& options = {});

  int port() const { return http_->port(); }

 private:
  explicit MetricsHttpServer(std::unique_ptr<HttpServer> http)
      : http_(std::move(http)) {}

  std::unique_ptr<HttpServer> http_;
};

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_METRICS_H_
