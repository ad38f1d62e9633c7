// Griffin/Hawk's device forward pass (see device_model.h).
#ifndef SLABSERVE_ENGINE_BACKEND_CUDA_GRIFFIN_DEVICE_H_
#define SLABSERVE_ENGINE_BACKEND_CUDA_GRIFFIN_DEVICE_H_

#include <cuda_runtime.h>

#include <memory>

#include "absl/status/statusor.h"
#include "engine/backend/cuda/device_model.h"
#include "engine/backend/cuda/weight_source.h"
#include "engine/io/checkpoint.h"
#include "engine/models/griffin_config.h"

namespace slabserve::cuda {

// From any weight source (RandomWeights: a checkpoint-shaped model for
// benchmarks, with `config` e.g. RecurrentGemma-2B's).
absl::StatusOr<std::unique_ptr<DeviceModel>> CreateDeviceGriffin(
    const GriffinConfig& config, WeightSource& source, GemmType type,
    cudaStream_t stream);

absl::StatusOr<std::unique_ptr<DeviceModel>> LoadDeviceGriffin(
    Checkpoint& checkpoint, GemmType type, cudaStream_t stream);

}  // namespace slabserve::cuda

#endif  // SLABSERVE_ENGINE_BACKEND_CUDA_GRIFFIN_DEVICE_H_
