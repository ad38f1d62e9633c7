#include "loadtest/server_metrics.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace slabload {
namespace {

constexpr int kTimeoutSeconds = 5;

// Family of a series: its name without labels, and without the suffix that
// histograms and summaries add when the bare name has a # TYPE.
std::string FamilyOf(const std::string& series,
                     const std::map<std::string, std::string>& types) {
  std::string name = series.substr(0, series.find('{'));
  if (types.count(name)) return name;
  for (absl::string_view suffix : {"_sum", "_count", "_bucket", "_total"}) {
    if (absl::EndsWith(name, suffix)) {
      std::string base = name.substr(0, name.size() - suffix.size());
      if (types.count(base)) return base;
    }
  }
  return name;
}

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

absl::StatusOr<std::string> HttpGet(const std::string& host_port,
                                    const std::string& path) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics target '", host_port, "' is not HOST:PORT"));
  }
  std::string host = host_port.substr(0, colon);
  const std::string port = host_port.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addresses = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &addresses)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot resolve metrics target ", host_port, ": ", gai_strerror(rc)));
  }
  std::string last_error = "no address";
  std::unique_ptr<Socket> socket_holder;
  for (addrinfo* a = addresses; a != nullptr; a = a->ai_next) {
    auto candidate = std::make_unique<Socket>(
        socket(a->ai_family, a->ai_socktype, a->ai_protocol));
    if (candidate->fd() < 0) continue;
    timeval timeout{kTimeoutSeconds, 0};
    setsockopt(candidate->fd(), SOL_SOCKET, SO_RCVTIMEO, &timeout,
               sizeof(timeout));
    setsockopt(candidate->fd(), SOL_SOCKET, SO_SNDTIMEO, &timeout,
               sizeof(timeout));
    if (connect(candidate->fd(), a->ai_addr, a->ai_addrlen) == 0) {
      socket_holder = std::move(candidate);
      break;
    }
    last_error = std::strerror(errno);
  }
  freeaddrinfo(addresses);
  if (socket_holder == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot connect to metrics endpoint ", host_port, ": ", last_error));
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", host_port,
                   "\r\nConnection: close\r\n\r\n");
  if (send(socket_holder->fd(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return absl::UnavailableError(
        absl::StrCat("cannot send to metrics endpoint ", host_port));
  }
  std::string response;
  char buffer[16384];
  while (true) {
    const ssize_t n = recv(socket_holder->fd(), buffer, sizeof(buffer), 0);
    if (n == 0) break;
    if (n < 0) {
      return absl::DeadlineExceededError(absl::StrCat(
          "reading metrics from ", host_port, ": ", std::strerror(errno)));
    }
    response.append(buffer, static_cast<size_t>(n));
  }
  const size_t body = response.find("\r\n\r\n");
  const std::string status_line = response.substr(0, response.find("\r\n"));
  if (body == std::string::npos || !absl::StrContains(status_line, " 200")) {
    return absl::UnavailableError(absl::StrCat(
        "metrics endpoint ", host_port, " answered '", status_line, "'"));
  }
  return response.substr(body + 4);
}

}  // namespace

MetricsSnapshot ParseMetrics(absl::string_view text) {
  MetricsSnapshot snapshot;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    if (line.front() == '#') {
      const std::vector<absl::string_view> words =
          absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (words.size() >= 4 && words[1] == "TYPE") {
        snapshot.types[std::string(words[2])] = std::string(words[3]);
      }
      continue;
    }
    // Labels may hold spaces, so the value starts after the closing brace.
    size_t name_end = line.find('{');
    if (name_end != absl::string_view::npos) {
      name_end = line.find('}', name_end);
      if (name_end == absl::string_view::npos) continue;
      ++name_end;
    } else {
      name_end = line.find_first_of(" \t");
      if (name_end == absl::string_view::npos) continue;
    }
    const std::vector<absl::string_view> rest =
        absl::StrSplit(line.substr(name_end), ' ', absl::SkipEmpty());
    double value;
    if (rest.empty() || !absl::SimpleAtod(rest[0], &value)) continue;
    snapshot.values[std::string(line.substr(0, name_end))] = value;
  }
  return snapshot;
}

absl::StatusOr<MetricsSnapshot> ScrapeMetrics(const std::string& host_port) {
  absl::StatusOr<std::string> body = HttpGet(host_port, "/metrics");
  if (!body.ok()) return body.status();
  return ParseMetrics(*body);
}

std::map<std::string, double> MetricsDelta(const MetricsSnapshot& start,
                                           const MetricsSnapshot& end) {
  std::map<std::string, double> delta;
  for (const auto& [series, value] : end.values) {
    const auto type = end.types.find(FamilyOf(series, end.types));
    const bool cumulative = type != end.types.end() &&
                            type->second != "gauge" &&
                            type->second != "untyped";
    const auto before = start.values.find(series);
    delta[series] = cumulative && before != start.values.end()
                        ? value - before->second
                        : value;
  }
  return delta;
}

double RequestsServed(const MetricsSnapshot& snapshot) {
  static constexpr absl::string_view kSeries = "slabserve_requests_total{";
  double total = 0;
  for (const auto& [series, value] : snapshot.values) {
    if (absl::StartsWith(series, kSeries)) total += value;
  }
  return total;
}

void ComputeShares(std::vector<ReplicaShare>* replicas) {
  double total = 0;
  for (ReplicaShare& r : *replicas) {
    r.served = r.error.empty() ? r.served_after - r.served_before : 0;
    total += r.served;
  }
  for (ReplicaShare& r : *replicas) {
    r.share = total > 0 ? r.served / total : 0;
  }
}

}  // namespace slabload
