#include "engine/backend/cuda/weight_source.h"

#include <cmath>
#include <utility>

#include "kernels/cuda/model_kernels.h"
#include "kernels/math/elementwise.h"

namespace slabserve::cuda {
namespace {

int64_t Elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

class CheckpointSource : public WeightSource {
 public:
  CheckpointSource(Checkpoint& checkpoint, std::set<std::string> ignored)
      : checkpoint_(checkpoint), ignored_(std::move(ignored)) {}

  absl::StatusOr<DeviceBuffer> Vector(const std::string& name,
                                      const std::vector<int64_t>& shape,
                                      VectorKind kind) override {
    absl::StatusOr<std::vector<float>> host = Floats(name, shape);
    if (!host.ok()) return host.status();
    std::vector<float>& v = *host;
    if (kind == VectorKind::kNormOffset) {
      for (float& x : v) x = 1.0f + x;
    } else if (kind == VectorKind::kLogDecay) {
      for (float& x : v) x = math::RgLruLogDecay(x);
    } else if (kind == VectorKind::kConvTaps) {
      const int64_t R = shape[0], K = shape[2];
      std::vector<float> taps(v.size());
      for (int64_t ch = 0; ch < R; ++ch) {
        for (int64_t k = 0; k < K; ++k) taps[k * R + ch] = v[ch * K + k];
      }
      v = std::move(taps);
    }
    return UploadFloats(v.data(), v.size());
  }

  absl::StatusOr<DeviceLinear> Linear(const std::vector<std::string>& prefixes,
                                      const std::vector<int>& rows, int in,
                                      bool bias, GemmType type) override {
    std::vector<float> weight, biases;
    int out = 0;
    for (size_t i = 0; i < prefixes.size(); ++i) {
      absl::StatusOr<std::vector<float>> w =
          Floats(prefixes[i] + ".weight", {rows[i], in});
      if (!w.ok()) return w.status();
      weight.insert(weight.end(), w->begin(), w->end());
      if (bias) {
        absl::StatusOr<std::vector<float>> b =
            Floats(prefixes[i] + ".bias", {rows[i]});
        if (!b.ok()) return b.status();
        biases.insert(biases.end(), b->begin(), b->end());
      }
      out += rows[i];
    }
    return UploadLinear(weight.data(), out, in, bias ? biases.data() : nullptr,
                        type);
  }

  absl::Status Finish() override {
    return checkpoint_.CheckAllLoaded(ignored_);
  }

 private:
  absl::StatusOr<std::vector<float>> Floats(const std::string& name,
                                            const std::vector<int64_t>& shape) {
    absl::StatusOr<Weight> w = checkpoint_.Load(name, shape);
    if (!w.ok()) return w.status();
    return std::vector<float>(w->data(), w->data() + w->size());
  }

  Checkpoint& checkpoint_;
  std::set<std::string> ignored_;
};

class RandomSource : public WeightSource {
 public:
  RandomSource(uint64_t seed, cudaStream_t stream)
      : seed_(seed), stream_(stream) {}

  absl::StatusOr<DeviceBuffer> Vector(const std::string& name,
                                      const std::vector<int64_t>& shape,
                                      VectorKind kind) override {
    float low = -0.01f, high = 0.01f;
    if (kind == VectorKind::kNormOffset) {
      low = 0.9f;
      high = 1.1f;
    } else if (kind == VectorKind::kConvTaps) {
      low = -0.5f;
      high = 0.5f;
    } else if (kind == VectorKind::kLogDecay) {
      low = -2.0f;
      high = -0.01f;
    }
    return Filled(Elements(shape), low, high);
  }

  absl::StatusOr<DeviceLinear> Linear(const std::vector<std::string>& prefixes,
                                      const std::vector<int>& rows, int in,
                                      bool bias, GemmType type) override {
    int out = 0;
    for (int r : rows) out += r;
    const int64_t n = static_cast<int64_t>(out) * in;
    const float scale = 1.0f / std::sqrt(static_cast<float>(in));
    DeviceLinear linear;
    if (type == GemmType::kBf16) {
      SLAB_RETURN_IF_ERROR(linear.weight_storage.Reserve(sizeof(uint16_t) * n));
      SLAB_CUDA_RETURN_IF_ERROR(
          FillUniformBf16(linear.weight_storage.get<uint16_t>(), n, -scale,
                          scale, seed_++, stream_));
    } else {
      absl::StatusOr<DeviceBuffer> w = Filled(n, -scale, scale);
      if (!w.ok()) return w.status();
      linear.weight_storage = *std::move(w);
    }
    linear.weight = {type, linear.weight_storage.get(), out, in};
    if (bias) {
      absl::StatusOr<DeviceBuffer> b = Filled(out, -0.01f, 0.01f);
      if (!b.ok()) return b.status();
      linear.bias_storage = *std::move(b);
      linear.bias = linear.bias_storage.get<float>();
    }
    return linear;
  }

  absl::Status Finish() override {
    return CudaStatus(cudaStreamSynchronize(stream_), "filling weights");
  }

 private:
  absl::StatusOr<DeviceBuffer> Filled(int64_t n, float low, float high) {
    DeviceBuffer buffer;
    SLAB_RETURN_IF_ERROR(buffer.Reserve(sizeof(float) * n));
    SLAB_CUDA_RETURN_IF_ERROR(
        FillUniform(buffer.get<float>(), n, low, high, seed_++, stream_));
    return buffer;
  }

  uint64_t seed_;
  cudaStream_t stream_;
};

}  // namespace

std::unique_ptr<WeightSource> CheckpointWeights(Checkpoint& checkpoint,
                                                std::set<std::string> ignored) {
  return std::make_unique<CheckpointSource>(checkpoint, std::move(ignored));
}

std::unique_ptr<WeightSource> RandomWeights(uint64_t seed,
                                            cudaStream_t stream) {
  return std::make_unique<RandomSource>(seed, stream);
}

}  // namespace slabserve::cuda
