// A small HTTP/1.1 server on libmicrohttpd, for the operational endpoints
// (metrics, liveness) and the OpenAI-compatible API. By default the library
// multiplexes connections on a few threads with epoll, so idle or slow
// clients cost a file descriptor, not a turn; handlers must then be quick.
// With `thread_per_connection` each connection gets a thread of its own, so
// a handler (or a streamed body) may block until a model has answered.
// Connections that stay silent past the idle timeout are closed; oversized
// request headers get 431; the number of connections is capped; request
// bodies past `max_body_bytes` are dropped unread and flagged.
#ifndef SLABSERVE_SERVER_HTTP_SERVER_H_
#define SLABSERVE_SERVER_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct MHD_Daemon;

namespace slabserve::server {

struct HttpRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  // The body was longer than max_body_bytes and was dropped: answer 413.
  bool body_too_large = false;
  // Whether the client has closed its end; callable until the response is
  // done (a streamed body included).
  std::function<bool()> client_gone;
};

// A response body produced while it is sent (server-sent events). Needs
// thread_per_connection: Next blocks the connection's thread.
class HttpBodyStream {
 public:
  // Runs once the connection is done with the body: after the end, or as
  // soon as the client has gone.
  virtual ~HttpBodyStream() = default;
  // Blocks until more of the body is ready and appends it to `out`; false
  // once the body is complete (nothing is appended then).
  virtual bool Next(std::string* out) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
  // Set: the body comes from here instead, sent chunked as it is produced.
  std::unique_ptr<HttpBodyStream> stream;
};

struct HttpServerOptions {
  int idle_timeout_seconds = 10;  // a silent connection is closed after this
  int max_connections = 256;
  // Request line plus headers; past it the answer is 431 (or 414 for the
  // request line alone).
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 64 * 1024;
  int threads = 2;  // each multiplexes many connections
  // One thread per connection instead of `threads`: handlers may block.
  bool thread_per_connection = false;
};

class HttpServer {
 public:
  // Called for every request, on the server's threads.
  using Handler = std::function<HttpResponse(const HttpRequest& request)>;

  // Listens on host:port (port 0: any free port; host empty: every
  // address). The listening socket is exclusive: a port in use is an error.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& host, int port, const HttpServerOptions& options,
      Handler handler);
  // Stops listening and closes every connection.
  ~HttpServer();

  int port() const { return port_; }
  const Handler& handler() const { return handler_; }
  size_t max_body_bytes() const { return max_body_bytes_; }

 private:
  HttpServer(Handler handler, size_t max_body_bytes)
      : handler_(std::move(handler)), max_body_bytes_(max_body_bytes) {}

  const Handler handler_;
  const size_t max_body_bytes_;
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
};

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_HTTP_SERVER_H_
