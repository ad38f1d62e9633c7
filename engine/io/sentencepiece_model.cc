#include "engine/io/sentencepiece_model.h"

#include <dlfcn.h>
#include <sentencepiece_processor.h>

#include <new>

namespace slabserve {
namespace {

using sentencepiece::SentencePieceProcessor;
using sentencepiece::util::Status;

// Debian's libsentencepiece carries its own protobuf 3.14 runtime and exports
// its symbols. Linked like any library, it clashes with the system protobuf
// that gRPC uses: whichever loads first serves both, and the process crashes
// at start-up or fails protobuf's version check. So it is opened privately:
// RTLD_LOCAL keeps its symbols out of the global scope and RTLD_DEEPBIND
// makes it bind to its own protobuf copy. Virtual methods are reached through
// the object's vtable; the few non-virtual ones come from dlsym.
struct Library {
  void* handle = nullptr;
  std::string error;
  void (*construct)(SentencePieceProcessor*) = nullptr;
  void (*destroy_status)(Status*) = nullptr;
  const char* (*status_message)(const Status*) = nullptr;
};

// ASan refuses RTLD_DEEPBIND (gcc and clang say they use it differently).
#if defined(__SANITIZE_ADDRESS__)
#define SLABSERVE_NO_DEEPBIND 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLABSERVE_NO_DEEPBIND 1
#endif
#endif

const Library& GetLibrary() {
  static const Library* library = [] {
    auto* lib = new Library;
    int flags = RTLD_NOW | RTLD_LOCAL;
#ifndef SLABSERVE_NO_DEEPBIND
    flags |= RTLD_DEEPBIND;
#endif
    lib->handle = dlopen("libsentencepiece.so.0", flags);
    if (lib->handle == nullptr) {
      lib->error =
          std::string("cannot open libsentencepiece.so.0: ") + dlerror();
      return lib;
    }
    // Itanium C++ ABI: a member function takes `this` as its first argument.
    lib->construct = reinterpret_cast<void (*)(SentencePieceProcessor*)>(
        dlsym(lib->handle, "_ZN13sentencepiece22SentencePieceProcessorC1Ev"));
    lib->destroy_status = reinterpret_cast<void (*)(Status*)>(
        dlsym(lib->handle, "_ZN13sentencepiece4util6StatusD1Ev"));
    lib->status_message = reinterpret_cast<const char* (*)(const Status*)>(
        dlsym(lib->handle, "_ZNK13sentencepiece4util6Status13error_messageEv"));
    if (lib->construct == nullptr || lib->destroy_status == nullptr ||
        lib->status_message == nullptr) {
      lib->error = "libsentencepiece.so.0 lacks an expected symbol";
    }
    return lib;
  }();
  return *library;
}

// Runs `call`, which returns a Status by value. The Status is built in place
// (guaranteed copy elision) and destroyed through the library, so this file
// references none of Status's out-of-line members.
template <typename Call>
bool Check(Call call, std::string* error) {
  const Library& lib = GetLibrary();
  alignas(Status) unsigned char storage[sizeof(Status)];
  Status* status = new (storage) Status(call());
  bool ok = status->ok();
  if (!ok) *error = lib.status_message(status);
  lib.destroy_status(status);
  return ok;
}

}  // namespace

SentencePieceModel::SentencePieceModel() = default;

SentencePieceModel::~SentencePieceModel() = default;

bool SentencePieceModel::Load(const std::string& path, std::string* error) {
  const Library& lib = GetLibrary();
  if (!lib.error.empty()) {
    *error = lib.error;
    return false;
  }
  void* memory = ::operator new(sizeof(SentencePieceProcessor));
  auto* processor = static_cast<SentencePieceProcessor*>(memory);
  lib.construct(processor);
  processor_.reset(processor);  // deleted through its virtual destructor
  return Check([&] { return processor_->Load(path); }, error);
}

bool SentencePieceModel::Encode(const std::string& text, std::vector<int>* ids,
                                std::string* error) const {
  return Check([&] { return processor_->Encode(text, ids); }, error);
}

bool SentencePieceModel::EncodePieces(const std::string& text,
                                      std::vector<std::string>* pieces,
                                      std::string* error) const {
  return Check([&] { return processor_->Encode(text, pieces); }, error);
}

bool SentencePieceModel::Decode(const std::vector<int>& ids, std::string* text,
                                std::string* error) const {
  return Check([&] { return processor_->Decode(ids, text); }, error);
}

int SentencePieceModel::PieceSize() const { return processor_->GetPieceSize(); }
int SentencePieceModel::bos_id() const { return processor_->bos_id(); }
int SentencePieceModel::eos_id() const { return processor_->eos_id(); }
int SentencePieceModel::pad_id() const { return processor_->pad_id(); }

}  // namespace slabserve
