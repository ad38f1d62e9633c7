#include "engine/io/checkpoint.h"

#include <sys/stat.h>

#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace slabserve {
namespace {

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// A shard named by the index must stay inside the checkpoint directory.
bool IsSafeRelativePath(const std::string& name) {
  if (name.empty() || name[0] == '/') return false;
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

float Bf16ToF32(uint16_t bits) {
  const uint32_t widened = uint32_t{bits} << 16;
  float result;
  std::memcpy(&result, &widened, sizeof(result));
  return result;
}

float F16ToF32(uint16_t half) {
  const uint32_t sign = uint32_t{half & 0x8000u} << 16;
  uint32_t exponent = (half >> 10) & 0x1fu;
  uint32_t mantissa = half & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {  // inf / nan, keeping the nan payload
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal
    bits = sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal: renormalize into an f32 normal
    exponent = 127 - 15 + 1;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float result;
  std::memcpy(&result, &bits, sizeof(result));
  return result;
}

uint16_t ReadU16(const unsigned char* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json json = nlohmann::json::parse(text.str(), nullptr,
                                              /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  }
  return json;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(
    const std::string& dir, const std::string& weights_file) {
  std::unique_ptr<Checkpoint> checkpoint(new Checkpoint());
  checkpoint->dir_ = dir;
  auto config = Config::Load(dir + "/config.json");
  if (!config.ok()) return config.status();
  checkpoint->config_ = std::move(*config);

  std::string name = weights_file;
  if (name.empty()) {
    if (FileExists(dir + "/" + kSingleFile)) {
      name = kSingleFile;
    } else if (FileExists(dir + "/" + kIndexFile)) {
      name = kIndexFile;
    } else {
      return absl::NotFoundError(absl::StrCat(dir, ": neither ", kSingleFile,
                                              " nor ", kIndexFile, " found"));
    }
  }
  checkpoint->weights_path_ = dir + "/" + name;
  if (absl::EndsWith(name, ".index.json")) {
    absl::Status status = checkpoint->OpenSharded(checkpoint->weights_path_);
    if (!status.ok()) return status;
    return checkpoint;
  }
  auto file = SafetensorsFile::Open(checkpoint->weights_path_);
  if (!file.ok()) return file.status();
  for (const auto& entry : (*file)->tensors()) {
    checkpoint->owner_[entry.first] = file->get();
  }
  checkpoint->files_.push_back(std::move(*file));
  return checkpoint;
}

absl::Status Checkpoint::OpenSharded(const std::string& index_path) {
  auto index = ReadJsonFile(index_path);
  if (!index.ok()) return index.status();
  const auto map_it = index->find("weight_map");
  if (!index->is_object() || map_it == index->end() || !map_it->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(index_path, ": missing object 'weight_map'"));
  }
  std::map<std::string, const SafetensorsFile*> shards;
  for (const auto& [tensor, shard_json] : map_it->items()) {
    if (!shard_json.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          index_path, ": tensor '", tensor, "': shard name must be a string"));
    }
    const std::string shard = shard_json.get<std::string>();
    if (!IsSafeRelativePath(shard)) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": tensor '", tensor, "': shard '", shard,
                       "' is not a file inside the checkpoint directory"));
    }
    auto it = shards.find(shard);
    if (it == shards.end()) {
      auto file = SafetensorsFile::Open(dir_ + "/" + shard);
      if (!file.ok()) return file.status();
      it = shards.emplace(shard, file->get()).first;
      files_.push_back(std::move(*file));
    }
    if (it->second->tensors().count(tensor) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": tensor '", tensor, "' is listed in ",
                       "the index but missing from ", it->second->path()));
    }
    owner_[tensor] = it->second;
  }
  // Tensors a shard holds beyond the index still count for CheckAllLoaded.
  for (const auto& file : files_) {
    for (const auto& entry : file->tensors()) {
      owner_.emplace(entry.first, file.get());
    }
  }
  return absl::OkStatus();
}

