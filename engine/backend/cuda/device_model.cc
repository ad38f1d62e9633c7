#include "engine/backend/cuda/device_model.h"

#include "absl/strings/str_cat.h"
#include "engine/backend/cuda/griffin_device.h"
#include "engine/backend/cuda/srm_device.h"
#include "engine/io/checkpoint.h"

namespace slabserve::cuda {

absl::StatusOr<std::unique_ptr<DeviceModel>> LoadDeviceModel(
    const DeviceModelOptions& options, cudaStream_t stream) {
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint =
      Checkpoint::Open(options.dir, options.weights_file);
  if (!checkpoint.ok()) return checkpoint.status();
  absl::StatusOr<std::string> model_type =
      (*checkpoint)->config().String("model_type");
  if (!model_type.ok()) return model_type.status();
  if (*model_type == "recurrent_gemma") {
    return LoadDeviceGriffin(**checkpoint, options.weights, stream);
  }
  if (*model_type == "srm") {
    return LoadDeviceSrm(**checkpoint, options.weights, stream);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(options.dir, ": model_type \"", *model_type,
                   "\" has no CUDA implementation"));
}

}  // namespace slabserve::cuda
