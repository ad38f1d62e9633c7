// config.json: JSON parsing, then both architectures' config checks.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/io/config.h"
#include "engine/models/griffin_config.h"
#include "engine/models/srm_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto config = slabserve::Config::Parse(
      std::string(reinterpret_cast<const char*>(data), size), "config.json");
  if (config.ok()) {
    slabserve::ParseGriffinConfig(**config).IgnoreError();
    slabserve::ParseSrmConfig(**config).IgnoreError();
  }
  return 0;
}
