// SRM's device forward pass (see device_model.h).
#ifndef SLABSERVE_ENGINE_BACKEND_CUDA_SRM_DEVICE_H_
#define SLABSERVE_ENGINE_BACKEND_CUDA_SRM_DEVICE_H_

#include <cuda_runtime.h>

#include <memory>

#include "absl/status/statusor.h"
#include "engine/backend/cuda/device_model.h"
#include "engine/io/checkpoint.h"

namespace slabserve::cuda {

absl::StatusOr<std::unique_ptr<DeviceModel>> LoadDeviceSrm(
    Checkpoint& checkpoint, GemmType type, cudaStream_t stream);

}  // namespace slabserve::cuda

#endif  // SLABSERVE_ENGINE_BACKEND_CUDA_SRM_DEVICE_H_
