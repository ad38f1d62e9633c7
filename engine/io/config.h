// Typed, range-checked access to a model's config.json. Every error names the
// file and the key, e.g. "config.json: 'hidden_size' must be in [1, 1048576],
// got 0".
#ifndef SLABSERVE_ENGINE_IO_CONFIG_H_
#define SLABSERVE_ENGINE_IO_CONFIG_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace slabserve {

class Config {
 public:
  // Parses `path`; errors name the file (unreadable, not JSON, not an object).
  static absl::StatusOr<std::unique_ptr<Config>> Load(const std::string& path);
  static absl::StatusOr<std::unique_ptr<Config>> Parse(
      const std::string& text, const std::string& path_for_errors);

  const std::string& path() const { return path_; }
  const nlohmann::json& json() const { return json_; }
  // True when the key is present and not null.
  bool Has(const std::string& key) const;

  // Integer in [min, max]; `fallback` when absent or null, else an error.
  absl::StatusOr<int64_t> Int(const std::string& key, int64_t min, int64_t max,
                              std::optional<int64_t> fallback = {}) const;
  absl::StatusOr<double> Float(const std::string& key, double min, double max,
                               std::optional<double> fallback = {}) const;
  absl::StatusOr<bool> Bool(const std::string& key,
                            std::optional<bool> fallback = {}) const;
  absl::StatusOr<std::string> String(
      const std::string& key, std::optional<std::string> fallback = {}) const;
  absl::StatusOr<std::vector<std::string>> StringList(
      const std::string& key) const;
  absl::StatusOr<std::vector<double>> FloatList(const std::string& key) const;

  // An INVALID_ARGUMENT error "<file>: '<key>' <message>".
  absl::Status Error(const std::string& key, const std::string& message) const;

 private:
  std::string path_;
  nlohmann::json json_;
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_IO_CONFIG_H_
