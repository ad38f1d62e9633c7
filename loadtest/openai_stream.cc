#include "loadtest/openai_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace slabload {
namespace {

using Json = nlohmann::json;
namespace v1 = slabserve::v1;

grpc::StatusCode CodeForHttp(int status) {
  switch (status) {
    case 400:
    case 413:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case 401:
      return grpc::StatusCode::UNAUTHENTICATED;
    case 429:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case 503:
      return grpc::StatusCode::UNAVAILABLE;
    default:
      return grpc::StatusCode::UNKNOWN;
  }
}

class OpenAiStream : public slabserve::GenerateStream {
 public:
  explicit OpenAiStream(slabserve::StreamCallbacks callbacks)
      : callbacks_(std::move(callbacks)) {}

  void Cancel() override {
    cancelled_ = true;
    if (int fd = fd_.load(); fd >= 0) shutdown(fd, SHUT_RDWR);
  }

  // Runs the whole exchange and reports it.
  void Run(const std::string& host, int port, const std::string& body,
           double timeout_s) {
    grpc::Status status = Exchange(host, port, body, timeout_s);
    if (int fd = fd_.exchange(-1); fd >= 0) close(fd);
    if (cancelled_ && !status.ok()) {
      status = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    }
    callbacks_.on_done(status);
  }

 private:
  grpc::Status Exchange(const std::string& host, int port,
                        const std::string& body, double timeout_s) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    fd_ = fd;
    timeval timeout{static_cast<time_t>(timeout_s),
                    static_cast<suseconds_t>(std::fmod(timeout_s, 1.0) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1 ||
        connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
            0) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          absl::StrCat("cannot connect to ", host, ":", port));
    }
    const std::string request = absl::StrCat(
        "POST /v1/completions HTTP/1.0\r\nContent-Type: application/json\r\n",
        "Content-Length: ", body.size(), "\r\n\r\n", body);
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "send failed");
    }
    return ReadReply(fd);
  }

  grpc::Status ReadReply(int fd) {
    std::string buffer;
    int http_status = 0;
    bool done = false;
    char bytes[16384];
    while (!done) {
      ssize_t n = recv(fd, bytes, sizeof(bytes), 0);
      if (n <= 0) break;
      buffer.append(bytes, static_cast<size_t>(n));
      if (http_status == 0) {
        const size_t header_end = buffer.find("\r\n\r\n");
        if (header_end == std::string::npos) continue;
        const size_t space = buffer.find(' ');
        if (space == std::string::npos ||
            !absl::SimpleAtoi(buffer.substr(space + 1, 3), &http_status)) {
          return grpc::Status(grpc::StatusCode::INTERNAL, "bad HTTP reply");
        }
        buffer.erase(0, header_end + 4);
      }
      if (http_status != 200) continue;  // the error body, read to the end
      size_t event_end;
      while ((event_end = buffer.find("\n\n")) != std::string::npos) {
        std::string event = buffer.substr(0, event_end);
        buffer.erase(0, event_end + 2);
        if (event.rfind("data: ", 0) != 0) continue;
        if (event == "data: [DONE]") {
          done = true;
          break;
        }
        if (grpc::Status s = OnEvent(event.substr(6)); !s.ok()) return s;
      }
    }
    if (http_status != 200) {
      return grpc::Status(CodeForHttp(http_status),
                          absl::StrCat("HTTP ", http_status, ": ", buffer));
    }
    if (!done) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "the stream ended before [DONE]");
    }
    return grpc::Status::OK;
  }

  grpc::Status OnEvent(const std::string& data) {
    Json event = Json::parse(data, nullptr, /*allow_exceptions=*/false);
    if (!event.is_object()) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "event is not JSON");
    }
    if (event.contains("error")) {
      return grpc::Status(grpc::StatusCode::UNKNOWN, event["error"].dump());
    }
    v1::GenerateChunk chunk;
    if (event.contains("usage") && event["usage"].is_object()) {
      chunk.mutable_usage()->set_prompt_tokens(
          event["usage"].value("prompt_tokens", 0));
    }
    for (const Json& choice : event.value("choices", Json::array())) {
      const Json& logprobs = choice["logprobs"];
      if (!logprobs.is_object()) continue;
      for (size_t i = 0; i < logprobs.value("tokens", Json::array()).size();
           ++i) {
        chunk.add_token_ids(0);  // only the count is measured
      }
    }
    callbacks_.on_chunk(chunk);
    return grpc::Status::OK;
  }

  const slabserve::StreamCallbacks callbacks_;
  std::atomic<int> fd_{-1};
  std::atomic<bool> cancelled_{false};
};

}  // namespace

std::string OpenAiCompletionBody(const v1::GenerateRequest& request,
                                 const std::string& model) {
  Json body = {{"model", model},
               {"max_tokens", request.max_tokens()},
               {"temperature", request.sampling().temperature()},
               {"ignore_eos", request.ignore_eos()},
               {"logprobs", 0},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (request.has_token_ids()) {
    body["prompt"] = std::vector<int32_t>(request.token_ids().ids().begin(),
                                          request.token_ids().ids().end());
  } else {
    body["prompt"] = request.text();
  }
  if (request.sampling().top_p() > 0) {
    body["top_p"] = request.sampling().top_p();
  }
  if (request.sampling().seed() > 0) body["seed"] = request.sampling().seed();
  if (request.n() > 1) body["n"] = request.n();
  return body.dump();
}

std::shared_ptr<slabserve::GenerateStream> StartOpenAiStream(
    const std::string& host, int port, const std::string& model,
    const v1::GenerateRequest& request, slabserve::StreamCallbacks callbacks,
    double timeout_s) {
  auto stream = std::make_shared<OpenAiStream>(std::move(callbacks));
  // Detached, holding the stream: on_done is its last use of anything else.
  std::thread([stream, host, port, timeout_s,
               body = OpenAiCompletionBody(request, model)] {
    stream->Run(host, port, body, timeout_s);
  }).detach();
  return stream;
}

}  // namespace slabload
