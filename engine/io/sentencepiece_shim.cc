// The shared library behind sentencepiece_shim.h. It is built by a plain
// compiler call (see BUILD), never with sanitizers or other build-wide
// flags: it lives in a link namespace with its own uninstrumented C and C++
// runtimes. No exception may leave it, as the caller runs on other runtimes.
#include "engine/io/sentencepiece_shim.h"

#include <sentencepiece_processor.h>

#include <exception>
#include <string>
#include <vector>

namespace {

using sentencepiece::SentencePieceProcessor;
using sentencepiece::util::Status;

const SentencePieceProcessor& Processor(const void* handle) {
  return *static_cast<const SentencePieceProcessor*>(handle);
}

void SendString(SpmBytesSink sink, void* context, const std::string& text) {
  sink(context, text.data(), text.size());
}

// Runs `call` (returning a Status); reports a failure or an exception.
template <typename Call>
int Run(Call call, SpmBytesSink error, void* error_context) {
  try {
    const Status status = call();
    if (status.ok()) return 1;
    SendString(error, error_context, status.ToString());
  } catch (const std::exception& e) {
    SendString(error, error_context, e.what());
  } catch (...) {
    SendString(error, error_context, "unknown exception");
  }
  return 0;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* slabserve_spm_load(
    const char* path, SpmBytesSink error, void* error_context) {
  SentencePieceProcessor* processor = nullptr;
  const int ok = Run(
      [&] {
        processor = new SentencePieceProcessor;
        return processor->Load(path);
      },
      error, error_context);
  if (ok) return processor;
  delete processor;
  return nullptr;
}

__attribute__((visibility("default"))) void slabserve_spm_free(void* handle) {
  delete static_cast<SentencePieceProcessor*>(handle);
}

__attribute__((visibility("default"))) void slabserve_spm_info(
    const void* handle, SpmModelInfo* info) {
  const SentencePieceProcessor& processor = Processor(handle);
  info->piece_size = processor.GetPieceSize();
  info->bos_id = processor.bos_id();
  info->eos_id = processor.eos_id();
  info->pad_id = processor.pad_id();
}

__attribute__((visibility("default"))) int slabserve_spm_encode(
    const void* handle, const char* text, size_t size, SpmIdsSink ids,
    void* ids_context, SpmBytesSink error, void* error_context) {
  return Run(
      [&] {
        std::vector<int> out;
        Status status = Processor(handle).Encode(std::string(text, size), &out);
        if (status.ok()) ids(ids_context, out.data(), out.size());
        return status;
      },
      error, error_context);
}

__attribute__((visibility("default"))) int slabserve_spm_encode_pieces(
    const void* handle, const char* text, size_t size, SpmBytesSink piece,
    void* piece_context, SpmBytesSink error, void* error_context) {
  return Run(
      [&] {
        std::vector<std::string> pieces;
        Status status =
            Processor(handle).Encode(std::string(text, size), &pieces);
        if (status.ok()) {
          for (const std::string& p : pieces) {
            SendString(piece, piece_context, p);
          }
        }
        return status;
      },
      error, error_context);
}

__attribute__((visibility("default"))) int slabserve_spm_decode(
    const void* handle, const int* ids, size_t size, SpmBytesSink text,
    void* text_context, SpmBytesSink error, void* error_context) {
  return Run(
      [&] {
        std::string out;
        Status status =
            Processor(handle).Decode(std::vector<int>(ids, ids + size), &out);
        if (status.ok()) SendString(text, text_context, out);
        return status;
      },
      error, error_context);
}

}  // extern "C"
