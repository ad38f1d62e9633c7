#include "server/startup.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "engine/backend/registry.h"
#include "engine/models/registry.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "kernels/cpu/projection.h"
#include "server/chat_template.h"
#include "spdlog/spdlog.h"

namespace slabserve::server {
namespace {

// `status` with `context` before its message, its code kept.
absl::Status Annotated(const absl::Status& status, absl::string_view context) {
  return absl::Status(status.code(),
                      absl::StrCat(context, ": ", status.message()));
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  if (!file) return absl::InvalidArgumentError(path + " cannot be read");
  return text.str();
}

// TLS (optionally mutual) from the config's PEM files, or plaintext.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(
    const ServerConfig& config) {
  if (config.tls_cert_file().empty()) {
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  absl::StatusOr<std::string> cert = ReadWholeFile(config.tls_cert_file());
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadWholeFile(config.tls_key_file());
  if (!key.ok()) return key.status();
  pair.cert_chain = *std::move(cert);
  pair.private_key = *std::move(key);
  grpc::SslServerCredentialsOptions ssl(
      GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!config.tls_client_ca_file().empty()) {
    absl::StatusOr<std::string> roots =
        ReadWholeFile(config.tls_client_ca_file());
    if (!roots.ok()) return roots.status();
    ssl.pem_root_certs = *std::move(roots);
    ssl.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

std::string BaseName(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void LogScheduler(const ServerConfig& config, const ModelInfo& info,
                  const std::string& backend_name,
                  const SchedulerStats& stats) {
  spdlog::info(
      "model {} ({}, {} layers, vocab {}, weights {}) on the {} backend: {} "
      "bytes of state per sequence, {} slots",
      config.model_dir(), info.architecture, info.num_layers, info.vocab_size,
      info.weights_dtype, backend_name, stats.state_bytes_per_sequence,
      stats.slot_capacity);
  if (config.device_weights() == "bf16") {
    spdlog::info("bf16 projections; CPU products on {}",
                 cpu::Bf16IsaName(cpu::BestBf16Isa()));
  }
  if (stats.block_capacity > 0) {
    spdlog::info(
        "per-token state: {} blocks of {} tokens ({} bytes each); {} bytes of "
        "host swap space",
        stats.block_capacity, stats.block_tokens, stats.state_bytes_per_block,
        config.swap_space_bytes());
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> LoadModelFor(
    const ServerConfig& config) {
  // Before the weights load: a missing backend is known at once.
  if (absl::Status s = CheckBackendAvailable(config.backend()); !s.ok()) {
    return Annotated(s, "cannot start the backend");
  }
  LoadOptions options;
  options.weights_file = config.weights_file();
  // Validated with the config: f32 or bf16.
  options.weights = *cpu::ParseWeightPrecision(config.device_weights());
  options.eidetic = {config.eidetic_capacity(), config.eidetic_threshold(),
                     config.eidetic_topk_per_window()};
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadModel(config.model_dir(), options);
  if (!model.ok()) return Annotated(model.status(), "cannot load model");
  return model;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizerFor(
    const ServerConfig& config, const ModelInfo& info) {
  const std::string path = ResolveTokenizerPath(config);
  if (path.empty()) {
    spdlog::warn("no tokenizer: only token-id prompts are accepted");
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Load(path);
  if (!tokenizer.ok()) {
    return Annotated(tokenizer.status(), "cannot load tokenizer");
  }
  if ((*tokenizer)->vocab_size() > info.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer ", path, " has ", (*tokenizer)->vocab_size(),
        " pieces but the model's vocabulary has only ", info.vocab_size));
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<Scheduler>> StartScheduler(
    const ServerConfig& config, Model* model, ServerMetrics* metrics) {
  BackendOptions backend_options;
  backend_options.model_dir = config.model_dir();
  backend_options.weights_file = config.weights_file();
  backend_options.bf16_weights = config.device_weights() == "bf16";
  backend_options.block_tokens = config.block_tokens();
  backend_options.cuda_graph_max_batch = config.cuda_graph_max_batch();
  absl::StatusOr<std::unique_ptr<Backend>> backend = CreateBackend(
      config.backend(), model, static_cast<size_t>(config.state_memory_bytes()),
      backend_options);
  if (!backend.ok()) {
    return Annotated(backend.status(), "cannot start the backend");
  }
  const std::string backend_name = (*backend)->name();
  SchedulerOptions options;
  options.max_waiting_bytes = static_cast<size_t>(config.max_waiting_bytes());
  options.step_token_budget = config.step_token_budget();
  options.max_batch = config.max_batch();
  options.prefix_cache_bytes = static_cast<size_t>(config.prefix_cache_bytes());
  options.max_swap_bytes = static_cast<size_t>(config.swap_space_bytes());
  options.stream_buffer_tokens = config.stream_buffer_tokens();
  options.stream_interval = config.stream_interval();
  options.on_step = [metrics](const StepMetrics& step) {
    metrics->ObserveStep(step);
  };
  absl::StatusOr<std::unique_ptr<Scheduler>> scheduler =
      Scheduler::Create(*std::move(backend), options);
  if (!scheduler.ok()) {
    return Annotated(scheduler.status(), "cannot start the scheduler");
  }
  LogScheduler(config, model->info(), backend_name, (*scheduler)->stats());
  return scheduler;
}

absl::StatusOr<ServiceOptions> ServiceOptionsFor(
    const ServerConfig& config, std::optional<ApiKeys>* api_keys) {
  ServiceOptions options;
  options.model_name = BaseName(config.model_dir());
  options.limits = {config.max_tokens_limit(), config.max_prompt_tokens(),
                    config.max_n()};
  options.stream_stall_timeout = absl::Seconds(config.stream_stall_seconds());
  if (!config.api_keys_file().empty()) {
    absl::StatusOr<ApiKeys> loaded = ApiKeys::Load(config.api_keys_file());
    if (!loaded.ok()) return loaded.status();
    *api_keys = *std::move(loaded);
    options.api_keys = &**api_keys;
    spdlog::info("API keys required ({} accepted)", (*api_keys)->size());
  }
  return options;
}

absl::StatusOr<GrpcEndpoint> StartGrpc(const ServerConfig& config,
                                       SlabserveService* service, bool keyed) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ServerCredentialsFor(config);
  if (!credentials.ok()) return Annotated(credentials.status(), "TLS");
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::string host;
  int port = 0;
  ParseHostPort(config.listen(), &host, &port).IgnoreError();  // validated
  GrpcEndpoint endpoint;
  // Exclusive (no SO_REUSEPORT): a second server cannot share the port.
  absl::StatusOr<std::unique_ptr<GrpcListener>> listener =
      GrpcListener::Listen(host, port);
  if (!listener.ok()) return listener.status();
  endpoint.listener = *std::move(listener);
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             config.max_streams_per_connection());
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor =
      builder.experimental().AddExternalConnectionAcceptor(
          grpc::ServerBuilder::experimental_type::ExternalConnectionType::
              FROM_FD,
          *credentials);
  builder.RegisterService(service);
  endpoint.server = builder.BuildAndStart();
  if (endpoint.server == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot start the gRPC server on ", config.listen()));
  }
  endpoint.listener->Start(std::move(acceptor));
  endpoint.server->GetHealthCheckService()->SetServingStatus(
      v1::Slabserve::service_full_name(), true);
  const bool tls = !config.tls_cert_file().empty();
  spdlog::info(
      "listening on {}:{} ({}{})", host, endpoint.listener->port(),
      tls ? "TLS" : "plaintext",
      config.tls_client_ca_file().empty() ? "" : ", client certificates");
  if (!IsLoopback(host) && !tls && !keyed) {
    spdlog::warn(
        "listening on {} without TLS or API keys: anyone who can reach the "
        "port can use the model (set tls_cert_file/tls_key_file and/or "
        "api_keys_file)",
        host);
  }
  return endpoint;
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> StartMetrics(
    const ServerConfig& config, const ServerMetrics* metrics,
    const Scheduler* scheduler, const std::atomic<bool>* shutting_down) {
  if (config.metrics_listen().empty()) return nullptr;
  std::string host;
  int port = 0;
  ParseHostPort(config.metrics_listen(), &host, &port)
      .IgnoreError();  // checked by ValidateConfig
  MetricsHttpServer::Handlers handlers;
  handlers.metrics = [metrics, scheduler] {
    return metrics->Render(scheduler->stats());
  };
  handlers.healthy = [shutting_down] { return !shutting_down->load(); };
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start(host, port, handlers);
  if (!server.ok()) return server.status();
  spdlog::info("metrics on http://{}:{}/metrics", host, (*server)->port());
  return server;
}

absl::StatusOr<std::unique_ptr<OpenAiServer>> StartOpenAi(
    const ServerConfig& config, Scheduler* scheduler,
    const Tokenizer* tokenizer, ServerMetrics* metrics,
    const ServiceOptions& service_options,
    const std::atomic<bool>* shutting_down) {
  if (config.openai_listen().empty()) return nullptr;
  std::string host;
  int port = 0;
  ParseHostPort(config.openai_listen(), &host, &port)
      .IgnoreError();  // checked by ValidateConfig
  LoadedChatTemplate chat = LoadChatTemplate(config.model_dir());
  spdlog::info("chat template \"{}\" ({})",
               absl::CEscape(chat.chat_template.format()), chat.origin);
  OpenAiServerOptions options;
  options.model_name = service_options.model_name;
  options.request_limits = service_options.limits;
  options.chat_template = chat.chat_template;
  options.api_keys = service_options.api_keys;
  options.http.max_body_bytes =
      static_cast<size_t>(config.openai_max_body_bytes());
  // Whole (unstreamed) answers can take a while to start.
  options.http.idle_timeout_seconds = 120;
  absl::StatusOr<std::unique_ptr<OpenAiServer>> server = OpenAiServer::Start(
      host, port, scheduler, tokenizer, metrics, std::move(options),
      [shutting_down] { return shutting_down->load(); });
  if (!server.ok()) return server.status();
  spdlog::info("OpenAI API on http://{}:{}/v1", host, (*server)->port());
  return server;
}

absl::Status WritePortFile(const std::string& path, int port) {
  if (path.empty()) return absl::OkStatus();
  const std::string temporary = path + ".tmp";
  {
    std::ofstream file(temporary);
    file << port << "\n";
    if (!file) {
      return absl::UnavailableError(
          absl::StrCat("cannot write port file ", temporary));
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot rename ", temporary, " to ", path));
  }
  return absl::OkStatus();
}

void DrainAndStop(const ServerConfig& config, GrpcEndpoint& grpc,
                  SlabserveService* service, Scheduler* scheduler,
                  std::atomic<bool>* shutting_down) {
  *shutting_down = true;  // /healthz and the OpenAI API answer 503 at once
  const absl::Duration grace = absl::Seconds(config.drain_grace_seconds());
  const absl::Duration listen = absl::Seconds(config.drain_listen_seconds());
  grpc.server->GetHealthCheckService()->SetServingStatus(false);
  // With the port kept open, new calls get a clear UNAVAILABLE meanwhile.
  if (listen > absl::ZeroDuration()) service->StartDrain();
  std::thread closer([&] {
    absl::SleepFor(listen);
    grpc.listener->Close();
  });
  if (listen == absl::ZeroDuration()) {
    // The port closes at once; calls on connections accepted just before
    // reach the scheduler within moments, even on a loaded machine.
    absl::SleepFor(absl::Seconds(1));
    service->StartDrain();
  }
  scheduler->Drain(grace);
  closer.join();
  // Handlers write their last chunks after the scheduler is done with them.
  grpc.server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  grpc.server->Wait();
}

}  // namespace slabserve::server
