// A small HTTP/1.1 server on libmicrohttpd for the operational endpoints
// (metrics, liveness). The library multiplexes connections on its own
// threads with epoll, so idle or slow clients cost a file descriptor, not a
// turn: every request is answered while others dawdle. Connections that stay
// silent past the idle timeout are closed; oversized request headers get
// 431; the number of connections is capped.
#ifndef SLABSERVE_SERVER_HTTP_SERVER_H_
#define SLABSERVE_SERVER_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct MHD_Daemon;

namespace slabserve::server {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
};

struct HttpServerOptions {
  int idle_timeout_seconds = 10;  // a silent connection is closed after this
  int max_connections = 256;
  // Request line plus headers; past it the answer is 431 (or 414 for the
  // request line alone).
  size_t max_header_bytes = 16 * 1024;
  int threads = 2;  // each multiplexes many connections
};

class HttpServer {
 public:
  // Called for every request, on the server's threads; must be quick.
  using Handler = std::function<HttpResponse(const std::string& method,
                                             const std::string& path)>;

  // Listens on host:port (port 0: any free port; host empty: every
  // address). The listening socket is exclusive: a port in use is an error.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& host, int port, const HttpServerOptions& options,
      Handler handler);
  // Stops listening and closes every connection.
  ~HttpServer();

  int port() const { return port_; }

 private:
  explicit HttpServer(Handler handler) : handler_(std::move(handler)) {}

  const Handler handler_;
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
};

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_HTTP_SERVER_H_
