// C++ client for the slabserve gRPC API (slabserve.v1 + grpc.health.v1).
//
// Blocking calls for tools (slabctl) and an asynchronous streaming Generate
// for load generators that keep thousands of streams in flight. The async
// path uses gRPC's callback API: no thread per stream, callbacks run on
// gRPC's own threads and must not block.
#ifndef SLABSERVE_CLIENTS_CPP_CLIENT_H_
#define SLABSERVE_CLIENTS_CPP_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "slabserve/v1/slabserve.grpc.pb.h"

namespace slabserve {

struct ConnectOptions {
  // Separate HTTP/2 connections to spread many streams over; async calls use
  // them round-robin. One is enough for tools.
  int channels = 1;
  // TLS (PEM text, not paths). An empty root set trusts the system's CAs; a
  // certificate chain and key, when the server asks for one (mutual TLS).
  bool tls = false;
  std::string tls_root_certs;
  std::string tls_cert_chain;
  std::string tls_private_key;
  // Sent as "authorization: Bearer KEY" with every call when not empty.
  std::string api_key;
};

// Command-line security settings of the tools: file paths, read by
// LoadConnectSecurity. The API key comes from a file (or the
// SLABSERVE_API_KEY environment variable), never from a flag's value, which
// any user of the machine could read in the process list.
struct SecurityFiles {
  bool tls = false;  // implied by any TLS file
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string api_key_file;
};

// Fills `options`' TLS and API key fields; false with `error` naming the
// file that could not be used.
bool LoadConnectSecurity(const SecurityFiles& files, ConnectOptions* options,
                         std::string* error);

struct CallOptions {
  // Absolute deadline; unset means none.
  std::optional<std::chrono::system_clock::time_point> deadline;

  // Convenience: a deadline `seconds` from now (ignored when <= 0).
  static CallOptions WithTimeout(double seconds);
};

// Called for every chunk of a blocking Generate; return false to cancel the
// stream (Generate then returns CANCELLED).
using ChunkCallback = std::function<bool(const v1::GenerateChunk&)>;

// Callbacks of one asynchronous Generate. Both run on gRPC threads; on_done
// runs exactly once, last, with the final status of the stream.
struct StreamCallbacks {
  std::function<void(const v1::GenerateChunk&)> on_chunk;
  std::function<void(const grpc::Status&)> on_done;
};

// Handle of one asynchronous Generate. Keeps the call's state alive, so
// Cancel() is safe at any time, also after the stream has finished.
class GenerateStream {
 public:
  virtual ~GenerateStream() = default;
  // Asks the server to stop; on_done then reports CANCELLED (unless the
  // stream had already finished).
  virtual void Cancel() = 0;
};

class Client {
 public:
  // Creates the channel(s); no I/O happens until the first call, so an
  // unreachable server shows up as UNAVAILABLE on that call (use Health or
  // WaitForReady to probe).
  static std::unique_ptr<Client> Connect(const std::string& target,
                                         const ConnectOptions& options = {});

  // Waits until the first channel is connected or the deadline passes.
  bool WaitForReady(std::chrono::system_clock::time_point deadline);

  // Streams one generation, calling on_chunk for each chunk as it arrives.
  // Here and in GenerateAsync, a stream that a proxy resets because its
  // server went away ends UNAVAILABLE (gRPC itself says INTERNAL).
  grpc::Status Generate(const v1::GenerateRequest& request,
                        const ChunkCallback& on_chunk,
                        const CallOptions& options = {});

  // Starts a stream and returns at once. Callbacks must not block.
  std::shared_ptr<GenerateStream> GenerateAsync(
      const v1::GenerateRequest& request, StreamCallbacks callbacks,
      const CallOptions& options = {});

  grpc::Status Tokenize(const v1::TokenizeRequest& request,
                        v1::TokenizeResponse* response,
                        const CallOptions& options = {});
  grpc::Status Detokenize(const v1::DetokenizeRequest& request,
                          v1::DetokenizeResponse* response,
                          const CallOptions& options = {});
  grpc::Status Info(v1::ModelInfo* info, const CallOptions& options = {});

  // grpc.health.v1.Health/Check; `service` empty asks about the server as a
  // whole.
  grpc::Status Health(
      grpc::health::v1::HealthCheckResponse::ServingStatus* status,
      const std::string& service = "", const CallOptions& options = {});

  const std::string& target() const { return target_; }

 private:
  struct Channel {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::Slabserve::Stub> stub;
  };

 public:
  // Counts asynchronous streams still running, so that ~Client can wait for
  // them: their callbacks must not run after the client is gone.
  class StreamTracker {
   public:
    void Add();
    void Done();
    void WaitForNone();

   private:
    std::mutex mu_;
    std::condition_variable none_;
    int running_ = 0;
  };

  // Returns once every asynchronous stream has reported on_done.
  ~Client();

 private:
  Client(std::string target, std::vector<Channel> channels,
         std::string api_key);
  v1::Slabserve::Stub* NextStub();

  std::string target_;
  std::vector<Channel> channels_;
  const std::string api_key_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_stub_;
  std::atomic<size_t> next_channel_{0};
  std::shared_ptr<StreamTracker> streams_ = std::make_shared<StreamTracker>();
};

// Name of a ServingStatus ("SERVING", "NOT_SERVING", ...).
std::string ServingStatusName(
    grpc::health::v1::HealthCheckResponse::ServingStatus status);

// Name of a gRPC status code ("UNAVAILABLE", "DEADLINE_EXCEEDED", ...).
std::string StatusCodeName(grpc::StatusCode code);

}  // namespace slabserve

#endif  // SLABSERVE_CLIENTS_CPP_CLIENT_H_
