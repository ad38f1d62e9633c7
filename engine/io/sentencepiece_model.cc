#include "engine/io/sentencepiece_model.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/io/sentencepiece_shim.h"

namespace slabserve {

// The shim library's bytes, defined by the generated
// sentencepiece_shim_blob.cc (see BUILD).
extern const unsigned char kSentencePieceShim[];
extern const size_t kSentencePieceShimSize;

namespace {

// Debian's libsentencepiece carries its own protobuf 3.14 runtime and exports
// its symbols. Loaded into the process's namespace it clashes with the system
// protobuf that gRPC uses: whichever loads first serves both, and the process
// crashes at start-up or fails protobuf's version check. RTLD_DEEPBIND would
// keep it to its own copy, but AddressSanitizer refuses it. So a small C shim
// over it is loaded with dlmopen into a new link namespace, where it and its
// protobuf see no other library; the shim's bytes are embedded in the binary
// and loaded from a memory file, so no path has to be found at run time.
struct Library {
  std::string error;
  SpmLoadFn load = nullptr;
  SpmFreeFn free = nullptr;
  SpmInfoFn info = nullptr;
  SpmEncodeFn encode = nullptr;
  SpmEncodePiecesFn encode_pieces = nullptr;
  SpmDecodeFn decode = nullptr;
};

std::string OpenShim(Library* lib) {
  const int fd = memfd_create("slabserve_sentencepiece", MFD_CLOEXEC);
  if (fd < 0) return std::string("memfd_create: ") + std::strerror(errno);
  size_t written = 0;
  while (written < kSentencePieceShimSize) {
    const ssize_t n = write(fd, kSentencePieceShim + written,
                            kSentencePieceShimSize - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return std::string("writing the shim: ") + std::strerror(errno);
    }
    written += n;
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  void* handle = dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
  close(fd);  // the mapping outlives the descriptor
  if (handle == nullptr) return std::string("dlmopen: ") + dlerror();
  auto find = [&](auto* fn, const char* name) {
    *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(
        dlsym(handle, name));
    return *fn != nullptr;
  };
  if (!find(&lib->load, "slabserve_spm_load") ||
      !find(&lib->free, "slabserve_spm_free") ||
      !find(&lib->info, "slabserve_spm_info") ||
      !find(&lib->encode, "slabserve_spm_encode") ||
      !find(&lib->encode_pieces, "slabserve_spm_encode_pieces") ||
      !find(&lib->decode, "slabserve_spm_decode")) {
    return "the sentencepiece shim lacks an expected symbol";
  }
  return "";
}

const Library& GetLibrary() {
  static const Library* library = [] {
    auto* lib = new Library;
    lib->error = OpenShim(lib);
    if (!lib->error.empty()) {
      lib->error = "cannot load libsentencepiece: " + lib->error;
    }
    return lib;
  }();
  return *library;
}

// Sinks: they copy what the shim hands over. They must not throw (the shim's
// frames belong to another runtime), so allocation failure terminates.
void AssignString(void* context, const char* data, size_t size) noexcept {
  static_cast<std::string*>(context)->assign(data, size);
}
void AppendPiece(void* context, const char* data, size_t size) noexcept {
  static_cast<std::vector<std::string>*>(context)->emplace_back(data, size);
}
void AssignIds(void* context, const int* ids, size_t size) noexcept {
  static_cast<std::vector<int>*>(context)->assign(ids, ids + size);
}

}  // namespace

SentencePieceModel::SentencePieceModel() = default;

SentencePieceModel::~SentencePieceModel() {
  if (handle_ != nullptr) GetLibrary().free(handle_);
}

bool SentencePieceModel::Load(const std::string& path, std::string* error) {
  const Library& lib = GetLibrary();
  if (!lib.error.empty()) {
    *error = lib.error;
    return false;
  }
  if (handle_ != nullptr) lib.free(handle_);
  handle_ = lib.load(path.c_str(), AssignString, error);
  if (handle_ == nullptr) return false;
  SpmModelInfo info;
  lib.info(handle_, &info);
  piece_size_ = info.piece_size;
  bos_id_ = info.bos_id;
  eos_id_ = info.eos_id;
  pad_id_ = info.pad_id;
  return true;
}

bool SentencePieceModel::Encode(const std::string& text, std::vector<int>* ids,
                                std::string* error) const {
  return GetLibrary().encode(handle_, text.data(), text.size(), AssignIds, ids,
                             AssignString, error);
}

bool SentencePieceModel::EncodePieces(const std::string& text,
                                      std::vector<std::string>* pieces,
                                      std::string* error) const {
  pieces->clear();
  return GetLibrary().encode_pieces(handle_, text.data(), text.size(),
                                    AppendPiece, pieces, AssignString, error);
}

bool SentencePieceModel::Decode(const std::vector<int>& ids, std::string* text,
                                std::string* error) const {
  return GetLibrary().decode(handle_, ids.data(), ids.size(), AssignString,
                             text, AssignString, error);
}

}  // namespace slabserve
