// SentencePiece tokenizer from a model directory's tokenizer.model, and an
// incremental detokenizer that streams only complete UTF-8 text.
#ifndef SLABSERVE_ENGINE_IO_TOKENIZER_H_
#define SLABSERVE_ENGINE_IO_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace slabserve {

class Tokenizer {
 public:
  // Errors name the file (missing, unreadable, not a SentencePiece model).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(
      const std::string& path);
  ~Tokenizer();

  // Plain encoding (no BOS); the caller adds BOS per the model.
  absl::StatusOr<std::vector<int32_t>> Encode(const std::string& text) const;
  absl::StatusOr<std::vector<std::string>> EncodePieces(
      const std::string& text) const;
  // INVALID_ARGUMENT naming the first id outside the vocabulary.
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const;

  int vocab_size() const;
  int bos_id() const;  // -1 when the model has none
  int eos_id() const;
  int pad_id() const;

 private:
  Tokenizer();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

// Turns a growing list of token ids into text deltas that are always valid
// UTF-8: bytes of a character split across tokens are held back until the
// character is complete.
class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer* tokenizer);
  // The text that `id` adds (possibly empty).
  absl::StatusOr<std::string> Add(int32_t id);
  // Whatever is still held back (e.g. an incomplete character at the end).
  std::string Flush();

 private:
  const Tokenizer* tokenizer_;
  std::vector<int32_t> ids_;
  size_t emitted_bytes_ = 0;
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_IO_TOKENIZER_H_
