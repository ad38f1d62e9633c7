#include "tests/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace slabserve::testing {
namespace {

// Decodes a chunked transfer-encoded body.
std::string Dechunk(const std::string& raw) {
  std::string body;
  size_t at = 0;
  while (at < raw.size()) {
    size_t line_end = raw.find("\r\n", at);
    if (line_end == std::string::npos) break;
    size_t size =
        std::strtoul(raw.substr(at, line_end - at).c_str(), nullptr, 16);
    if (size == 0) break;
    body += raw.substr(line_end + 2, size);
    at = line_end + 2 + size + 2;
  }
  return body;
}

}  // namespace

HttpConnection::HttpConnection(
    int port, const std::string& method, const std::string& path,
    const std::string& body,
    const std::map<std::string, std::string>& headers) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{30, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    close(fd_);
    fd_ = -1;
    return;
  }
  std::string request =
      absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                   "Connection: close\r\nContent-Type: application/json\r\n");
  for (const auto& [name, value] : headers) {
    absl::StrAppend(&request, name, ": ", value, "\r\n");
  }
  absl::StrAppend(&request, "Content-Length: ", body.size(), "\r\n\r\n", body);
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n =
        send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer before reading it all
    sent += static_cast<size_t>(n);
  }
}

HttpConnection::~HttpConnection() {
  if (fd_ >= 0) close(fd_);
}

bool HttpConnection::ReadUntil(const std::string& text) {
  char buffer[16384];
  while (!absl::StrContains(raw_, text)) {
    if (fd_ < 0) return false;
    ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) return false;
    raw_.append(buffer, static_cast<size_t>(n));
  }
  return true;
}

HttpReply HttpConnection::ReadAll() {
  ReadUntil(std::string(1, '\0'));  // never arrives: reads to the close
  HttpReply reply;
  size_t header_end = raw_.find("\r\n\r\n");
  if (header_end == std::string::npos) return reply;
  reply.headers = raw_.substr(0, header_end);
  std::vector<std::string> status_line = absl::StrSplit(reply.headers, ' ');
  if (status_line.size() < 2 ||
      !absl::SimpleAtoi(status_line[1], &reply.status)) {
    return reply;
  }
  reply.body = raw_.substr(header_end + 4);
  if (absl::StrContains(absl::AsciiStrToLower(reply.headers),
                        "transfer-encoding: chunked")) {
    reply.body = Dechunk(reply.body);
  }
  return reply;
}

HttpReply HttpCall(int port, const std::string& method, const std::string& path,
                   const std::string& body,
                   const std::map<std::string, std::string>& headers) {
  return HttpConnection(port, method, path, body, headers).ReadAll();
}

std::vector<std::string> SseData(const std::string& body) {
  std::vector<std::string> data;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (absl::ConsumePrefix(&line, "data: ")) data.emplace_back(line);
  }
  return data;
}

}  // namespace slabserve::testing
