// The C interface of the sentencepiece shim (sentencepiece_shim.cc), a small
// shared library over libsentencepiece that sentencepiece_model.cc loads
// into a link namespace of its own. Nothing but plain C values crosses the
// boundary: the shim runs on that namespace's own C and C++ runtimes, so
// results go back through caller-supplied sinks that copy them, and memory
// allocated on one side is never freed on the other.
#ifndef SLABSERVE_ENGINE_IO_SENTENCEPIECE_SHIM_H_
#define SLABSERVE_ENGINE_IO_SENTENCEPIECE_SHIM_H_

#include <stddef.h>

extern "C" {

// Receives bytes (text, one piece, or an error message), valid for the call.
typedef void (*SpmBytesSink)(void* context, const char* data, size_t size);
// Receives token ids, valid for the call.
typedef void (*SpmIdsSink)(void* context, const int* ids, size_t size);

// The special ids and the vocabulary size of a loaded model.
struct SpmModelInfo {
  int piece_size;
  int bos_id;
  int eos_id;
  int pad_id;
};

// Each function returning int returns 1 on success, or 0 after passing a
// message to `error`. A handle comes from slabserve_spm_load.
typedef void* (*SpmLoadFn)(const char* path, SpmBytesSink error,
                           void* error_context);
typedef void (*SpmFreeFn)(void* handle);
typedef void (*SpmInfoFn)(const void* handle, SpmModelInfo* info);
typedef int (*SpmEncodeFn)(const void* handle, const char* text, size_t size,
                           SpmIdsSink ids, void* ids_context,
                           SpmBytesSink error, void* error_context);
// Calls `piece` once per piece, in order.
typedef int (*SpmEncodePiecesFn)(const void* handle, const char* text,
                                 size_t size, SpmBytesSink piece,
                                 void* piece_context, SpmBytesSink error,
                                 void* error_context);
typedef int (*SpmDecodeFn)(const void* handle, const int* ids, size_t size,
                           SpmBytesSink text, void* text_context,
                           SpmBytesSink error, void* error_context);

}  // extern "C"

#endif  // SLABSERVE_ENGINE_IO_SENTENCEPIECE_SHIM_H_
