#include "engine/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace slabserve {
namespace {

constexpr size_t kHeaderLengthBytes = 8;
// Real headers are a few MB at most; a larger value means a corrupt file and
// would otherwise make the JSON parser chew through the tensor data.
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

size_t DTypeBytes(TensorDType dtype) {
  return dtype == TensorDType::kF32 ? 4 : 2;
}

bool ParseDType(const std::string& name, TensorDType* dtype) {
  if (name == "F32") {
    *dtype = TensorDType::kF32;
  } else if (name == "BF16") {
    *dtype = TensorDType::kBF16;
  } else if (name == "F16") {
    *dtype = TensorDType::kF16;
  } else {
    return false;
  }
  return true;
}

// Reads a non-negative integer that fits in uint64 from a JSON value.
bool JsonToU64(const nlohmann::json& value, uint64_t* out) {
  if (value.is_number_unsigned()) {
    *out = value.get<uint64_t>();
    return true;
  }
  if (value.is_number_integer()) {
    const int64_t v = value.get<int64_t>();
    if (v < 0) return false;
    *out = static_cast<uint64_t>(v);
    return true;
  }
  return false;
}

class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// A shape of non-negative integers; its element count and byte size must
// fit in uint64.
absl::Status ParseShape(const nlohmann::json& shape, TensorDType dtype,
                        TensorEntry* entry, uint64_t* bytes) {
  uint64_t elements = 1;
  bool overflow = false;
  for (const auto& dim : shape) {
    uint64_t d = 0;
    if (!JsonToU64(dim, &d) ||
        d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shape ", shape.dump(), " must hold non-negative integers"));
    }
    entry->shape.push_back(static_cast<int64_t>(d));
    if (d != 0 && elements > std::numeric_limits<uint64_t>::max() / d) {
      overflow = true;
    }
    elements *= d;
  }
  const size_t elem_bytes = DTypeBytes(dtype);
  if (overflow ||
      elements > std::numeric_limits<uint64_t>::max() / elem_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("shape ", shape.dump(), " is too large"));
  }
  *bytes = elements * elem_bytes;
  return absl::OkStatus();
}

// One header entry, its bytes within `data` (data_size bytes).
absl::StatusOr<TensorEntry> ParseEntry(const nlohmann::json& info,
                                       const unsigned char* data,
                                       uint64_t data_size) {
  auto bad = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(parts...));
  };
  if (!info.is_object()) return bad("entry is not a JSON object");
  const auto dtype_it = info.find("dtype");
  const auto shape_it = info.find("shape");
  const auto offsets_it = info.find("data_offsets");
  if (dtype_it == info.end() || !dtype_it->is_string()) {
    return bad("missing string 'dtype'");
  }
  if (shape_it == info.end() || !shape_it->is_array()) {
    return bad("missing array 'shape'");
  }
  if (offsets_it == info.end() || !offsets_it->is_array() ||
      offsets_it->size() != 2) {
    return bad("'data_offsets' must be an array [begin, end]");
  }
  TensorEntry entry;
  const std::string dtype_name = dtype_it->get<std::string>();
  if (!ParseDType(dtype_name, &entry.dtype)) {
    return bad("unsupported dtype ", dtype_name,
               " (supported: F32, BF16, F16)");
  }
  uint64_t expected = 0;
  if (absl::Status s = ParseShape(*shape_it, entry.dtype, &entry, &expected);
      !s.ok()) {
    return s;
  }
  uint64_t begin = 0;
  uint64_t end = 0;
  if (!JsonToU64((*offsets_it)[0], &begin) ||
      !JsonToU64((*offsets_it)[1], &end)) {
    return bad("'data_offsets' must be non-negative integers");
  }
  if (begin > end) {
    return bad("data_offsets [", begin, ", ", end, "] have begin > end");
  }
  if (end > data_size) {
    return bad("data_offsets [", begin, ", ", end,
               "] run past the end of the data (", data_size, " bytes)");
  }
  if (end - begin != expected) {
    return bad("data_offsets [", begin, ", ", end, "] hold ", end - begin,
               " bytes but ", dtype_name, " ", shape_it->dump(), " needs ",
               expected);
  }
  entry.data = data + begin;
  entry.nbytes = static_cast<size_t>(expected);
  return entry;
}

}  // namespace

const char* TensorDTypeName(TensorDType dtype) {
  switch (dtype) {
    case TensorDType::kF32:
      return "F32";
    case TensorDType::kBF16:
      return "BF16";
    case TensorDType::kF16:
      return "F16";
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    const std::string& path) {
  auto error = [&path](const std::string& message) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", message));
  };
  ScopedFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    const std::string message =
        absl::StrCat(path, ": cannot open: ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(message)
                         : absl::PermissionDeniedError(message);
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    return error(absl::StrCat("cannot stat: ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) return error("not a regular file");
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < kHeaderLengthBytes) {
    return error(absl::StrCat("truncated: ", file_size,
                              " bytes, too short for the 8-byte header "
                              "length"));
  }

  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  void* mapping = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (mapping == MAP_FAILED) {
    return error(absl::StrCat("mmap failed: ", std::strerror(errno)));
  }
  file->mapping_ = mapping;
  file->mapping_bytes_ = file_size;
  const auto* bytes = static_cast<const unsigned char*>(mapping);

  uint64_t header_len = 0;
  for (size_t i = 0; i < kHeaderLengthBytes; ++i) {
    header_len |= uint64_t{bytes[i]} << (8 * i);
  }
  if (header_len > kMaxHeaderBytes ||
      header_len > file_size - kHeaderLengthBytes) {
    return error(absl::StrCat("header length ", header_len,
                              " runs past the end of the file (", file_size,
                              " bytes)"));
  }
  const char* header_begin = reinterpret_cast<const char*>(bytes) + 8;
  nlohmann::json header =
      nlohmann::json::parse(header_begin, header_begin + header_len, nullptr,
                            /*allow_exceptions=*/false);
  if (header.is_discarded()) return error("header is not valid JSON");
  if (!header.is_object()) return error("header is not a JSON object");

  const unsigned char* data = bytes + kHeaderLengthBytes + header_len;
  const uint64_t data_size = file_size - kHeaderLengthBytes - header_len;
  for (const auto& item : header.items()) {
    if (item.key() == "__metadata__") continue;
    absl::StatusOr<TensorEntry> entry =
        ParseEntry(item.value(), data, data_size);
    if (!entry.ok()) {
      return error(absl::StrCat("tensor '", item.key(),
                                "': ", entry.status().message()));
    }
    file->tensors_.emplace(item.key(), *std::move(entry));
  }
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_bytes_);
}

}  // namespace slabserve