bool Checkpoint::Has(const std::string& name) const {
  return owner_.count(name) != 0;
}

std::string Checkpoint::DType(const std::string& name) const {
  const auto it = owner_.find(name);
  if (it == owner_.end()) return "";
  return TensorDTypeName(it->second->tensors().at(name).dtype);
}

absl::StatusOr<std::vector<int64_t>> Checkpoint::Shape(
    const std::string& name) const {
  const auto it = owner_.find(name);
  if (it == owner_.end()) {
    return absl::NotFoundError(
        absl::StrCat(weights_path_, ": missing tensor '", name, "'"));
  }
  return it->second->tensors().at(name).shape;
}

std::vector<std::string> Checkpoint::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(owner_.size());
  for (const auto& entry : owner_) names.push_back(entry.first);
  return names;
}

absl::StatusOr<Weight> Checkpoint::Load(const std::string& name,
                                        const std::vector<int64_t>& shape) {
  const auto it = owner_.find(name);
  if (it == owner_.end()) {
    return absl::NotFoundError(absl::StrCat(weights_path_, ": missing tensor '",
                                            name, "' (expected shape ",
                                            ShapeString(shape), ")"));
  }
  const SafetensorsFile& file = *it->second;
  const TensorEntry& entry = file.tensors().at(name);
  if (entry.shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.path(), ": tensor '", name, "' has shape ",
        ShapeString(entry.shape), ", expected ", ShapeString(shape)));
  }
  Weight weight;
  weight.shape_ = entry.shape;
  switch (entry.dtype) {
    case TensorDType::kF32:
      weight.size_ = entry.nbytes / 4;
      if (reinterpret_cast<uintptr_t>(entry.data) % alignof(float) == 0) {
        weight.view_ = reinterpret_cast<const float*>(entry.data);
      } else {
        weight.owned_.resize(weight.size_);
        std::memcpy(weight.owned_.data(), entry.data, entry.nbytes);
      }
      break;
    case TensorDType::kBF16:
      weight.size_ = entry.nbytes / 2;
      weight.owned_.resize(weight.size_);
      for (size_t i = 0; i < weight.size_; ++i) {
        weight.owned_[i] = Bf16ToF32(ReadU16(entry.data + 2 * i));
      }
      break;
    case TensorDType::kF16:
      weight.size_ = entry.nbytes / 2;
      weight.owned_.resize(weight.size_);
      for (size_t i = 0; i < weight.size_; ++i) {
        weight.owned_[i] = F16ToF32(ReadU16(entry.data + 2 * i));
      }
      break;
  }
  // A NaN or infinity in the weights would make every output garbage (or
  // token 0 forever) with status OK; refuse to serve it.
  const float* values = weight.data();
  for (size_t i = 0; i < weight.size_; ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.path(), ": tensor '", name, "' holds ",
                       std::isnan(values[i]) ? "NaN" : "an infinity",
                       " at element ", i, "; the weights are corrupt"));
    }
  }
  loaded_.insert(name);
  return weight;
}

absl::Status Checkpoint::CheckAllLoaded(
    const std::set<std::string>& ignored) const {
  std::vector<std::string> unexpected;
  for (const auto& entry : owner_) {
    if (loaded_.count(entry.first) == 0 && ignored.count(entry.first) == 0) {
      unexpected.push_back(absl::StrCat("'", entry.first, "'"));
    }
  }
  if (unexpected.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("unexpected tensor", unexpected.size() > 1 ? "s " : " ",
                   absl::StrJoin(unexpected, ", "), " in ", weights_path_,
                   " (not used by the model)"));
}

std::string Checkpoint::WeightsDType() const {
  std::string common;
  for (const auto& entry : owner_) {
    std::string dtype =
        TensorDTypeName(entry.second->tensors().at(entry.first).dtype);
    for (char& c : dtype) c = static_cast<char>(std::tolower(c));
    if (common.empty()) {
      common = dtype;
    } else if (common != dtype) {
      return "mixed";
    }
  }
  return common;
}

}  // namespace slabserve
