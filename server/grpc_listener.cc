#include "server/grpc_listener.h"

#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/listen_socket.h"
#include "spdlog/spdlog.h"

namespace slabserve::server {
namespace {

constexpr int kBacklog = 1024;
// How long Close keeps accepting after it stops new handshakes: handshakes
// already under way complete within a round trip.
constexpr absl::Duration kSettle = absl::Milliseconds(250);

// Makes the kernel drop new connection requests (TCP segments with SYN and
// without ACK) to `listener`, so its accept queue stops growing: a client
// whose handshake completes gets served, and one whose SYN was dropped
// retries it and meets a closed port ("connection refused"). A client that
// saw its handshake complete has sent its request, and a reset then would
// lose it (nginx, for one, does not replay a gRPC request it has sent).
// Accepted sockets inherit the filter; it never matches their segments.
void StopHandshakes(int listener) {
  static sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),           // TCP flags
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),        // SYN | ACK
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),  // SYN alone
      BPF_STMT(BPF_RET | BPF_K, 0),                     // drop
      BPF_STMT(BPF_RET | BPF_K, 0xFFFFFFFF),            // keep
  };
  const sock_fprog program = {sizeof(code) / sizeof(code[0]), code};
  if (setsockopt(listener, SOL_SOCKET, SO_ATTACH_FILTER, &program,
                 sizeof(program)) != 0) {
    spdlog::warn("gRPC listener: cannot hold off new connections: {}",
                 std::strerror(errno));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcListener>> GrpcListener::Listen(
    const std::string& host, int port) {
  absl::StatusOr<ListeningSockets> sockets =
      ListenOnEveryAddress(host, port, kBacklog);
  if (!sockets.ok()) return sockets.status();
  std::unique_ptr<GrpcListener> listener(new GrpcListener());
  listener->listeners_ = std::move(sockets->fds);
  listener->port_ = sockets->port;
  listener->wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (listener->wake_fd_ < 0) {
    // The destructor closes the listening sockets.
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  return listener;
}

GrpcListener::~GrpcListener() {
  Close();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void GrpcListener::Start(
    std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor) {
  acceptor_ = std::move(acceptor);
  thread_ = std::thread([this] { AcceptLoop(); });
}

void GrpcListener::Close() {
  if (thread_.joinable()) {
    for (int fd : listeners_) StopHandshakes(fd);
    absl::SleepFor(kSettle);
    const uint64_t one = 1;
    while (write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
    thread_.join();
    for (int fd : listeners_) AcceptAll(fd);
  }
  for (int fd : listeners_) close(fd);
  listeners_.clear();
}

void GrpcListener::AcceptLoop() {
  std::vector<pollfd> fds;
  for (int fd : listeners_) fds.push_back({fd, POLLIN, 0});
  fds.push_back({wake_fd_, POLLIN, 0});
  while (true) {
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("gRPC listener: poll: {}", std::strerror(errno));
      return;
    }
    if (fds.back().revents != 0) return;
    for (size_t i = 0; i + 1 < fds.size(); ++i) {
      if (fds[i].revents != 0) AcceptAll(fds[i].fd);
    }
  }
}

void GrpcListener::AcceptAll(int listener) {
  while (true) {
    const int fd =
        accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      // EAGAIN: the queue is empty. Other errors (a connection reset while
      // queued, no descriptors left) end this round; poll says when to retry.
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED) {
        spdlog::warn("gRPC listener: accept: {}", std::strerror(errno));
      }
      // Out of descriptors: the queued connection stays readable, so wait a
      // little rather than spin.
      if (errno == EMFILE || errno == ENFILE) {
        absl::SleepFor(absl::Milliseconds(100));
      }
      return;
    }
    const int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters
        connection;
    connection.listener_fd = listener;
    connection.fd = fd;  // gRPC owns it from here
    acceptor_->HandleNewConnection(&connection);
  }
}

}  // namespace slabserve::server
