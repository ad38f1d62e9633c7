#include "server/grpc_listener.h"

#include <linux/filter.h>
#include <netdb.h>
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

// The port a bound socket got.
int BoundPort(int fd) {
  sockaddr_storage address{};
  socklen_t size = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    return 0;
  }
  return ntohs(address.ss_family == AF_INET6
                   ? reinterpret_cast<sockaddr_in6*>(&address)->sin6_port
                   : reinterpret_cast<sockaddr_in*>(&address)->sin_port);
}

// A listening socket on `address` with `port`, or -1 with errno set.
int ListenOn(const addrinfo& info, int port) {
  sockaddr_storage address{};
  std::memcpy(&address, info.ai_addr, info.ai_addrlen);
  if (address.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&address)->sin6_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in*>(&address)->sin_port = htons(port);
  }
  const int fd =
      socket(info.ai_family, info.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
             info.ai_protocol);
  if (fd < 0) return -1;
  const int on = 1;
  const int off = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  // "[::]" also takes IPv4 connections, as gRPC's own listener does.
  if (address.ss_family == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), info.ai_addrlen) != 0 ||
      listen(fd, kBacklog) != 0) {
    const int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcListener>> GrpcListener::Listen(
    const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  const std::string where = absl::StrCat(host, ":", port);
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(),
                           std::to_string(port).c_str(), &hints, &addresses);
      rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot listen on ", where, ": ", gai_strerror(rc)));
  }
  std::unique_ptr<GrpcListener> listener(new GrpcListener());
  listener->port_ = port;
  absl::Status status;
  for (addrinfo* info = addresses; info != nullptr; info = info->ai_next) {
    const int fd = ListenOn(*info, listener->port_);
    if (fd < 0) {
      status = absl::UnavailableError(
          absl::StrCat("cannot listen on ", where, ": ", std::strerror(errno),
                       " (the port is in use, or the address is not local)"));
      break;
    }
    listener->listeners_.push_back(fd);
    if (listener->port_ == 0) listener->port_ = BoundPort(fd);
  }
  freeaddrinfo(addresses);
  listener->wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (status.ok() && listener->wake_fd_ < 0) {
    status =
        absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  if (!status.ok()) return status;  // the destructor closes what is open
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
