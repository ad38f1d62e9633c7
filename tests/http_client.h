// A minimal blocking HTTP/1.1 client over loopback for the OpenAI API
// tests: one request per connection, chunked bodies decoded, server-sent
// events split into their data lines. Every read is bounded in time.
#ifndef SLABSERVE_TESTS_HTTP_CLIENT_H_
#define SLABSERVE_TESTS_HTTP_CLIENT_H_

#include <map>
#include <string>
#include <vector>

namespace slabserve::testing {

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string headers;
  std::string body;  // de-chunked
};

// An open connection to 127.0.0.1:port with one request sent.
class HttpConnection {
 public:
  HttpConnection(int port, const std::string& method, const std::string& path,
                 const std::string& body,
                 const std::map<std::string, std::string>& headers = {});
  ~HttpConnection();  // closes the socket: the client goes away

  // Reads until the server closes (or 30 s pass).
  HttpReply ReadAll();
  // Reads until `text` has arrived in the raw reply; false on close/timeout.
  bool ReadUntil(const std::string& text);

 private:
  int fd_ = -1;
  std::string raw_;
};

HttpReply HttpCall(int port, const std::string& method, const std::string& path,
                   const std::string& body = "",
                   const std::map<std::string, std::string>& headers = {});

// The payloads of a text/event-stream body's "data: " lines, in order.
std::vector<std::string> SseData(const std::string& body);

}  // namespace slabserve::testing

#endif  // SLABSERVE_TESTS_HTTP_CLIENT_H_
