// slabserve: serves one model over gRPC (slabserve.v1, grpc.health.v1,
// reflection) with Prometheus metrics on a second port. SIGTERM/SIGINT drain
// in-flight streams, then exit 0.
#include <signal.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kernels/cpu/parallel.h"
#include "server/api_keys.h"
#include "server/config.h"
#include "server/memory_releaser.h"
#include "server/metrics.h"
#include "server/startup.h"
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
ABSL_FLAG(int, stream_interval, -1,
          "decode steps whose tokens a stream sends as one message");
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
  SetIfGiven(FLAGS_stream_interval,
             [&](int v) { config->set_stream_interval(v); });
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

// The config file's fields with the given flags over them, validated.
absl::StatusOr<ServerConfig> ConfigFromFlags() {
  ServerConfig config;
  if (std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    absl::StatusOr<ServerConfig> loaded = LoadConfigFile(path);
    if (!loaded.ok()) return loaded.status();
    config = *std::move(loaded);
  }
  if (absl::Status s = ApplyFlags(&config); !s.ok()) return s;
  if (absl::Status s = ValidateConfig(config); !s.ok()) return s;
  return config;
}

// Blocks until SIGTERM or SIGINT; returns its name.
const char* WaitForShutdownSignal(const sigset_t& signals) {
  int signal_number = 0;
  while (sigwait(&signals, &signal_number) != 0) {
  }
  return signal_number == SIGTERM ? "SIGTERM" : "SIGINT";
}

// Starts every part, serves until a shutdown signal, then drains. Parts
// are declared in start order, so they stop in reverse.
absl::Status Serve(const ServerConfig& config,
                   const sigset_t& shutdown_signals) {
  absl::StatusOr<std::unique_ptr<Model>> model = LoadModelFor(config);
  if (!model.ok()) return model.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      LoadTokenizerFor(config, (*model)->info());
  if (!tokenizer.ok()) return tokenizer.status();
  ServerMetrics metrics;
  absl::StatusOr<std::unique_ptr<Scheduler>> scheduler =
      StartScheduler(config, model->get(), &metrics);
  if (!scheduler.ok()) return scheduler.status();
  std::optional<ApiKeys> api_keys;
  absl::StatusOr<ServiceOptions> service_options =
      ServiceOptionsFor(config, &api_keys);
  if (!service_options.ok()) return service_options.status();
  SlabserveService service(scheduler->get(), tokenizer->get(), &metrics,
                           *service_options);
  absl::StatusOr<GrpcEndpoint> grpc =
      StartGrpc(config, &service, api_keys.has_value());
  if (!grpc.ok()) return grpc.status();
  MemoryReleaser memory_releaser(absl::Seconds(5));

  std::atomic<bool> shutting_down{false};  // set by SIGTERM / SIGINT
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> metrics_server =
      StartMetrics(config, &metrics, scheduler->get(), &shutting_down);
  if (!metrics_server.ok()) return metrics_server.status();
  if (*metrics_server != nullptr) {
    absl::Status written = WritePortFile(absl::GetFlag(FLAGS_metrics_port_file),
                                         (*metrics_server)->port());
    if (!written.ok()) return written;
  }
  absl::StatusOr<std::unique_ptr<OpenAiServer>> openai_server =
      StartOpenAi(config, scheduler->get(), tokenizer->get(), &metrics,
                  *service_options, &shutting_down);
  if (!openai_server.ok()) return openai_server.status();
  if (*openai_server != nullptr) {
    absl::Status written = WritePortFile(absl::GetFlag(FLAGS_openai_port_file),
                                         (*openai_server)->port());
    if (!written.ok()) return written;
  }
  // Last: the gRPC port file says the whole server is up.
  if (absl::Status written =
          WritePortFile(absl::GetFlag(FLAGS_port_file), grpc->listener->port());
      !written.ok()) {
    return written;
  }

  const char* signal_name = WaitForShutdownSignal(shutdown_signals);
  spdlog::info(
      "{}: draining (grace {}, port open {})", signal_name,
      absl::FormatDuration(absl::Seconds(config.drain_grace_seconds())),
      absl::FormatDuration(absl::Seconds(config.drain_listen_seconds())));
  DrainAndStop(config, *grpc, &service, scheduler->get(), &shutting_down);
  openai_server->reset();
  metrics_server->reset();
  spdlog::info("shut down");
  return absl::OkStatus();
}

// The process's exit code: 2 for a bad config or flag, 1 when something
// cannot start.
int Run(const sigset_t& shutdown_signals) {
  absl::StatusOr<ServerConfig> config = ConfigFromFlags();
  if (!config.ok()) {
    spdlog::error("{}", std::string(config.status().message()));
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(config->log_level()));
  if (config->threads() > 0) cpu::SetNumThreads(config->threads());
  if (absl::Status s = Serve(*config, shutdown_signals); !s.ok()) {
    spdlog::error("{}", std::string(s.message()));
    return 1;
  }
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
