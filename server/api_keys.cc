#include "server/api_keys.h"

#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace slabserve::server {
namespace {

// Equal bytes and lengths, in time that depends only on the lengths.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned char differ = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? a[i] : 0;
    const unsigned char y = i < b.size() ? b[i] : 0;
    differ |= x ^ y;
  }
  return differ == 0;
}

}  // namespace

absl::StatusOr<ApiKeys> ApiKeys::Load(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::InvalidArgumentError(
        absl::StrCat("api_keys_file \"", path, "\" cannot be opened"));
  }
  std::stringstream text;
  text << file.rdbuf();
  std::vector<std::string> keys;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    if (line.size() < kMinKeyBytes || line.size() > kMaxKeyBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "api_keys_file \"", path, "\" line ", line_number, ": a key must be ",
          kMinKeyBytes, " to ", kMaxKeyBytes, " characters"));
    }
    keys.emplace_back(line);
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("api_keys_file \"", path, "\" holds no key"));
  }
  return FromKeys(std::move(keys));
}

ApiKeys ApiKeys::FromKeys(std::vector<std::string> keys) {
  ApiKeys api_keys;
  api_keys.keys_ = std::move(keys);
  return api_keys;
}

bool ApiKeys::Matches(absl::string_view presented) const {
  bool match = false;
  for (const std::string& key : keys_) {
    match |= ConstantTimeEquals(key, presented);  // no early exit
  }
  return match;
}

absl::Status ApiKeys::Check(const grpc::ServerContextBase& context) const {
  const auto& metadata = context.client_metadata();
  std::optional<absl::string_view> authorization;
  std::optional<absl::string_view> x_api_key;
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  if (auto it = metadata.find("x-api-key"); it != metadata.end()) {
    x_api_key = absl::string_view(it->second.data(), it->second.size());
  }
  return CheckHeaders(authorization, x_api_key);
}

absl::Status ApiKeys::CheckHeaders(
    std::optional<absl::string_view> authorization,
    std::optional<absl::string_view> x_api_key) const {
  absl::string_view presented;
  if (authorization.has_value()) {
    presented = *authorization;
    if (!absl::ConsumePrefix(&presented, "Bearer ")) {
      return absl::UnauthenticatedError(
          "the authorization header must be 'Bearer <API key>'");
    }
  } else if (x_api_key.has_value()) {
    presented = *x_api_key;
  } else {
    return absl::UnauthenticatedError(
        "this server requires an API key: send 'authorization: Bearer <key>'");
  }
  if (!Matches(presented)) {
    return absl::UnauthenticatedError("the API key is not valid");
  }
  return absl::OkStatus();
}

}  // namespace slabserve::server
