// SentencePiece tokenizer from a model directory's tokenizer.model, and an
// incremental detokenizer that streams only complete UTF-8 text.
#ifndef SLABSERVE_ENGINE_IO_TOKENIZER_H_
#define SLABSERVE_ENGINE_IO_TOKENIZER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace slabserve {

class SentencePieceModel;

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
  std::unique_ptr<SentencePieceModel> model_;
};

// Turns a growing list of token ids into text deltas that are always valid
// UTF-8: bytes of a character split across tokens are held back until the
// character is complete. The deltas concatenate to Decode(all ids). Each Add
// decodes only a window of recent ids (amortized O(1)), moving the window
// start only to a token boundary where decoding from there provably
// reproduces the text already emitted.
class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer* tokenizer);
  // The text that `id` adds (possibly empty). INVALID_ARGUMENT for an id
  // outside the vocabulary (the id is then not added).
  absl::StatusOr<std::string> Add(int32_t id);
  // Whatever is still held back (e.g. an incomplete character at the end).
  // Meant for the end of a stream; ids added afterwards decode as a new text.
  std::string Flush();

 private:
  // Moves window_start_ forward to a verified boundary when the window is long.
  void MaybeAdvanceWindow();

  const Tokenizer* tokenizer_;
  std::vector<int32_t> ids_;      // the ids from the window start on
  std::string window_text_;       // what those ids have emitted so far
  size_t window_ids_base_ = 0;    // ids before the window
  size_t window_bytes_base_ = 0;  // bytes emitted before the window
  // (id count, bytes emitted) after Adds that held nothing back: candidate
  // window starts, oldest first.
  std::deque<std::pair<size_t, size_t>> boundaries_;
  size_t next_advance_at_ = 0;  // id count at which to try advancing
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_IO_TOKENIZER_H_
