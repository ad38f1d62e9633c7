// Resolving HOST:PORT for listening and opening listening sockets on it,
// shared by the gRPC listener (its own sockets) and the HTTP server
// (libmicrohttpd opens its socket from the resolved address).
#ifndef SLABSERVE_SERVER_LISTEN_SOCKET_H_
#define SLABSERVE_SERVER_LISTEN_SOCKET_H_

#include <sys/socket.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace slabserve::server {

// One address to listen on, as getaddrinfo resolved it.
struct ListenAddress {
  sockaddr_storage address{};  // with the port asked for
  socklen_t length = 0;
  int family = 0;
  int socktype = 0;
  int protocol = 0;
};

// Every stream address that `host` names, with `port` (host empty: every
// local address; port 0: any free port), in getaddrinfo's order; never
// empty. INVALID_ARGUMENT "cannot listen on HOST:PORT: why" when `host` does
// not resolve.
absl::StatusOr<std::vector<ListenAddress>> ResolveListenAddresses(
    const std::string& host, int port);

// Listening sockets on `host` and `port`, exclusive (no SO_REUSEPORT).
struct ListeningSockets {
  std::vector<int> fds;  // non-blocking, close-on-exec; the caller closes
  int port = 0;          // the port they all listen on
};

// Listens on every address `host` resolves to, with up to `backlog`
// connections queued on each; port 0 picks a free port (the first address's,
// then the same for the rest). "[::]" also takes IPv4 connections.
// INVALID_ARGUMENT when `host` does not resolve; UNAVAILABLE when the port
// is in use or the address is not local (nothing is left open then).
absl::StatusOr<ListeningSockets> ListenOnEveryAddress(const std::string& host,
                                                      int port, int backlog);

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_LISTEN_SOCKET_H_
