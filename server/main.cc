// slabserve: serves one model over gRPC (slabserve.v1, grpc.health.v1,
// reflection) with Prometheus metrics on a second port. SIGTERM/SIGINT drain
// in-flight streams, then exit 0.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/backend/registry.h"
#include "engine/io/tokenizer.h"
#include "engine/models/registry.h"
#include "engine/scheduler/scheduler.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/projection.h"
#include "server/api_keys.h"
#include "server/chat_template.h"
#include "server/config.h"
#include "server/grpc_listener.h"
#include "server/memory_releaser.h"
#include "server/metrics.h"
#include "server/openai_server.h"
#include "server/service.h"
#include "spdlog/spdlog.h"

// Empty strings and -1 mean "not given": the config file's value (or its
// default) stays.
ABSL_FLAG(std::string, config, "", "ServerConfig text-format file");
ABSL_FLAG(std::string, model, "", "model directory (overrides model_dir)");
ABSL_FLAG(std::string, weights_file, "", "weights file inside the model dir");
ABSL_FLAG(std::string, tokenizer, "",
          "SentencePiece model (default: MODEL/tokenizer.model if present)");
ABSL_FLAG(std::string, listen, "", "gRPC HOST:PORT (port 0: any free port)");
ABSL_FLAG(std::string, metrics_listen, "",
          "metrics HOST:PORT (port 0: any free port; \"none\" disables)");
ABSL_FLAG(std::string, openai_listen, "",
          "OpenAI-compatible HTTP API HOST:PORT (port 0: any free port)");
ABSL_FLAG(std::string, openai_max_body, "",
          "largest OpenAI API request body, e.g. 4MiB (larger: 413)");
ABSL_FLAG(std::string, openai_port_file, "",
          "write the bound OpenAI API port to this file once serving");
ABSL_FLAG(std::string, backend, "", "where the model runs: cpu, cuda or auto");
ABSL_FLAG(std::string, device_weights, "",
          "projection weights: f32, or bf16 (bf16 weights and activations, "
          "f32 sums and state) on either backend");
ABSL_FLAG(std::string, state_memory, "",
          "state memory budget, e.g. 512MiB or 2GiB");
ABSL_FLAG(std::string, max_waiting_memory, "",
          "bytes queued requests may hold, e.g. 64MiB");
ABSL_FLAG(int, step_token_budget, -1, "prompt + decode tokens per step");
ABSL_FLAG(int, max_batch, -1, "sequences per step");
ABSL_FLAG(std::string, prefix_cache, "", "prefix cache size, e.g. 64MiB");
ABSL_FLAG(int, cuda_graph_max_batch, -1,
          "largest decode batch run as a CUDA graph on the cuda backend; 0 "
          "turns graphs off");
ABSL_FLAG(int, block_tokens, -1,
          "tokens per block of per-token state (0: the model's default)");
ABSL_FLAG(std::string, swap_space, "",
          "host memory for preempted sequences' state, e.g. 4GiB");
ABSL_FLAG(int, eidetic_capacity, -1,
          "hybrid_qwen3: eidetic memory entries per B'MOJO layer (0: off)");
ABSL_FLAG(double, eidetic_threshold, -1,
          "hybrid_qwen3: innovation score a token needs to be kept, in [0, 1]");
ABSL_FLAG(int, eidetic_topk_per_window, -1,
          "hybrid_qwen3: most tokens kept per window (0: no cap)");
ABSL_FLAG(int, threads, -1, "compute threads (0: one per hardware thread)");
ABSL_FLAG(std::string, log_level, "", "trace|debug|info|warn|error|off");
ABSL_FLAG(int, max_tokens_limit, -1, "largest max_tokens a request may ask");
ABSL_FLAG(int, max_prompt_tokens, -1, "longest prompt accepted, in tokens");
ABSL_FLAG(int, stream_buffer_tokens, -1,
          "tokens buffered per request before it pauses for its client");
ABSL_FLAG(double, stream_stall_seconds, -1,
          "cancel a stream whose client leaves a reply unread this long "
          "(0: never)");
