#include "server/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slabserve::server {
namespace {

using ::testing::HasSubstr;

// Sends `request` and returns everything the server sends until it closes.
std::string Exchange(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ==
      0) {
    send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    char buffer[4096];
    ssize_t n;
    while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0)
      reply.append(buffer, n);
  }
  close(fd);
  return reply;
}

std::string Post(const std::string& body, const std::string& extra = "") {
  return absl::StrCat("POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
                      extra, "Content-Length: ", body.size(), "\r\n\r\n", body);
}

HttpServerOptions Options() {
  HttpServerOptions options;
  options.max_body_bytes = 64;
  options.thread_per_connection = true;
  return options;
}

TEST(HttpServerTest, HandsOverBodyAndHeaders) {
  auto server = HttpServer::Start(
      "127.0.0.1", 0, Options(), [](const HttpRequest& request) {
        auto key = request.headers.find("x-key");
        return HttpResponse{
            200, "text/plain",
            absl::StrCat(request.method, " ", request.path, " [", request.body,
                         "] ",
                         key == request.headers.end() ? "-" : key->second)};
      });
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT(Exchange((*server)->port(), Post("hello", "X-Key: k1\r\n")),
              HasSubstr("POST /echo [hello] k1"));
}

TEST(HttpServerTest, FlagsBodiesOverTheLimit) {
  auto server = HttpServer::Start(
      "127.0.0.1", 0, Options(), [](const HttpRequest& request) {
        return request.body_too_large
                   ? HttpResponse{413, "text/plain", "too large"}
                   : HttpResponse{200, "text/plain", "fine"};
      });
  ASSERT_TRUE(server.ok());
  EXPECT_THAT(Exchange((*server)->port(), Post(std::string(65, 'a'))),
              HasSubstr("413"));
  EXPECT_THAT(Exchange((*server)->port(), Post(std::string(64, 'a'))),
              HasSubstr("fine"));
}

class CountingStream : public HttpBodyStream {
 public:
  explicit CountingStream(std::atomic<bool>* destroyed)
      : destroyed_(destroyed) {}
  ~CountingStream() override { *destroyed_ = true; }
  bool Next(std::string* out) override {
    if (next_ == 3) return false;
    absl::StrAppend(out, "part", next_++, ";");
    return true;
  }

 private:
  std::atomic<bool>* destroyed_;
  int next_ = 0;
};

TEST(HttpServerTest, StreamsABodyAsItIsProduced) {
  std::atomic<bool> destroyed{false};
  auto server =
      HttpServer::Start("127.0.0.1", 0, Options(), [&](const HttpRequest&) {
        HttpResponse response;
        response.content_type = "text/event-stream";
        response.stream = std::make_unique<CountingStream>(&destroyed);
        return response;
      });
  ASSERT_TRUE(server.ok());
  std::string reply = Exchange((*server)->port(), Post(""));
  EXPECT_THAT(reply, HasSubstr("chunked"));
  EXPECT_THAT(reply, HasSubstr("part0;"));
  EXPECT_THAT(reply, HasSubstr("part2;"));
  for (int i = 0; i < 100 && !destroyed; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(destroyed);
}

TEST(HttpServerTest, TellsWhenTheClientHasGone) {
  absl::Notification asked, client_closed, answered;
  std::atomic<bool> gone{false};
  auto server = HttpServer::Start(
      "127.0.0.1", 0, Options(), [&](const HttpRequest& request) {
        asked.Notify();
        client_closed.WaitForNotificationWithTimeout(absl::Seconds(10));
        for (int i = 0; i < 100 && !gone; ++i) {
          gone = request.client_gone();
          absl::SleepFor(absl::Milliseconds(10));
        }
        answered.Notify();
        return HttpResponse{200, "text/plain", "late"};
      });
  ASSERT_TRUE(server.ok());
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons((*server)->port());
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  const std::string request = Post("x");
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  ASSERT_TRUE(asked.WaitForNotificationWithTimeout(absl::Seconds(10)));
  close(fd);
  client_closed.Notify();
  ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(gone);
}

}  // namespace
}  // namespace slabserve::server
