// Where a device model's weights come from: a checkpoint (read on the host,
// transformed, uploaded once) or seeded random values generated on the
// device itself (benchmarks of checkpoint-sized models without a file).
#ifndef SLABSERVE_ENGINE_BACKEND_CUDA_WEIGHT_SOURCE_H_
#define SLABSERVE_ENGINE_BACKEND_CUDA_WEIGHT_SOURCE_H_

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/backend/cuda/device_buffer.h"
#include "engine/backend/cuda/device_linear.h"
#include "engine/io/checkpoint.h"

namespace slabserve::cuda {

// How a stored vector becomes what the kernels read.
enum class VectorKind {
  kPlain,
  kNormOffset,  // RMSNorm offset w → 1 + w (f32)
  kConvTaps,    // conv_1d.weight [R, 1, K] → taps [K, R]
  kLogDecay,    // Λ → −8·softplus(Λ)
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // An f32 device tensor of `shape` (as stored), transformed per `kind`.
  virtual absl::StatusOr<DeviceBuffer> Vector(const std::string& name,
                                              const std::vector<int64_t>& shape,
                                              VectorKind kind) = 0;
  // One linear whose [Σ rows, in] weight stacks the weights of `prefixes`
  // (PREFIX.weight, [rows[i], in]) and, with `bias`, their PREFIX.bias.
  virtual absl::StatusOr<DeviceLinear> Linear(
      const std::vector<std::string>& prefixes, const std::vector<int>& rows,
      int in, bool bias, GemmType type) = 0;
  // An error naming any checkpoint tensor never asked for.
  virtual absl::Status Finish() = 0;
};

// `ignored`: tensors a checkpoint may hold that the device model skips.
std::unique_ptr<WeightSource> CheckpointWeights(Checkpoint& checkpoint,
                                                std::set<std::string> ignored);
// Uniform values filled on the device from Philox keyed by `seed`: linear
// weights ±1/sqrt(in), biases ±0.01, norms 1 ± 0.1, decays in a stable
// range. The stream is synchronized by Finish.
std::unique_ptr<WeightSource> RandomWeights(uint64_t seed, cudaStream_t stream);

}  // namespace slabserve::cuda

#endif  // SLABSERVE_ENGINE_BACKEND_CUDA_WEIGHT_SOURCE_H_
