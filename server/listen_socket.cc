#include "server/listen_socket.h"

#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace slabserve::server {
namespace {

// The port a bound socket got, or 0.
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

// A listening socket on `resolved` with `port`, or -1 with errno set.
int ListenOn(const ListenAddress& resolved, int port, int backlog) {
  sockaddr_storage address = resolved.address;
  if (address.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&address)->sin6_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in*>(&address)->sin_port = htons(port);
  }
  const int fd =
      socket(resolved.family, resolved.socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
             resolved.protocol);
  if (fd < 0) return -1;
  const int on = 1;
  const int off = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  // "[::]" also takes IPv4 connections, as gRPC's own listener does.
  if (address.ss_family == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), resolved.length) != 0 ||
      listen(fd, backlog) != 0) {
    const int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::vector<ListenAddress>> ResolveListenAddresses(
    const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(),
                           std::to_string(port).c_str(), &hints, &addresses);
      rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot listen on ", host, ":", port, ": ", gai_strerror(rc)));
  }
  std::vector<ListenAddress> resolved;
  for (addrinfo* info = addresses; info != nullptr; info = info->ai_next) {
    ListenAddress& address = resolved.emplace_back();
    std::memcpy(&address.address, info->ai_addr, info->ai_addrlen);
    address.length = info->ai_addrlen;
    address.family = info->ai_family;
    address.socktype = info->ai_socktype;
    address.protocol = info->ai_protocol;
  }
  freeaddrinfo(addresses);
  return resolved;
}

absl::StatusOr<ListeningSockets> ListenOnEveryAddress(const std::string& host,
                                                      int port, int backlog) {
  absl::StatusOr<std::vector<ListenAddress>> addresses =
      ResolveListenAddresses(host, port);
  if (!addresses.ok()) return addresses.status();
  ListeningSockets sockets;
  sockets.port = port;
  for (const ListenAddress& address : *addresses) {
    const int fd = ListenOn(address, sockets.port, backlog);
    if (fd < 0) {
      const int error = errno;
      for (int open : sockets.fds) close(open);
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on ", host, ":", port, ": ", std::strerror(error),
          " (the port is in use, or the address is not local)"));
    }
    sockets.fds.push_back(fd);
    if (sockets.port == 0) sockets.port = BoundPort(fd);
  }
  return sockets;
}

}  // namespace slabserve::server
