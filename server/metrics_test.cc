#include "server/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slabserve::server {
namespace {

using ::testing::HasSubstr;

// A connected loopback socket (or -1), with a receive timeout.
int Connect(int port, int timeout_seconds = 5) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{timeout_seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends `request` and reads until the server closes (or the timeout).
std::string Request(int port, const std::string& request) {
  int fd = Connect(port);
  std::string response;
  if (fd < 0) return response;
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  char buffer[4096];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) {
    response.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return response;
}

std::string Get(int port, const std::string& method, const std::string& path,
                const std::string& extra_headers = "") {
  return Request(
      port, absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                         extra_headers, "Connection: close\r\n\r\n"));
}

TEST(HistogramTest, BucketsAreCumulative) {
  Histogram histogram({1, 2});
  histogram.Observe(0.5);
  histogram.Observe(1.5);
  histogram.Observe(1.5);
  histogram.Observe(7);
  std::string out;
  histogram.Render("h", "help", &out);
  EXPECT_THAT(out, HasSubstr("# TYPE h histogram\n"));
  EXPECT_THAT(out, HasSubstr("h_bucket{le=\"1\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("h_bucket{le=\"2\"} 3\n"));
  EXPECT_THAT(out, HasSubstr("h_bucket{le=\"+Inf\"} 4\n"));
  EXPECT_THAT(out, HasSubstr("h_sum 10.5\n"));
  EXPECT_THAT(out, HasSubstr("h_count 4\n"));
}

TEST(ServerMetricsTest, RendersCountersHistogramsAndGauges) {
  ServerMetrics metrics;
  metrics.CountRequest("ok");
  metrics.CountRequest("ok");
  metrics.CountRequest("invalid_argument");
  metrics.AddPromptTokens(7);
  metrics.AddGeneratedTokens(16);
  StepMetrics step;
  step.batch_size = 3;
  step.step_time = absl::Milliseconds(2);
  metrics.ObserveStep(step);
  SchedulerStats stats;
  stats.slot_capacity = 10;
  stats.slots_in_use = 4;
  stats.running = 4;
  stats.waiting = 2;
  stats.state_bytes_per_sequence = 100;
  stats.block_capacity = 20;
  stats.blocks_in_use = 5;
  stats.state_bytes_per_block = 40;
  stats.state_bytes_in_use = 400 + 200;
  stats.state_bytes_capacity = 1000 + 800;
  stats.preemptions = 3;
  stats.swapped = 1;
  stats.swap_bytes = 4096;
  std::string out = metrics.Render(stats);
  EXPECT_THAT(out, HasSubstr("slabserve_requests_total{status=\"ok\"} 2\n"));
  EXPECT_THAT(out,
              HasSubstr("slabserve_requests_total{status=\"invalid_argument\"} "
                        "1\n"));
  EXPECT_THAT(out, HasSubstr("slabserve_prompt_tokens_total 7\n"));
  EXPECT_THAT(out, HasSubstr("slabserve_generated_tokens_total 16\n"));
  EXPECT_THAT(out, HasSubstr("slabserve_batch_size_bucket{le=\"4\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("slabserve_step_time_seconds_count 1\n"));
  EXPECT_THAT(out, HasSubstr("slabserve_free_slots 6\n"));
  EXPECT_THAT(out, HasSubstr("slabserve_waiting 2\n"));
  EXPECT_THAT(out, HasSubstr("slabserve_state_memory_bytes 600\n"));
  EXPECT_THAT(out, HasSubstr("slabserve_state_memory_capacity_bytes 1800\n"));
  EXPECT_THAT(out, HasSubstr("slabserve_block_capacity 20\n"));
  EXPECT_THAT(out, HasSubstr("slabserve_blocks_in_use 5\n"));
  EXPECT_THAT(out, HasSubstr("slabserve_free_blocks 15\n"));
  EXPECT_THAT(out, HasSubstr("# TYPE slabserve_preemptions_total counter\n"
                             "slabserve_preemptions_total 3\n"));
  EXPECT_THAT(out, HasSubstr("slabserve_swapped_requests 1\n"));
  EXPECT_THAT(out, HasSubstr("slabserve_swap_memory_bytes 4096\n"));
  // Slots and blocks alike: 600 of 1800 bytes.
  EXPECT_THAT(out, HasSubstr("vllm:kv_cache_usage_perc 0.33333333333333331\n"));
}

TEST(ServerMetricsTest, RendersGatewayGaugesUnderVllmNames) {
  ServerMetrics metrics;
  SchedulerStats stats;
  stats.slot_capacity = 8;
  stats.slots_in_use = 2;
  stats.running = 2;
  stats.waiting = 5;
  stats.state_bytes_in_use = 2 * 64;
  stats.state_bytes_capacity = 8 * 64;
  std::string out = metrics.Render(stats);
  EXPECT_THAT(out, HasSubstr("# TYPE vllm:num_requests_waiting gauge\n"
                             "vllm:num_requests_waiting 5\n"));
  EXPECT_THAT(out, HasSubstr("# TYPE vllm:num_requests_running gauge\n"
                             "vllm:num_requests_running 2\n"));
  EXPECT_THAT(out, HasSubstr("# TYPE vllm:kv_cache_usage_perc gauge\n"
                             "vllm:kv_cache_usage_perc 0.25\n"));

  stats.slots_in_use = 8;
  stats.state_bytes_in_use = 8 * 64;
  EXPECT_THAT(metrics.Render(stats), HasSubstr("vllm:kv_cache_usage_perc 1\n"));
  // No slots at all (a model whose state exceeds the budget): 0, never NaN.
  EXPECT_THAT(metrics.Render(SchedulerStats{}),
              HasSubstr("vllm:kv_cache_usage_perc 0\n"));
}

TEST(MetricsHttpServerTest, ServesMetricsHealthAndErrors) {
  std::atomic<bool> healthy = true;
  MetricsHttpServer::Handlers handlers;
  handlers.metrics = [] { return std::string("slabserve_up 1\n"); };
  handlers.healthy = [&] { return healthy.load(); };
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start("127.0.0.1", 0, handlers);
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->port();
  ASSERT_GT(port, 0);

  std::string metrics = Get(port, "GET", "/metrics");
  EXPECT_THAT(metrics, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(metrics, HasSubstr("Content-Length: 15\r\n"));
  EXPECT_THAT(metrics, HasSubstr("\r\n\r\nslabserve_up 1\n"));
  EXPECT_THAT(Get(port, "GET", "/healthz"), HasSubstr("200 OK"));
  healthy = false;
  EXPECT_THAT(Get(port, "GET", "/healthz"),
              HasSubstr("503 Service Unavailable"));
  EXPECT_THAT(Get(port, "GET", "/nothing"), HasSubstr("404 Not Found"));
  EXPECT_THAT(Get(port, "POST", "/metrics"), HasSubstr("405"));
  // Oversized headers: 431, and the server goes on answering.
  EXPECT_THAT(Get(port, "GET", "/metrics",
                  absl::StrCat("X-Padding: ", std::string(20000, 'x'), "\r\n")),
              HasSubstr("431"));
  EXPECT_THAT(Get(port, "GET", "/metrics"), HasSubstr("200 OK"));
}

TEST(MetricsHttpServerTest, IdleAndSlowClientsDoNotDelayOthers) {
  MetricsHttpServer::Handlers handlers;
  handlers.metrics = [] { return std::string("slabserve_up 1\n"); };
  HttpServerOptions options;
  options.idle_timeout_seconds = 3;
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start("127.0.0.1", 0, handlers, options);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  // Ten connections that say nothing, and one that trickles a request a
  // byte at a time (each byte resets the idle timer).
  std::vector<int> idle;
  for (int i = 0; i < 10; ++i) idle.push_back(Connect(port));
  const int slow = Connect(port);
  ASSERT_GE(slow, 0);
  std::atomic<bool> stop = false;
  std::thread trickle([&] {
    const std::string request = "GET /metrics HTTP/1.1\r\nX-Slow: ";
    for (size_t i = 0; !stop && i < 1000; ++i) {
      send(slow, &request[i % request.size()], 1, MSG_NOSIGNAL);
      absl::SleepFor(absl::Milliseconds(200));
    }
  });
  for (int i = 0; i < 5; ++i) {
    const absl::Time start = absl::Now();
    EXPECT_THAT(Get(port, "GET", "/metrics"), HasSubstr("200 OK"));
    EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "request " << i;
    absl::SleepFor(absl::Milliseconds(300));
  }
  // Silent connections are closed after the idle timeout.
  char byte;
  const absl::Time start = absl::Now();
  EXPECT_EQ(recv(idle[0], &byte, 1, 0), 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  stop = true;
  trickle.join();
  for (int fd : idle) close(fd);
  close(slow);
}

TEST(MetricsHttpServerTest, PortInUseIsAnError) {
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> first =
      MetricsHttpServer::Start("127.0.0.1", 0, {});
  ASSERT_TRUE(first.ok());
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> second =
      MetricsHttpServer::Start("127.0.0.1", (*first)->port(), {});
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("cannot listen"));
}

}  // namespace
}  // namespace slabserve::server
