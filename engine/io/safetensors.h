// One memory-mapped .safetensors file: 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}}, then the data. Every
// offset is validated against the file size and dtype x shape at open.
#ifndef SLABSERVE_ENGINE_IO_SAFETENSORS_H_
#define SLABSERVE_ENGINE_IO_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace slabserve {

enum class TensorDType { kF32, kBF16, kF16 };

const char* TensorDTypeName(TensorDType dtype);  // "F32", "BF16", "F16"

struct TensorEntry {
  TensorDType dtype;
  std::vector<int64_t> shape;
  const unsigned char* data;  // into the mapping
  size_t nbytes;
};

class SafetensorsFile {
 public:
  // Maps `path` read-only. Errors name the file and, for a bad entry, the
  // tensor: truncated file, header length out of range, header not JSON,
  // unsupported dtype, offsets out of range or inconsistent with the shape.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorEntry>& tensors() const { return tensors_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  std::map<std::string, TensorEntry> tensors_;
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_IO_SAFETENSORS_H_
