// safetensors files: header length, JSON header, offsets, dtypes and shapes.
#include <cstddef>
#include <cstdint>

#include "engine/io/safetensors.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = slabserve::fuzz::WriteScratchFile(data, size);
  auto file = slabserve::SafetensorsFile::Open(path);
  if (file.ok()) {
    // Every entry was validated at open: reading it all must be in bounds.
    volatile unsigned char sink = 0;
    for (const auto& [name, entry] : (*file)->tensors()) {
      for (size_t i = 0; i < entry.nbytes; ++i) sink ^= entry.data[i];
    }
  }
  return 0;
}
