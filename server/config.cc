#include "server/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/backend/registry.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace slabserve::server {
namespace {

// Collects text-format parse errors instead of printing them to stderr.
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first_error_.empty()) {
      // The parser counts lines and columns from 0.
      first_error_ = absl::StrCat("line ", line + 1, ", column ", column + 1,
                                  ": ", message);
    }
  }
  const std::string& first_error() const { return first_error_; }

 private:
  std::string first_error_;
};

bool FileExists(const std::string& path) {
  std::ifstream file(path);
  return file.good();
}

// Says what is wrong with a model directory, the way a person would look.
absl::Status CheckModelDir(const std::string& dir) {
  const std::string quoted = absl::StrCat("model_dir \"", dir, "\" ");
  struct stat info;
  if (stat(dir.c_str(), &info) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        quoted, errno == ENOENT ? "does not exist" : "cannot be examined: ",
        errno == ENOENT ? "" : std::strerror(errno)));
  }
  if (!S_ISDIR(info.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(quoted, "is not a directory"));
  }
  if (access(dir.c_str(), R_OK | X_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(quoted, "cannot be read: ", std::strerror(errno)));
  }
  const std::string config = dir + "/config.json";
  if (stat(config.c_str(), &info) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(quoted, "has no config.json"));
  }
  if (!FileExists(config)) {
    return absl::InvalidArgumentError(
        absl::StrCat(quoted, "has a config.json that cannot be read"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerConfig> ParseConfigText(const std::string& text,
                                             const std::string& source) {
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  ServerConfig config;
  if (!parser.ParseFromString(text, &config)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config ", source, ": ", errors.first_error()));
  }
  return config;
}

absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    return absl::NotFoundError(
        absl::StrCat("config file ", path, " cannot be opened"));
  }
  std::stringstream text;
  text << file.rdbuf();
  return ParseConfigText(text.str(), path);
}

absl::StatusOr<int64_t> ParseByteSize(const std::string& text) {
  std::string s(absl::StripAsciiWhitespace(text));
  size_t digits = 0;
  while (digits < s.size() && absl::ascii_isdigit(s[digits])) ++digits;
  int64_t value = 0;
  if (digits == 0 || !absl::SimpleAtoi(s.substr(0, digits), &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("size \"", text, "\" must start with a number of bytes"));
  }
  std::string unit =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(s.substr(digits)));
  int64_t scale = 1;
  if (unit.empty() || unit == "b") {
    scale = 1;
  } else if (unit == "k" || unit == "kib") {
    scale = int64_t{1} << 10;
  } else if (unit == "m" || unit == "mib") {
    scale = int64_t{1} << 20;
  } else if (unit == "g" || unit == "gib") {
    scale = int64_t{1} << 30;
  } else if (unit == "kb") {
    scale = 1000;
  } else if (unit == "mb") {
    scale = 1000 * 1000;
  } else if (unit == "gb") {
    scale = 1000 * 1000 * 1000;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("size \"", text, "\" has unknown unit \"", unit,
                     "\" (use B, KiB, MiB, GiB, KB, MB or GB)"));
  }
  if (value > INT64_MAX / scale) {
    return absl::InvalidArgumentError(
        absl::StrCat("size \"", text, "\" is too large"));
  }
  return value * scale;
}

absl::Status ParseHostPort(const std::string& address, std::string* host,
                           int* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "address \"", address, "\" must be HOST:PORT, e.g. 127.0.0.1:50051"));
  }
  *host = address.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  if (!absl::SimpleAtoi(address.substr(colon + 1), port) || *port < 0 ||
      *port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", address, "\" has no valid port (0..65535)"));
  }
  return absl::OkStatus();
}

