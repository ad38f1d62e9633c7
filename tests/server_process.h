// Runs the real slabserve binary as a child process for end-to-end tests:
// loopback only, ports chosen by the OS and read back from --port_file.
#ifndef SLABSERVE_TESTS_SERVER_PROCESS_H_
#define SLABSERVE_TESTS_SERVER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace slabserve::testing {

class ServerProcess {
 public:
  // Starts server/slabserve with `flags` plus loopback listen addresses on
  // port 0 and port files; returns once both ports are known (or the child
  // died, with its log in the error).
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::vector<std::string>& flags);
  // Kills the child if it is still running.
  ~ServerProcess();

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  pid_t pid() const { return pid_; }
  std::string address() const;
  // A channel with a connection of its own: gRPC shares connections between
  // channels to one address unless told not to.
  std::shared_ptr<grpc::Channel> NewChannel() const;

  // The exit code once the child has exited, or nullopt after `timeout`
  // (or when it died from a signal).
  std::optional<int> WaitForExit(absl::Duration timeout);
  // The child's stdout and stderr so far.
  std::string Log() const;

 private:
  ServerProcess(pid_t pid, std::string dir) : pid_(pid), dir_(std::move(dir)) {}

  pid_t pid_;
  const std::string dir_;  // port files and the log
  int port_ = 0;
  int metrics_port_ = 0;
  bool exited_ = false;
};

struct ProcessResult {
  int exit_code = -1;  // -1: killed after the timeout or by a signal
  std::string output;  // stdout and stderr
};

// Runs server/slabserve with exactly `flags` to completion.
ProcessResult RunServerToExit(const std::vector<std::string>& flags,
                              absl::Duration timeout);

// A plain HTTP/1.1 GET on 127.0.0.1:port; returns the whole response
// (status line, headers, body) or an empty string on failure.
std::string HttpGet(int port, const std::string& path);

}  // namespace slabserve::testing

#endif  // SLABSERVE_TESTS_SERVER_PROCESS_H_
