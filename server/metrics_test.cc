#include "server/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slabserve::server {
namespace {

using ::testing::HasSubstr;

std::string Request(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ==
      0) {
    send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    char buffer[4096];
    ssize_t n;
    while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) {
      response.append(buffer, static_cast<size_t>(n));
    }
  }
  close(fd);
  return response;
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
  stats.state_bytes_in_use = 400;
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
  EXPECT_THAT(out, HasSubstr("slabserve_state_memory_bytes 400\n"));
  EXPECT_THAT(out, HasSubstr("slabserve_state_memory_capacity_bytes 1000\n"));
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

  std::string metrics = Request(port, "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_THAT(metrics, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(metrics, HasSubstr("Content-Length: 15\r\n"));
  EXPECT_THAT(metrics, HasSubstr("\r\n\r\nslabserve_up 1\n"));
  EXPECT_THAT(Request(port, "GET /healthz HTTP/1.1\r\n\r\n"),
              HasSubstr("200 OK"));
  healthy = false;
  EXPECT_THAT(Request(port, "GET /healthz HTTP/1.1\r\n\r\n"),
              HasSubstr("503 Service Unavailable"));
  EXPECT_THAT(Request(port, "GET /nothing HTTP/1.1\r\n\r\n"),
              HasSubstr("404 Not Found"));
  EXPECT_THAT(Request(port, "POST /metrics HTTP/1.1\r\n\r\n"),
              HasSubstr("405"));
  EXPECT_THAT(Request(port, std::string(9000, 'x')), HasSubstr("431"));
  // A client that connects and says nothing costs at most the timeout.
  EXPECT_EQ(Request(port, ""), "");
  EXPECT_THAT(Request(port, "GET /metrics HTTP/1.1\r\n\r\n"),
              HasSubstr("200 OK"));
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
