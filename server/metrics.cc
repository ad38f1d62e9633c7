#include "server/metrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace slabserve::server {
namespace {

constexpr size_t kMaxRequestBytes = 8192;
constexpr int kConnectionTimeoutMs = 2000;

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

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string HttpResponse(int code, const char* reason,
                         const std::string& content_type,
                         const std::string& body) {
  return absl::StrCat("HTTP/1.1 ", code, " ", reason,
                      "\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", body.size(),
                      "\r\nConnection: close\r\n\r\n", body);
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
  AppendGauge("slabserve_state_memory_bytes",
              "State memory held by sequences in slots.",
              static_cast<double>(stats.state_bytes_in_use), &out);
  AppendGauge(
      "slabserve_state_memory_capacity_bytes", "State memory of all slots.",
      static_cast<double>(stats.state_bytes_per_sequence) * stats.slot_capacity,
      &out);
  return out;
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& host, int port, Handlers handlers) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(),
                           service.c_str(), &hints, &addresses);
      rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address ", host, ":", port, ": ", gai_strerror(rc)));
  }
  int fd = -1;
  std::string last_error = "no address";
  for (addrinfo* a = addresses; a != nullptr; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 64) == 0) break;
    last_error = std::strerror(errno);
    close(fd);
    fd = -1;
  }
  freeaddrinfo(addresses);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("metrics endpoint cannot listen on ", host, ":", port,
                     ": ", last_error));
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  int bound_port =
      bound.ss_family == AF_INET6
          ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
          : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  int wake[2];
  if (pipe2(wake, O_CLOEXEC) != 0) {
    close(fd);
    return absl::InternalError(
        absl::StrCat("metrics endpoint: pipe: ", std::strerror(errno)));
  }
  return std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer(
      fd, bound_port, wake[0], wake[1], std::move(handlers)));
}

MetricsHttpServer::MetricsHttpServer(int listen_fd, int port, int wake_read_fd,
                                     int wake_write_fd, Handlers handlers)
    : listen_fd_(listen_fd),
      port_(port),
      wake_read_fd_(wake_read_fd),
      wake_write_fd_(wake_write_fd),
      handlers_(std::move(handlers)),
      thread_([this] { Serve(); }) {}

MetricsHttpServer::~MetricsHttpServer() {
  char byte = 0;
  while (write(wake_write_fd_, &byte, 1) < 0 && errno == EINTR) {
  }
  thread_.join();
  close(listen_fd_);
  close(wake_read_fd_);
  close(wake_write_fd_);
}

void MetricsHttpServer::Serve() {
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_fd_, POLLIN, 0}};
  while (true) {
    int ready = poll(fds, 2, -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0 || (fds[1].revents & POLLIN)) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    timeval timeout{kConnectionTimeoutMs / 1000,
                    (kConnectionTimeoutMs % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    HandleConnection(fd);
    close(fd);
  }
}

void MetricsHttpServer::HandleConnection(int fd) {
  std::string request;
  char buffer[1024];
  while (request.find("\r\n\r\n") == std::string::npos) {
    if (request.size() >= kMaxRequestBytes) {
      WriteAll(fd, HttpResponse(431, "Request Header Fields Too Large",
                                "text/plain", "request too large\n"));
      return;
    }
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // closed or timed out
    request.append(buffer, static_cast<size_t>(n));
  }
  std::string line = request.substr(0, request.find("\r\n"));
  size_t first_space = line.find(' ');
  size_t second_space = line.find(' ', first_space + 1);
  std::string method = line.substr(0, first_space);
  std::string target =
      first_space == std::string::npos
          ? ""
          : line.substr(first_space + 1, second_space - first_space - 1);
  target = target.substr(0, target.find('?'));
  if (method != "GET") {
    WriteAll(fd, HttpResponse(405, "Method Not Allowed", "text/plain",
                              "only GET is supported\n"));
  } else if (target == "/metrics") {
    WriteAll(fd, HttpResponse(200, "OK", "text/plain; version=0.0.4",
                              handlers_.metrics()));
  } else if (target == "/healthz") {
    bool healthy = handlers_.healthy();
    WriteAll(fd, healthy ? HttpResponse(200, "OK", "text/plain", "ok\n")
                         : HttpResponse(503, "Service Unavailable",
                                        "text/plain", "draining\n"));
  } else {
    WriteAll(fd, HttpResponse(404, "Not Found", "text/plain",
                              "try /metrics or /healthz\n"));
  }
}

}  // namespace slabserve::server
