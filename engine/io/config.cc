#include "engine/io/config.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace slabserve {

absl::StatusOr<std::unique_ptr<Config>> Config::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat(path, ": read failed"));
  }
  return Parse(text.str(), path);
}

absl::StatusOr<std::unique_ptr<Config>> Config::Parse(
    const std::string& text, const std::string& path_for_errors) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr,
                                              /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_for_errors, ": not valid JSON"));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_for_errors, ": not a JSON object"));
  }
  std::unique_ptr<Config> config(new Config());
  config->path_ = path_for_errors;
  config->json_ = std::move(json);
  return config;
}

bool Config::Has(const std::string& key) const {
  const auto it = json_.find(key);
  return it != json_.end() && !it->is_null();
}

absl::Status Config::Error(const std::string& key,
                           const std::string& message) const {
  return absl::InvalidArgumentError(
      absl::StrCat(path_, ": '", key, "' ", message));
}

absl::StatusOr<int64_t> Config::Int(const std::string& key, int64_t min,
                                    int64_t max,
                                    std::optional<int64_t> fallback) const {
  if (!Has(key)) {
    if (fallback.has_value()) return *fallback;
    return Error(key, "is missing");
  }
  const nlohmann::json& value = json_.at(key);
  int64_t result = 0;
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(max)) {
      return Error(key,
                   absl::StrCat("must be in [", min, ", ", max, "], got ", v));
    }
    result = static_cast<int64_t>(v);
  } else if (value.is_number_integer()) {
    result = value.get<int64_t>();
  } else if (value.is_number_float() &&
             std::trunc(value.get<double>()) == value.get<double>() &&
             std::fabs(value.get<double>()) < 9.0e15) {
    // Some exporters write integral values as 64.0.
    result = static_cast<int64_t>(value.get<double>());
  } else {
    return Error(key, absl::StrCat("must be an integer, got ", value.dump()));
  }
  if (result < min || result > max) {
    return Error(
        key, absl::StrCat("must be in [", min, ", ", max, "], got ", result));
  }
  return result;
}

absl::StatusOr<double> Config::Float(const std::string& key, double min,
                                     double max,
                                     std::optional<double> fallback) const {
  if (!Has(key)) {
    if (fallback.has_value()) return *fallback;
    return Error(key, "is missing");
  }
  const nlohmann::json& value = json_.at(key);
  if (!value.is_number()) {
    return Error(key, absl::StrCat("must be a number, got ", value.dump()));
  }
  const double result = value.get<double>();
  if (!(result >= min && result <= max)) {
    return Error(
        key, absl::StrCat("must be in [", min, ", ", max, "], got ", result));
  }
  return result;
}

absl::StatusOr<bool> Config::Bool(const std::string& key,
                                  std::optional<bool> fallback) const {
  if (!Has(key)) {
    if (fallback.has_value()) return *fallback;
    return Error(key, "is missing");
  }
  const nlohmann::json& value = json_.at(key);
  if (!value.is_boolean()) {
    return Error(key, absl::StrCat("must be a boolean, got ", value.dump()));
  }
  return value.get<bool>();
}

absl::StatusOr<std::string> Config::String(
    const std::string& key, std::optional<std::string> fallback) const {
  if (!Has(key)) {
    if (fallback.has_value()) return *fallback;
    return Error(key, "is missing");
  }
  const nlohmann::json& value = json_.at(key);
  if (!value.is_string()) {
    return Error(key, absl::StrCat("must be a string, got ", value.dump()));
  }
  return value.get<std::string>();
}

absl::StatusOr<std::vector<std::string>> Config::StringList(
    const std::string& key) const {
  if (!Has(key)) return Error(key, "is missing");
  const nlohmann::json& value = json_.at(key);
  if (!value.is_array()) {
    return Error(key,
                 absl::StrCat("must be a list of strings, got ", value.dump()));
  }
  std::vector<std::string> result;
  for (const auto& item : value) {
    if (!item.is_string()) {
      return Error(
          key, absl::StrCat("must be a list of strings, got ", value.dump()));
    }
    result.push_back(item.get<std::string>());
  }
  return result;
}

absl::StatusOr<std::vector<double>> Config::FloatList(
    const std::string& key) const {
  if (!Has(key)) return Error(key, "is missing");
  const nlohmann::json& value = json_.at(key);
  if (!value.is_array()) {
    return Error(key,
                 absl::StrCat("must be a list of numbers, got ", value.dump()));
  }
  std::vector<double> result;
  for (const auto& item : value) {
    if (!item.is_number()) {
      return Error(
          key, absl::StrCat("must be a list of numbers, got ", value.dump()));
    }
    result.push_back(item.get<double>());
  }
  return result;
}

}  // namespace slabserve
