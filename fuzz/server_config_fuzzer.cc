// The server's textproto configuration, parsed and validated.
#include <cstddef>
#include <cstdint>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "server/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);  // parse errors are expected
    return true;
  }();
  (void)quiet;
  auto config = slabserve::server::ParseConfigText(
      std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  if (config.ok()) slabserve::server::ValidateConfig(*config).IgnoreError();
  return 0;
}
