// Server configuration: a text-format ServerConfig file, overridden field by
// field by command-line flags, then checked as a whole.
#ifndef SLABSERVE_SERVER_CONFIG_H_
#define SLABSERVE_SERVER_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "server/config.pb.h"

namespace slabserve::server {

// Parses a text-format ServerConfig; errors name the file and the line.
absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path);
absl::StatusOr<ServerConfig> ParseConfigText(const std::string& text,
                                             const std::string& source);

// INVALID_ARGUMENT naming the first bad field.
absl::Status ValidateConfig(const ServerConfig& config);

// "1073741824", "512MiB", "2GiB", "64KiB", "1GB" (decimal) → bytes.
absl::StatusOr<int64_t> ParseByteSize(const std::string& text);

// Splits "host:port" / "[v6]:port"; INVALID_ARGUMENT when malformed.
absl::Status ParseHostPort(const std::string& address, std::string* host,
                           int* port);

// The tokenizer to load: tokenizer_path if set, else model_dir/tokenizer.model
// when that file exists, else empty (no tokenizer).
std::string ResolveTokenizerPath(const ServerConfig& config);

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_CONFIG_H_