ABSL_FLAG(int, max_streams_per_connection, -1,
          "concurrent streams per HTTP/2 connection");
ABSL_FLAG(double, drain_grace_seconds, -1,
          "time in-flight streams get to finish on SIGTERM");
ABSL_FLAG(double, drain_listen_seconds, -1,
          "on SIGTERM, keep accepting connections (answering NOT_SERVING) "
          "this long before closing the port");
ABSL_FLAG(int, max_n, -1, "largest n (completions per request)");
ABSL_FLAG(std::string, tls_cert_file, "", "server certificate chain (PEM)");
ABSL_FLAG(std::string, tls_key_file, "", "server private key (PEM)");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "require client certificates from these CAs (PEM): mutual TLS");
ABSL_FLAG(std::string, api_keys_file, "",
          "require one of the API keys in this file (one a line)");
ABSL_FLAG(std::string, port_file, "",
          "write the bound gRPC port to this file once serving");
ABSL_FLAG(std::string, metrics_port_file, "",
          "write the bound metrics port to this file once serving");

namespace slabserve::server {
namespace {

// Hands a flag's value to `set` when it was given: not empty, or not -1.
template <typename Setter>
void SetIfGiven(const absl::Flag<std::string>& flag, Setter set) {
  std::string value = absl::GetFlag(flag);
  if (!value.empty()) set(value);
}
template <typename T, typename Setter>
void SetIfGiven(const absl::Flag<T>& flag, Setter set) {
  T value = absl::GetFlag(flag);
  if (value != -1) set(value);
}

// Where the model comes from and how it runs.
void ApplyModelFlags(ServerConfig* config) {
  SetIfGiven(FLAGS_model, [&](auto v) { config->set_model_dir(v); });
  SetIfGiven(FLAGS_weights_file, [&](auto v) { config->set_weights_file(v); });
  SetIfGiven(FLAGS_tokenizer, [&](auto v) { config->set_tokenizer_path(v); });
  SetIfGiven(FLAGS_backend, [&](auto v) { config->set_backend(v); });
  SetIfGiven(FLAGS_device_weights,
             [&](auto v) { config->set_device_weights(v); });
  SetIfGiven(FLAGS_block_tokens, [&](int v) { config->set_block_tokens(v); });
  SetIfGiven(FLAGS_cuda_graph_max_batch,
             [&](int v) { config->set_cuda_graph_max_batch(v); });
  SetIfGiven(FLAGS_threads, [&](int v) { config->set_threads(v); });
  SetIfGiven(FLAGS_eidetic_capacity,
             [&](int v) { config->set_eidetic_capacity(v); });
  SetIfGiven(FLAGS_eidetic_topk_per_window,
             [&](int v) { config->set_eidetic_topk_per_window(v); });
  SetIfGiven(FLAGS_eidetic_threshold,
             [&](double v) { config->set_eidetic_threshold(v); });
}

// The ports, who may use them, and how they close on SIGTERM.
void ApplyEndpointFlags(ServerConfig* config) {
  SetIfGiven(FLAGS_listen, [&](auto v) { config->set_listen(v); });
  SetIfGiven(FLAGS_metrics_listen,
             [&](auto v) { config->set_metrics_listen(v == "none" ? "" : v); });
  SetIfGiven(FLAGS_openai_listen,
             [&](auto v) { config->set_openai_listen(v); });
  SetIfGiven(FLAGS_tls_cert_file,
             [&](auto v) { config->set_tls_cert_file(v); });
  SetIfGiven(FLAGS_tls_key_file, [&](auto v) { config->set_tls_key_file(v); });
  SetIfGiven(FLAGS_tls_client_ca_file,
             [&](auto v) { config->set_tls_client_ca_file(v); });
  SetIfGiven(FLAGS_api_keys_file,
             [&](auto v) { config->set_api_keys_file(v); });
  SetIfGiven(FLAGS_max_streams_per_connection,
             [&](int v) { config->set_max_streams_per_connection(v); });
  SetIfGiven(FLAGS_drain_grace_seconds,
             [&](double v) { config->set_drain_grace_seconds(v); });
  SetIfGiven(FLAGS_drain_listen_seconds,
             [&](double v) { config->set_drain_listen_seconds(v); });
}

// How much work a step and a request may take, and how streams are paced.
void ApplyRequestLimitFlags(ServerConfig* config) {
  SetIfGiven(FLAGS_step_token_budget,
             [&](int v) { config->set_step_token_budget(v); });
  SetIfGiven(FLAGS_max_batch, [&](int v) { config->set_max_batch(v); });
  SetIfGiven(FLAGS_max_tokens_limit,
             [&](int v) { config->set_max_tokens_limit(v); });
  SetIfGiven(FLAGS_max_n, [&](int v) { config->set_max_n(v); });
  SetIfGiven(FLAGS_max_prompt_tokens,
             [&](int v) { config->set_max_prompt_tokens(v); });
  SetIfGiven(FLAGS_stream_buffer_tokens,
             [&](int v) { config->set_stream_buffer_tokens(v); });
  SetIfGiven(FLAGS_stream_stall_seconds,
             [&](double v) { config->set_stream_stall_seconds(v); });
}

// Memory sizes such as "512MiB"; INVALID_ARGUMENT naming the flag when one
// does not parse.
absl::Status ApplyByteSizeFlags(ServerConfig* config) {
  struct ByteSizeFlag {
    const absl::Flag<std::string>* flag;
    const char* name;
    void (ServerConfig::*setter)(int64_t);
  };
  for (const ByteSizeFlag& size_flag : {
           ByteSizeFlag{&FLAGS_state_memory, "state_memory",
                        &ServerConfig::set_state_memory_bytes},
           ByteSizeFlag{&FLAGS_prefix_cache, "prefix_cache",
                        &ServerConfig::set_prefix_cache_bytes},
           ByteSizeFlag{&FLAGS_swap_space, "swap_space",
                        &ServerConfig::set_swap_space_bytes},
           ByteSizeFlag{&FLAGS_max_waiting_memory, "max_waiting_memory",
                        &ServerConfig::set_max_waiting_bytes},
           ByteSizeFlag{&FLAGS_openai_max_body, "openai_max_body",
                        &ServerConfig::set_openai_max_body_bytes},
       }) {
    std::string value = absl::GetFlag(*size_flag.flag);
    if (value.empty()) continue;
    absl::StatusOr<int64_t> bytes = ParseByteSize(value);
    if (!bytes.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", size_flag.name, ": ", bytes.status().message()));
    }
    (config->*size_flag.setter)(*bytes);
  }
  return absl::OkStatus();
}

// Overrides the config's fields with the flags that were given.
absl::Status ApplyFlags(ServerConfig* config) {
  SetIfGiven(FLAGS_log_level, [&](auto v) { config->set_log_level(v); });
  ApplyModelFlags(config);
  ApplyEndpointFlags(config);
  ApplyRequestLimitFlags(config);
  return ApplyByteSizeFlags(config);
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

absl::Status WritePortFile(const std::string& path, int port) {
  // Written under a temporary name and renamed, so readers never see a
  // partial file.
  std::string temporary = path + ".tmp";
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

std::string BaseName(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The OpenAI-compatible API on config.openai_listen, with the gRPC
// service's limits and keys and the model's chat template; writes
// --openai_port_file when given.
absl::StatusOr<std::unique_ptr<OpenAiServer>> StartOpenAi(
    const ServerConfig& config, Scheduler* scheduler,
    const Tokenizer* tokenizer, ServerMetrics* metrics,
    const ServiceOptions& service_options, std::function<bool()> draining) {
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
  absl::StatusOr<std::unique_ptr<OpenAiServer>> server =
      OpenAiServer::Start(host, port, scheduler, tokenizer, metrics,
                          std::move(options), std::move(draining));
  if (!server.ok()) return server.status();
  spdlog::info("OpenAI API on http://{}:{}/v1", host, (*server)->port());
  if (std::string path = absl::GetFlag(FLAGS_openai_port_file); !path.empty()) {
    if (absl::Status s = WritePortFile(path, (*server)->port()); !s.ok()) {
      return s;
    }
  }
  return server;
}

// Readiness goes NOT_SERVING first, so health-checking balancers stop
// sending work; after `listen` the port closes (new connections are refused)
// while in-flight streams run on for `grace`. Calls on connections accepted
// before the port closed are served. grpc::Server::Shutdown (GOAWAY, then
// waiting for the last chunks) comes only when the scheduler is done: in
// gRPC 1.51 it cancels calls that arrived but were not yet matched to a
// handler, which a gateway could no longer send elsewhere.
void DrainAndStop(const ServerConfig& config, grpc::Server* server,
                  GrpcListener* listener, SlabserveService* service,
                  Scheduler* scheduler, std::atomic<bool>* shutting_down) {
  *shutting_down = true;  // /healthz and the OpenAI API answer 503 at once
  const absl::Duration grace = absl::Seconds(config.drain_grace_seconds());
  const absl::Duration listen = absl::Seconds(config.drain_listen_seconds());
  server->GetHealthCheckService()->SetServingStatus(false);
  // With the port kept open, new calls get a clear UNAVAILABLE meanwhile.
  if (listen > absl::ZeroDuration()) service->StartDrain();
  std::thread closer([&] {
    absl::SleepFor(listen);
    listener->Close();
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
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  server->Wait();
}

// Blocks until SIGTERM or SIGINT; returns its name.
const char* WaitForShutdownSignal(const sigset_t& signals) {
  int signal_number = 0;
  while (sigwait(&signals, &signal_number) != 0) {
  }
  return signal_number == SIGTERM ? "SIGTERM" : "SIGINT";
}

int Run(const sigset_t& shutdown_signals) {
  ServerConfig config;
  if (std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    absl::StatusOr<ServerConfig> loaded = LoadConfigFile(path);
    if (!loaded.ok()) {
      spdlog::error("{}", std::string(loaded.status().message()));
      return 2;
    }
    config = *std::move(loaded);
  }
  if (absl::Status s = ApplyFlags(&config); !s.ok()) {
    spdlog::error("{}", std::string(s.message()));
    return 2;
  }
  if (absl::Status s = ValidateConfig(config); !s.ok()) {
    spdlog::error("{}", std::string(s.message()));
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(config.log_level()));
  if (config.threads() > 0) cpu::SetNumThreads(config.threads());

  // Before the weights load: a missing backend is known at once.
  if (absl::Status s = CheckBackendAvailable(config.backend()); !s.ok()) {
    spdlog::error("cannot start the backend: {}", std::string(s.message()));
    return 1;
  }
  LoadOptions load_options;
  load_options.weights_file = config.weights_file();
  // Validated with the config: f32 or bf16.
  load_options.weights = *cpu::ParseWeightPrecision(config.device_weights());
  load_options.eidetic = {config.eidetic_capacity(), config.eidetic_threshold(),
                          config.eidetic_topk_per_window()};
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadModel(config.model_dir(), load_options);
  if (!model.ok()) {
    spdlog::error("cannot load model: {}",
                  std::string(model.status().message()));
    return 1;
  }
  const ModelInfo& info = (*model)->info();
  std::unique_ptr<Tokenizer> tokenizer;
  if (std::string path = ResolveTokenizerPath(config); !path.empty()) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> loaded = Tokenizer::Load(path);
    if (!loaded.ok()) {
      spdlog::error("cannot load tokenizer: {}",
                    std::string(loaded.status().message()));
      return 1;
    }
    if ((*loaded)->vocab_size() > info.vocab_size) {
      spdlog::error(
          "tokenizer {} has {} pieces but the model's vocabulary "
          "has only {}",
          path, (*loaded)->vocab_size(), info.vocab_size);
      return 1;
    }
    tokenizer = *std::move(loaded);
  } else {
    spdlog::warn("no tokenizer: only token-id prompts are accepted");
  }

  ServerMetrics metrics;
  SchedulerOptions options;
  options.max_waiting_bytes = static_cast<size_t>(config.max_waiting_bytes());
  options.step_token_budget = config.step_token_budget();
  options.max_batch = config.max_batch();
  options.prefix_cache_bytes = static_cast<size_t>(config.prefix_cache_bytes());
  options.max_swap_bytes = static_cast<size_t>(config.swap_space_bytes());
  options.stream_buffer_tokens = config.stream_buffer_tokens();
  options.on_step = [&metrics](const StepMetrics& step) {
    metrics.ObserveStep(step);
  };
  BackendOptions backend_options;
  backend_options.model_dir = config.model_dir();
  backend_options.weights_file = config.weights_file();
  backend_options.bf16_weights = config.device_weights() == "bf16";
  backend_options.block_tokens = config.block_tokens();
  backend_options.cuda_graph_max_batch = config.cuda_graph_max_batch();
  absl::StatusOr<std::unique_ptr<Backend>> backend = CreateBackend(
      config.backend(), model->get(),
      static_cast<size_t>(config.state_memory_bytes()), backend_options);
  if (!backend.ok()) {
    spdlog::error("cannot start the backend: {}",
                  std::string(backend.status().message()));
    return 1;
  }
  const std::string backend_name = (*backend)->name();
  absl::StatusOr<std::unique_ptr<Scheduler>> scheduler =
      Scheduler::Create(*std::move(backend), options);
  if (!scheduler.ok()) {
    spdlog::error("cannot start the scheduler: {}",
                  std::string(scheduler.status().message()));
    return 1;
  }
  SchedulerStats stats = (*scheduler)->stats();
  spdlog::info(
      "model {} ({}, {} layers, vocab {}, weights {}) on the {} backend: {} "
      "bytes of state per sequence, {} slots",
      config.model_dir(), info.architecture, info.num_layers, info.vocab_size,
      info.weights_dtype, backend_name, stats.state_bytes_per_sequence,
      stats.slot_capacity);
  if (load_options.weights == cpu::WeightPrecision::kBf16) {
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

  ServiceOptions service_options;
  service_options.model_name = BaseName(config.model_dir());
  service_options.limits = {config.max_tokens_limit(),
                            config.max_prompt_tokens(), config.max_n()};
  service_options.stream_stall_timeout =
      absl::Seconds(config.stream_stall_seconds());
  std::optional<ApiKeys> api_keys;
  if (!config.api_keys_file().empty()) {
    absl::StatusOr<ApiKeys> loaded = ApiKeys::Load(config.api_keys_file());
    if (!loaded.ok()) {
      spdlog::error("{}", std::string(loaded.status().message()));
      return 1;
    }
    api_keys = *std::move(loaded);
    service_options.api_keys = &*api_keys;
    spdlog::info("API keys required ({} accepted)", api_keys->size());
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ServerCredentialsFor(config);
  if (!credentials.ok()) {
    spdlog::error("TLS: {}", std::string(credentials.status().message()));
    return 1;
  }
  SlabserveService service(scheduler->get(), tokenizer.get(), &metrics,
                           service_options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::string host;
  int port = 0;
  ParseHostPort(config.listen(), &host, &port).IgnoreError();  // validated
  // Exclusive (no SO_REUSEPORT): a second server cannot share the port.
  absl::StatusOr<std::unique_ptr<GrpcListener>> listener =
      GrpcListener::Listen(host, port);
  if (!listener.ok()) {
    spdlog::error("{}", std::string(listener.status().message()));
    return 1;
  }
  const int grpc_port = (*listener)->port();
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             config.max_streams_per_connection());
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor =
      builder.experimental().AddExternalConnectionAcceptor(
          grpc::ServerBuilder::experimental_type::ExternalConnectionType::
              FROM_FD,
          *credentials);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    spdlog::error("cannot start the gRPC server on {}", config.listen());
    return 1;
  }
  (*listener)->Start(std::move(acceptor));
  server->GetHealthCheckService()->SetServingStatus(
      v1::Slabserve::service_full_name(), true);
  MemoryReleaser memory_releaser(absl::Seconds(5));
  const bool tls = !config.tls_cert_file().empty();
  spdlog::info(
      "listening on {}:{} ({}{})", host, grpc_port, tls ? "TLS" : "plaintext",
      config.tls_client_ca_file().empty() ? "" : ", client certificates");
  if (!IsLoopback(host) && !tls && !api_keys.has_value()) {
    spdlog::warn(
        "listening on {} without TLS or API keys: anyone who can reach the "
        "port can use the model (set tls_cert_file/tls_key_file and/or "
        "api_keys_file)",
        host);
  }

  std::atomic<bool> shutting_down{false};  // set by SIGTERM / SIGINT
  std::unique_ptr<MetricsHttpServer> metrics_server;
  if (!config.metrics_listen().empty()) {
    std::string metrics_host;
    int metrics_port = 0;
    ParseHostPort(config.metrics_listen(), &metrics_host, &metrics_port)
        .IgnoreError();  // checked by ValidateConfig
    MetricsHttpServer::Handlers handlers;
    handlers.metrics = [&] { return metrics.Render((*scheduler)->stats()); };
    handlers.healthy = [&] { return !shutting_down; };
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> started =
        MetricsHttpServer::Start(metrics_host, metrics_port, handlers);
    if (!started.ok()) {
      spdlog::error("{}", std::string(started.status().message()));
      return 1;
    }
    metrics_server = *std::move(started);
    spdlog::info("metrics on http://{}:{}/metrics", metrics_host,
                 metrics_server->port());
    if (std::string path = absl::GetFlag(FLAGS_metrics_port_file);
        !path.empty()) {
      if (absl::Status s = WritePortFile(path, metrics_server->port());
          !s.ok()) {
        spdlog::error("{}", std::string(s.message()));
        return 1;
      }
    }
  }
  std::unique_ptr<OpenAiServer> openai_server;
  if (!config.openai_listen().empty()) {
    absl::StatusOr<std::unique_ptr<OpenAiServer>> started =
        StartOpenAi(config, scheduler->get(), tokenizer.get(), &metrics,
                    service_options, [&] { return shutting_down.load(); });
    if (!started.ok()) {
      spdlog::error("{}", std::string(started.status().message()));
      return 1;
    }
    openai_server = *std::move(started);
  }
  if (std::string path = absl::GetFlag(FLAGS_port_file); !path.empty()) {
    if (absl::Status s = WritePortFile(path, grpc_port); !s.ok()) {
      spdlog::error("{}", std::string(s.message()));
      return 1;
    }
  }

  const char* signal_name = WaitForShutdownSignal(shutdown_signals);
  spdlog::info(
      "{}: draining (grace {}, port open {})", signal_name,
      absl::FormatDuration(absl::Seconds(config.drain_grace_seconds())),
      absl::FormatDuration(absl::Seconds(config.drain_listen_seconds())));
  DrainAndStop(config, server.get(), listener->get(), &service,
               scheduler->get(), &shutting_down);
  openai_server.reset();
  metrics_server.reset();
  spdlog::info("shut down");
  return 0;
}

}  // namespace
}  // namespace slabserve::server

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "slabserve --model=DIR [--listen=HOST:PORT] [--metrics_listen=HOST:PORT]"
      " [--config=FILE] ...");
  absl::ParseCommandLine(argc, argv);
#ifdef NDEBUG
  // Debian's Abseil is built with its deadlock detector on, which keeps a
  // graph of every Mutex acquisition (about 1% of a loaded server's time
  // here); an optimised build takes Abseil's own optimised default and
  // leaves detection to the sanitizer builds and the unit tests.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  // Blocked before any thread starts, so every thread inherits the mask and
  // only the sigwait in Run sees these signals.
  sigset_t shutdown_signals;
  sigemptyset(&shutdown_signals);
  sigaddset(&shutdown_signals, SIGTERM);
  sigaddset(&shutdown_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &shutdown_signals, nullptr);
  return slabserve::server::Run(shutdown_signals);
}
