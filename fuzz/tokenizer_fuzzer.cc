// SentencePiece model files through the tokenizer loader; a model that
// loads must encode and decode without failing hard.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/io/tokenizer.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = slabserve::fuzz::WriteScratchFile(data, size);
  auto tokenizer = slabserve::Tokenizer::Load(path);
  if (tokenizer.ok()) {
    auto ids = (*tokenizer)->Encode("In the beginning \xe2\x80\x94 \xff");
    if (ids.ok()) (*tokenizer)->Decode(*ids).IgnoreError();
    const int32_t outside[] = {-1, (*tokenizer)->vocab_size()};
    (*tokenizer)->Decode(outside).IgnoreError();
  }
  return 0;
}
