// A narrow wrapper over sentencepiece::SentencePieceProcessor. Its header
// declares absl::string_view as an alias of std::string_view, which clashes
// with Abseil's own absl::string_view, so it is only included by
// sentencepiece_model.cc, which includes no Abseil header.
#ifndef SLABSERVE_ENGINE_IO_SENTENCEPIECE_MODEL_H_
#define SLABSERVE_ENGINE_IO_SENTENCEPIECE_MODEL_H_

#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace slabserve {

class SentencePieceModel {
 public:
  SentencePieceModel();
  ~SentencePieceModel();

  // Each returns false and sets `error` on failure.
  bool Load(const std::string& path, std::string* error);
  bool Encode(const std::string& text, std::vector<int>* ids,
              std::string* error) const;
  bool EncodePieces(const std::string& text, std::vector<std::string>* pieces,
                    std::string* error) const;
  // `ids` must lie in [0, PieceSize()).
  bool Decode(const std::vector<int>& ids, std::string* text,
              std::string* error) const;

  int PieceSize() const;
  int bos_id() const;
  int eos_id() const;
  int pad_id() const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_IO_SENTENCEPIECE_MODEL_H_
