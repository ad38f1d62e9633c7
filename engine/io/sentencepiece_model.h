// A narrow wrapper over sentencepiece::SentencePieceProcessor, which runs in
// a link namespace of its own (see sentencepiece_model.cc). Its header is
// only included by sentencepiece_shim.cc: it declares absl::string_view as an
// alias of std::string_view, which clashes with Abseil's own.
#ifndef SLABSERVE_ENGINE_IO_SENTENCEPIECE_MODEL_H_
#define SLABSERVE_ENGINE_IO_SENTENCEPIECE_MODEL_H_

#include <string>
#include <vector>

namespace slabserve {

class SentencePieceModel {
 public:
  SentencePieceModel();
  ~SentencePieceModel();
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  // Each returns false and sets `error` on failure.
  bool Load(const std::string& path, std::string* error);
  bool Encode(const std::string& text, std::vector<int>* ids,
              std::string* error) const;
  bool EncodePieces(const std::string& text, std::vector<std::string>* pieces,
                    std::string* error) const;
  // `ids` must lie in [0, PieceSize()).
  bool Decode(const std::vector<int>& ids, std::string* text,
              std::string* error) const;

  // After a successful Load.
  int PieceSize() const { return piece_size_; }
  int bos_id() const { return bos_id_; }
  int eos_id() const { return eos_id_; }
  int pad_id() const { return pad_id_; }

 private:
  void* handle_ = nullptr;  // the shim's processor, once loaded
  int piece_size_ = 0;
  int bos_id_ = -1;
  int eos_id_ = -1;
  int pad_id_ = -1;
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_IO_SENTENCEPIECE_MODEL_H_
