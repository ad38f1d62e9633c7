// The gRPC port's listening sockets, owned here instead of by gRPC, so that a
// drain can close the port (new connections are refused) and still serve
// every call that arrives on connections already accepted: gRPC 1.51 closes
// its own listeners only in grpc::Server::Shutdown, which also cancels calls
// that reached the server but were not yet matched to a handler. Accepted
// connections are handed to the server through an ExternalConnectionAcceptor.
#ifndef SLABSERVE_SERVER_GRPC_LISTENER_H_
#define SLABSERVE_SERVER_GRPC_LISTENER_H_

#include <grpcpp/server_builder.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace slabserve::server {

class GrpcListener {
 public:
  // Listens on every address HOST resolves to, on PORT (0: a free port,
  // the same for all), exclusively: no SO_REUSEPORT, so a second server
  // cannot share the port. UNAVAILABLE when the port is in use.
  static absl::StatusOr<std::unique_ptr<GrpcListener>> Listen(
      const std::string& host, int port);
  ~GrpcListener();
  GrpcListener(const GrpcListener&) = delete;
  GrpcListener& operator=(const GrpcListener&) = delete;

  int port() const { return port_; }

  // Hands each accepted connection to `acceptor`, from a thread of its own;
  // call once, after the server has started (connections wait in the
  // kernel's queue until then).
  void Start(
      std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor);

  // Closes the port without losing a connection whose handshake completed:
  // new handshakes are held off, what is queued is accepted (accepted
  // connections carry on), then the port closes and clients retrying a
  // held-off handshake are refused. Takes a fraction of a second.
  // Idempotent; the destructor calls it.
  void Close();

 private:
  GrpcListener() = default;
  void AcceptLoop();
  // Accepts what is queued on `listener` and hands it over.
  void AcceptAll(int listener);

  std::vector<int> listeners_;
  int wake_fd_ = -1;  // eventfd that ends AcceptLoop
  int port_ = 0;
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  std::thread thread_;
};

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_GRPC_LISTENER_H_
