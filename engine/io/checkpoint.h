// A model directory in Hugging Face layout: config.json plus model.safetensors
// or a sharded set (model.safetensors.index.json + shards), memory-mapped.
// Every error names the file and, where there is one, the tensor.
#ifndef SLABSERVE_ENGINE_IO_CHECKPOINT_H_
#define SLABSERVE_ENGINE_IO_CHECKPOINT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/io/config.h"
#include "engine/io/safetensors.h"

namespace slabserve {

// An f32 tensor: a view into the mapped file when stored as 4-byte aligned
// F32 (no copy; valid while its Checkpoint lives), otherwise its own widened
// copy (BF16, F16, misaligned F32).
class Weight {
 public:
  Weight() = default;
  const float* data() const { return view_ != nullptr ? view_ : owned_.data(); }
  size_t size() const { return size_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  bool is_view() const { return view_ != nullptr; }

 private:
  friend class Checkpoint;
  std::vector<float> owned_;
  const float* view_ = nullptr;
  size_t size_ = 0;
  std::vector<int64_t> shape_;
};

class Checkpoint {
 public:
  // Reads DIR/config.json and maps DIR/model.safetensors, or every shard named
  // by DIR/model.safetensors.index.json. `weights_file` overrides the file name
  // (e.g. "model.bf16.safetensors") when not empty.
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(
      const std::string& dir, const std::string& weights_file = "");

  const std::string& dir() const { return dir_; }
  const Config& config() const { return *config_; }

  bool Has(const std::string& name) const;
  // The stored dtype of a tensor ("F32", "BF16", "F16"), or "" if absent.
  std::string DType(const std::string& name) const;
  // The stored shape of a tensor, or an error naming the file and tensor.
  absl::StatusOr<std::vector<int64_t>> Shape(const std::string& name) const;
  // Every tensor name, sorted.
  std::vector<std::string> TensorNames() const;
  // The tensor widened to f32, checked against `shape`. Errors name the file
  // and tensor: missing, wrong shape, unsupported dtype.
  absl::StatusOr<Weight> Load(const std::string& name,
                              const std::vector<int64_t>& shape);
  // An error naming any tensor that no Load() asked for (unexpected tensor).
  // `ignored` names tensors a model accepts but does not need.
  absl::Status CheckAllLoaded(const std::set<std::string>& ignored = {}) const;
  // "f32", "bf16", "f16" when all tensors share it, "mixed" otherwise, and ""
  // for a checkpoint without tensors.
  std::string WeightsDType() const;

 private:
  Checkpoint() = default;
  // Maps every shard named by the index once and records tensor owners.
  absl::Status OpenSharded(const std::string& index_path);

  std::string dir_;
  std::string weights_path_;  // the .safetensors or index file, for errors
  std::unique_ptr<Config> config_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> owner_;  // tensor -> its file
  std::set<std::string> loaded_;
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_IO_CHECKPOINT_H_
