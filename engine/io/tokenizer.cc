#include "engine/io/tokenizer.h"

#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/io/sentencepiece_model.h"

namespace slabserve {
namespace {

// Windowing: decode at most about kMaxWindowIds + kRetryIds ids per Add.
constexpr size_t kMaxWindowIds = 64;
// A new window start keeps at least this many recent ids in the window.
constexpr size_t kKeepIds = 8;
// After a failed attempt to move the window, wait this many ids.
constexpr size_t kRetryIds = 16;
// Candidate starts checked per attempt (a start whose first piece would lose
// its leading space when decoded alone fails the check).
constexpr int kMaxCandidates = 4;

constexpr absl::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Length of the prefix of `text` that can be emitted now: SentencePiece
// renders the bytes of an incomplete character as U+FFFD, so a trailing run
// of U+FFFD may still turn into a character when more bytes arrive. A raw
// incomplete UTF-8 sequence at the end is held back as well.
size_t EmittableLength(absl::string_view text) {
  while (absl::EndsWith(text, kReplacementChar)) {
    text.remove_suffix(kReplacementChar.size());
  }
  size_t lead = text.size();
  int continuation = 0;
  while (lead > 0 && continuation < 3 &&
         (static_cast<unsigned char>(text[lead - 1]) & 0xC0) == 0x80) {
    --lead;
    ++continuation;
  }
  if (lead == 0) return text.size();  // stray continuation bytes
  const unsigned char first = static_cast<unsigned char>(text[lead - 1]);
  const int needed = first >= 0xF0   ? 3
                     : first >= 0xE0 ? 2
                     : first >= 0xC0 ? 1
                                     : 0;
  return continuation < needed ? lead - 1 : text.size();
}

}  // namespace

Tokenizer::Tokenizer() : model_(std::make_unique<SentencePieceModel>()) {}

Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(
    const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  }
  std::unique_ptr<Tokenizer> tokenizer(new Tokenizer());
  std::string error;
  if (!tokenizer->model_->Load(path, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a SentencePiece model: ", error));
  }
  return tokenizer;
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(
    const std::string& text) const {
  std::vector<int> ids;
  std::string error;
  if (!model_->Encode(text, &ids, &error)) {
    return absl::InternalError(absl::StrCat("encode: ", error));
  }
  return std::vector<int32_t>(ids.begin(), ids.end());
}

absl::StatusOr<std::vector<std::string>> Tokenizer::EncodePieces(
    const std::string& text) const {
  std::vector<std::string> pieces;
  std::string error;
  if (!model_->EncodePieces(text, &pieces, &error)) {
    return absl::InternalError(absl::StrCat("encode: ", error));
  }
  return pieces;
}

absl::StatusOr<std::string> Tokenizer::Decode(
    absl::Span<const int32_t> ids) const {
  const int vocab = vocab_size();
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token id ", id, " is outside the vocabulary [0, ", vocab, ")"));
    }
  }
  std::string text;
  std::string error;
  if (!model_->Decode(std::vector<int>(ids.begin(), ids.end()), &text,
                      &error)) {
    return absl::InternalError(absl::StrCat("decode: ", error));
  }
  return text;
}

int Tokenizer::vocab_size() const { return model_->PieceSize(); }
int Tokenizer::bos_id() const { return model_->bos_id(); }
int Tokenizer::eos_id() const { return model_->eos_id(); }
int Tokenizer::pad_id() const { return model_->pad_id(); }

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer* tokenizer)
    : tokenizer_(tokenizer) {}

absl::StatusOr<std::string> IncrementalDetokenizer::Add(int32_t id) {
  ids_.push_back(id);
  auto text = tokenizer_->Decode(ids_);
  if (!text.ok() || !absl::StartsWith(*text, window_text_)) {
    ids_.pop_back();
    if (!text.ok()) return text.status();
    // Decoding is prefix-stable for SentencePiece models; a model whose
    // denormalizer rewrites earlier text would end up here.
    return absl::InternalError(
        "incremental detokenizer: decoded text no longer extends the text "
        "already emitted");
  }
  const size_t end = std::max(EmittableLength(*text), window_text_.size());
  std::string delta =
      text->substr(window_text_.size(), end - window_text_.size());
  window_text_ += delta;
  if (end == text->size()) {
    boundaries_.emplace_back(window_ids_base_ + ids_.size(),
                             window_bytes_base_ + window_text_.size());
    MaybeAdvanceWindow();
  }
  return delta;
}

std::string IncrementalDetokenizer::Flush() {
  // Every id in ids_ passed Decode in Add, so decoding cannot fail here.
  auto text = tokenizer_->Decode(ids_);
  std::string rest;
  if (text.ok() && text->size() > window_text_.size()) {
    rest = text->substr(window_text_.size());
  }
  window_ids_base_ += ids_.size();
  window_bytes_base_ += window_text_.size() + rest.size();
  ids_.clear();
  window_text_.clear();
  boundaries_.clear();
  return rest;
}

void IncrementalDetokenizer::MaybeAdvanceWindow() {
  const size_t total_ids = window_ids_base_ + ids_.size();
  if (ids_.size() < kMaxWindowIds || total_ids < next_advance_at_) return;
  next_advance_at_ = total_ids + kRetryIds;
  int candidates = 0;
  for (auto it = boundaries_.rbegin();
       it != boundaries_.rend() && candidates < kMaxCandidates; ++it) {
    const auto [start_ids, start_bytes] = *it;
    if (start_ids <= window_ids_base_) break;
    if (start_ids + kKeepIds > total_ids) continue;
    ++candidates;
    // The window may start here only if decoding from here reproduces the
    // text emitted since (SentencePiece drops a leading space of the first
    // piece for some models) and that text is not empty (after non-empty
    // text, no later piece loses its space).
    const size_t skip_ids = start_ids - window_ids_base_;
    const size_t skip_bytes = start_bytes - window_bytes_base_;
    auto text = tokenizer_->Decode(absl::MakeConstSpan(ids_).subspan(skip_ids));
    if (!text.ok() || text->empty() ||
        absl::string_view(*text) !=
            absl::string_view(window_text_).substr(skip_bytes)) {
      continue;
    }
    ids_.erase(ids_.begin(), ids_.begin() + skip_ids);
    window_text_.erase(0, skip_bytes);
    window_ids_base_ = start_ids;
    window_bytes_base_ = start_bytes;
    while (!boundaries_.empty() && boundaries_.front().first <= start_ids) {
      boundaries_.pop_front();
    }
    return;
  }
}

}  // namespace slabserve
