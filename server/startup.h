// The parts slabserve starts, one function each, in the order main starts
// them. Each returns a status whose message says what could not start, and
// logs what it started.
#ifndef SLABSERVE_SERVER_STARTUP_H_
#define SLABSERVE_SERVER_STARTUP_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/io/tokenizer.h"
#include "engine/models/model.h"
#include "engine/scheduler/scheduler.h"
#include "grpcpp/grpcpp.h"
#include "server/api_keys.h"
#include "server/config.h"
#include "server/grpc_listener.h"
#include "server/metrics.h"
#include "server/openai_server.h"
#include "server/service.h"

namespace slabserve::server {

// The model in config.model_dir with the config's weight precision, once
// the configured backend is known to exist in this build.
absl::StatusOr<std::unique_ptr<Model>> LoadModelFor(const ServerConfig& config);

// The configured tokenizer (or the model directory's), null when there is
// none; its pieces must fit the model's vocabulary.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizerFor(
    const ServerConfig& config, const ModelInfo& info);

// The configured backend over `model` (not owned, outlives the scheduler),
// and the scheduler stepping it, reporting each step to `metrics`.
absl::StatusOr<std::unique_ptr<Scheduler>> StartScheduler(
    const ServerConfig& config, Model* model, ServerMetrics* metrics);

// The service's limits, model name and stall timeout; the API keys, when
// configured, are loaded into `api_keys`, which the options point into.
absl::StatusOr<ServiceOptions> ServiceOptionsFor(
    const ServerConfig& config, std::optional<ApiKeys>* api_keys);

struct GrpcEndpoint {
  std::unique_ptr<GrpcListener> listener;
  std::unique_ptr<grpc::Server> server;
};

// `service` with health checks and reflection on config.listen (TLS when
// configured), marked serving. `keyed`: whether API keys are required (only
// for the warning about an open port).
absl::StatusOr<GrpcEndpoint> StartGrpc(const ServerConfig& config,
                                       SlabserveService* service, bool keyed);

// Prometheus metrics and /healthz on config.metrics_listen; null when that
// is empty.
absl::StatusOr<std::unique_ptr<MetricsHttpServer>> StartMetrics(
    const ServerConfig& config, const ServerMetrics* metrics,
    const Scheduler* scheduler, const std::atomic<bool>* shutting_down);

// The OpenAI-compatible API on config.openai_listen with the gRPC service's
// limits and keys and the model's chat template; null when that is empty.
absl::StatusOr<std::unique_ptr<OpenAiServer>> StartOpenAi(
    const ServerConfig& config, Scheduler* scheduler,
    const Tokenizer* tokenizer, ServerMetrics* metrics,
    const ServiceOptions& service_options,
    const std::atomic<bool>* shutting_down);

// Writes `port` to `path` (nothing when it is empty) under a temporary name
// and renames it, so readers never see a partial file.
absl::Status WritePortFile(const std::string& path, int port);

// Readiness goes NOT_SERVING first, so health-checking balancers stop
// sending work; after config.drain_listen_seconds the port closes (new
// connections are refused) while in-flight streams run on for
// config.drain_grace_seconds. Calls on connections accepted before the port
// closed are served. grpc::Server::Shutdown (GOAWAY, then waiting for the
// last chunks) comes only when the scheduler is done: in gRPC 1.51 it
// cancels calls that arrived but were not yet matched to a handler, which a
// gateway could no longer send elsewhere.
void DrainAndStop(const ServerConfig& config, GrpcEndpoint& grpc,
                  SlabserveService* service, Scheduler* scheduler,
                  std::atomic<bool>* shutting_down);

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_STARTUP_H_
