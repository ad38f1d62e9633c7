#include "server/http_server.h"

#include <microhttpd.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/listen_socket.h"

namespace slabserve::server {
namespace {

// A request between its first call and its answer: the body arrives in
// pieces.
struct PendingRequest {
  HttpRequest request;
};

// What a streamed response reads from.
struct StreamedBody {
  std::unique_ptr<HttpBodyStream> stream;
  std::string pending;
  size_t offset = 0;
};

ssize_t ReadStreamedBody(void* cls, uint64_t /*pos*/, char* buffer,
                         size_t max) {
  auto* body = static_cast<StreamedBody*>(cls);
  while (body->offset == body->pending.size()) {
    body->pending.clear();
    body->offset = 0;
    if (!body->stream->Next(&body->pending)) {
      return MHD_CONTENT_READER_END_OF_STREAM;
    }
  }
  const size_t n = std::min(max, body->pending.size() - body->offset);
  std::memcpy(buffer, body->pending.data() + body->offset, n);
  body->offset += n;
  return static_cast<ssize_t>(n);
}

void FreeStreamedBody(void* cls) { delete static_cast<StreamedBody*>(cls); }

// A peer that shut down its end, or a broken socket, reads as gone; a client
// pipelining its next request does not.
bool SocketClosedByPeer(int fd) {
  pollfd watched{fd, POLLRDHUP, 0};
  return poll(&watched, 1, 0) > 0 &&
         (watched.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

MHD_Result CollectHeader(void* cls, MHD_ValueKind /*kind*/, const char* key,
                         const char* value) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(cls);
  (*headers)[absl::AsciiStrToLower(key)] = value != nullptr ? value : "";
  return MHD_YES;
}

MHD_Result Queue(MHD_Connection* connection, HttpResponse answer) {
  MHD_Response* response;
  if (answer.stream != nullptr) {
    auto* body = new StreamedBody{std::move(answer.stream)};
    response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
                                                 &ReadStreamedBody, body,
                                                 &FreeStreamedBody);
    if (response == nullptr) {
      delete body;
      return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL,
                            "no-cache");
  } else {
    response = MHD_create_response_from_buffer(
        answer.body.size(), const_cast<char*>(answer.body.data()),
        MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) return MHD_NO;
  }
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                          answer.content_type.c_str());
  const MHD_Result queued =
      MHD_queue_response(connection, answer.status, response);
  MHD_destroy_response(response);
  return queued;
}

MHD_Result Answer(void* self, MHD_Connection* connection, const char* url,
                  const char* method, const char* /*version*/,
                  const char* upload_data, size_t* upload_data_size,
                  void** request_state) {
  const auto& server = *static_cast<const HttpServer*>(self);
  // The first call only announces the request; its body, if any, follows
  // in later calls, and a last call with no data asks for the answer.
  if (*request_state == nullptr) {
    auto* pending = new PendingRequest;
    *request_state = pending;
    HttpRequest& request = pending->request;
    request.method = method;
    request.path = url;
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    const int fd = info != nullptr ? info->connect_fd : -1;
    request.client_gone = [fd] { return fd >= 0 && SocketClosedByPeer(fd); };
    MHD_get_connection_values(connection, MHD_HEADER_KIND, &CollectHeader,
                              &request.headers);
    uint64_t declared = 0;
    auto length = request.headers.find("content-length");
    if (length != request.headers.end() &&
        absl::SimpleAtoi(length->second, &declared) &&
        declared > server.max_body_bytes()) {
      // Answered before a byte of the body is read.
      request.body_too_large = true;
      return Queue(connection, server.handler()(request));
    }
    return MHD_YES;
  }
  HttpRequest& request = static_cast<PendingRequest*>(*request_state)->request;
  if (*upload_data_size > 0) {
    if (request.body.size() + *upload_data_size > server.max_body_bytes()) {
      request.body_too_large = true;
      request.body.clear();
    }
    if (!request.body_too_large)
      request.body.append(upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  return Queue(connection, server.handler()(request));
}

void RequestCompleted(void* /*cls*/, MHD_Connection* /*connection*/,
                      void** request_state,
                      MHD_RequestTerminationCode /*code*/) {
  delete static_cast<PendingRequest*>(*request_state);
  *request_state = nullptr;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& host, int port, const HttpServerOptions& options,
    Handler handler) {
  absl::StatusOr<std::vector<ListenAddress>> addresses =
      ResolveListenAddresses(host, port);
  if (!addresses.ok()) {
    return absl::Status(
        addresses.status().code(),
        absl::StrCat("HTTP endpoint ", addresses.status().message()));
  }
  // libmicrohttpd listens on one address: the first.
  sockaddr_storage address = addresses->front().address;

  std::unique_ptr<HttpServer> server(
      new HttpServer(std::move(handler), options.max_body_bytes));
  unsigned int flags =
      options.thread_per_connection
          ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD
          : MHD_USE_EPOLL_INTERNAL_THREAD;
  if (address.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
  std::vector<MHD_OptionItem> items = {
      {MHD_OPTION_SOCK_ADDR, 0, &address},
      {MHD_OPTION_CONNECTION_LIMIT,
       static_cast<intptr_t>(options.max_connections), nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT,
       static_cast<intptr_t>(options.idle_timeout_seconds), nullptr},
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT,
       static_cast<intptr_t>(options.max_header_bytes), nullptr},
      {MHD_OPTION_NOTIFY_COMPLETED,
       reinterpret_cast<intptr_t>(&RequestCompleted), nullptr},
  };
  if (!options.thread_per_connection) {
    items.push_back({MHD_OPTION_THREAD_POOL_SIZE,
                     static_cast<intptr_t>(options.threads), nullptr});
  }
  items.push_back({MHD_OPTION_END, 0, nullptr});
  server->daemon_ =
      MHD_start_daemon(flags, 0, nullptr, nullptr, &Answer, server.get(),
                       MHD_OPTION_ARRAY, items.data(), MHD_OPTION_END);
  if (server->daemon_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("HTTP endpoint cannot listen on ", host, ":", port,
                     " (the port is in use, or the address is not local)"));
  }
  const MHD_DaemonInfo* info =
      MHD_get_daemon_info(server->daemon_, MHD_DAEMON_INFO_BIND_PORT);
  server->port_ = info != nullptr ? info->port : port;
  return server;
}

HttpServer::~HttpServer() {
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
}

}  // namespace slabserve::server
