// Helpers for tests that write safetensors files and checkpoint directories.
#ifndef SLABSERVE_ENGINE_IO_TEST_UTIL_H_
#define SLABSERVE_ENGINE_IO_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

namespace slabserve {
namespace testing {

struct RawTensor {
  std::string name;
  std::string dtype;  // written as is, so tests can use unsupported names
  std::vector<int64_t> shape;
  std::string bytes;
};

// A well-formed safetensors image: tensors packed in order, header padded
// with spaces to `header_alignment` bytes.
std::string SafetensorsImage(const std::vector<RawTensor>& tensors,
                             size_t header_alignment = 8);
// An image with the given raw header text and data bytes.
std::string SafetensorsImage(const std::string& header,
                             const std::string& data);

// A fresh empty directory under $TEST_TMPDIR.
std::string MakeTempDir(const std::string& name);
void WriteFile(const std::string& path, const std::string& contents);
std::string ReadFile(const std::string& path);

}  // namespace testing
}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_IO_TEST_UTIL_H_