namespace {

template <typename... Parts>
absl::Status Invalid(const Parts&... parts) {
  return absl::InvalidArgumentError(absl::StrCat("config: ", parts...));
}

// The model, tokenizer and where the model runs.
absl::Status ValidateModel(const ServerConfig& config) {
  if (config.model_dir().empty()) {
    return Invalid("model_dir is not set (use --model=DIR or model_dir)");
  }
  if (absl::Status s = CheckModelDir(config.model_dir()); !s.ok()) {
    return Invalid(s.message());
  }
  if (config.has_tokenizer_path() && !config.tokenizer_path().empty() &&
      !FileExists(config.tokenizer_path())) {
    return Invalid("tokenizer_path \"", config.tokenizer_path(),
                   "\" cannot be opened");
  }
  if (!IsBackendName(config.backend())) {
    return Invalid("backend \"", config.backend(), "\" is not one of ",
                   absl::StrJoin(kBackendNames, ", "));
  }
  if (config.device_weights() != "f32" && config.device_weights() != "bf16") {
    return Invalid("device_weights \"", config.device_weights(),
                   "\" is not one of f32, bf16");
  }
  return absl::OkStatus();
}

// The ports, and the files that secure them.
absl::Status ValidateEndpoints(const ServerConfig& config) {
  std::string host;
  int port = 0;
  for (const auto& [name, address, optional] :
       {std::make_tuple("listen", &config.listen(), false),
        std::make_tuple("metrics_listen", &config.metrics_listen(), true),
        std::make_tuple("openai_listen", &config.openai_listen(), true)}) {
    if (optional && address->empty()) continue;
    if (absl::Status s = ParseHostPort(*address, &host, &port); !s.ok()) {
      return Invalid(name, ": ", s.message());
    }
  }
  if (config.tls_cert_file().empty() != config.tls_key_file().empty()) {
    return Invalid("tls_cert_file and tls_key_file go together: give both");
  }
  if (!config.tls_client_ca_file().empty() && config.tls_cert_file().empty()) {
    return Invalid(
        "tls_client_ca_file needs TLS (tls_cert_file, tls_key_file)");
  }
  for (const std::string* path :
       {&config.tls_cert_file(), &config.tls_key_file(),
        &config.tls_client_ca_file(), &config.api_keys_file()}) {
    if (!path->empty() && !FileExists(*path)) {
      return Invalid("\"", *path, "\" cannot be opened");
    }
  }
  return absl::OkStatus();
}

// Counts and sizes with a lower bound: 1 ("> 0") or 0 (">= 0").
absl::Status ValidateCounts(const ServerConfig& config) {
  struct Count {
    const char* name;
    int64_t value, min;
  };
  for (const Count& count : {
           Count{"openai_max_body_bytes", config.openai_max_body_bytes(), 1},
           Count{"state_memory_bytes", config.state_memory_bytes(), 1},
           Count{"max_waiting_bytes", config.max_waiting_bytes(), 1},
           Count{"step_token_budget", config.step_token_budget(), 1},
           Count{"max_batch", config.max_batch(), 1},
           Count{"prefix_cache_bytes", config.prefix_cache_bytes(), 0},
           Count{"swap_space_bytes", config.swap_space_bytes(), 0},
           Count{"threads", config.threads(), 0},
           Count{"max_tokens_limit", config.max_tokens_limit(), 1},
           Count{"max_n", config.max_n(), 1},
           Count{"stream_buffer_tokens", config.stream_buffer_tokens(), 1},
           Count{"stream_interval", config.stream_interval(), 1},
           Count{"max_prompt_tokens", config.max_prompt_tokens(), 1},
           Count{"max_streams_per_connection",
                 config.max_streams_per_connection(), 1},
           Count{"cuda_graph_max_batch", config.cuda_graph_max_batch(), 0},
       }) {
    if (count.value < count.min) {
      return Invalid(count.name, " must be ", count.min > 0 ? "> 0" : ">= 0",
                     ", got ", count.value);
    }
  }
  if (config.stream_interval() > config.stream_buffer_tokens()) {
    return Invalid("stream_interval (", config.stream_interval(),
                   ") must be at most stream_buffer_tokens (",
                   config.stream_buffer_tokens(), ")");
  }
  if (config.block_tokens() < 0 || config.block_tokens() > 65536) {
    return Invalid("block_tokens must be in [0, 65536], got ",
                   config.block_tokens());
  }
  return absl::OkStatus();
}

// Durations and the log level.
absl::Status ValidateTimesAndLogging(const ServerConfig& config) {
  // Written so that NaN fails too; an infinity means "never".
  for (const auto& [name, seconds, note] :
       {std::make_tuple("drain_listen_seconds", config.drain_listen_seconds(),
                        ""),
        std::make_tuple("drain_grace_seconds", config.drain_grace_seconds(),
                        ""),
        std::make_tuple("stream_stall_seconds", config.stream_stall_seconds(),
                        " (0: off)")}) {
    if (!(seconds >= 0)) {
      return Invalid(name, " must be >= 0", note, ", got ", seconds);
    }
  }
  static const char* const kLevels[] = {"trace", "debug",    "info", "warn",
                                        "error", "critical", "off"};
  bool known_level = false;
  for (const char* level : kLevels) known_level |= config.log_level() == level;
  if (!known_level) {
    return Invalid("log_level \"", config.log_level(), "\" is not one of ",
                   absl::StrJoin(kLevels, ", "));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateConfig(const ServerConfig& config) {
  if (absl::Status s = ValidateModel(config); !s.ok()) return s;
  if (absl::Status s = ValidateEndpoints(config); !s.ok()) return s;
  if (absl::Status s = ValidateCounts(config); !s.ok()) return s;
  return ValidateTimesAndLogging(config);
}

std::string ResolveTokenizerPath(const ServerConfig& config) {
  if (!config.tokenizer_path().empty()) return config.tokenizer_path();
  std::string in_model_dir = config.model_dir() + "/tokenizer.model";
  return FileExists(in_model_dir) ? in_model_dir : "";
}

}  // namespace slabserve::server
