#include "fuzz/fuzz_input.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace slabserve::fuzz {

std::string WriteScratchFile(const uint8_t* data, size_t size) {
  const char* dir = std::getenv("TEST_TMPDIR");
  static const std::string path = std::string(dir != nullptr ? dir : "/tmp") +
                                  "/slabserve_fuzz_" + std::to_string(getpid());
  FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) std::abort();  // the harness itself is broken
  if (size > 0 && std::fwrite(data, 1, size, file) != size) std::abort();
  std::fclose(file);
  return path;
}

}  // namespace slabserve::fuzz
