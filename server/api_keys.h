// API-key authentication for the gRPC methods. Keys come from a file (one a
// line; blank lines and '#' comments skipped), never from a flag's value.
// A call presents its key as "authorization: Bearer KEY" (or "x-api-key:
// KEY"); keys are compared in constant time, every key every time, so the
// answer's timing tells nothing about how close a guess was.
#ifndef SLABSERVE_SERVER_API_KEYS_H_
#define SLABSERVE_SERVER_API_KEYS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"

namespace slabserve::server {

class ApiKeys {
 public:
  // Keys shorter than this are refused at load: they could be guessed.
  static constexpr size_t kMinKeyBytes = 16;
  static constexpr size_t kMaxKeyBytes = 4096;

  static absl::StatusOr<ApiKeys> Load(const std::string& path);
  static ApiKeys FromKeys(std::vector<std::string> keys);

  size_t size() const { return keys_.size(); }
  // Whether `presented` is one of the keys.
  bool Matches(absl::string_view presented) const;
  // OK, or UNAUTHENTICATED saying what is missing or wrong.
  absl::Status Check(const grpc::ServerContextBase& context) const;
  // The same check on the values of those two headers (HTTP front end).
  absl::Status CheckHeaders(std::optional<absl::string_view> authorization,
                            std::optional<absl::string_view> x_api_key) const;

 private:
  std::vector<std::string> keys_;
};

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_API_KEYS_H_
