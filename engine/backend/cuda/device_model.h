// A model's forward pass on a CUDA device: weights uploaded once, state slabs
// in device memory with the same layout as the CPU model's StateLayout()
// (same slabs, same row sizes, f32), activations in grow-only device
// buffers. Everything is enqueued on one stream; nothing synchronizes.
#ifndef SLABSERVE_ENGINE_BACKEND_CUDA_DEVICE_MODEL_H_
#define SLABSERVE_ENGINE_BACKEND_CUDA_DEVICE_MODEL_H_

#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/model_kernels.h"

namespace slabserve::cuda {

// Sizes that the backend and benchmarks need without the CPU model.
struct DeviceModelShape {
  int vocab_size = 0;
  std::vector<size_t> slab_row_bytes;  // per slot, in StateLayout order
  int64_t matmul_params = 0;  // weights every token multiplies (no head)
  int64_t head_params = 0;    // the LM head, per row that wants logits
  int attention_layers = 0;
  int attention_width = 0;  // query heads × head_dim
  int64_t kv_width = 0;     // key (and value) floats per position
  int window = 0;
};

// One device array per state slab: [capacity, row] floats.
struct DeviceSlabs {
  std::vector<float*> slabs;
};

class DeviceModel {
 public:
  virtual ~DeviceModel() = default;
  virtual const DeviceModelShape& shape() const = 0;
  // Runs `batch` (in device memory) through the model, advancing each
  // chunk's slot state, and writes the logits of the `head_count` rows
  // listed in head_rows (device) to logits ([head_count, vocab]). Positions
  // live on the host: the caller advances them.
  virtual absl::Status Forward(const DeviceBatch& batch, const int* head_rows,
                               int head_count, DeviceSlabs& state,
                               float* logits) = 0;
};

struct DeviceModelOptions {
  std::string dir;           // model directory (config.json, safetensors)
  std::string weights_file;  // as LoadOptions::weights_file
  // Projection weights on the device: F32, or BF16 with F32 accumulation.
  GemmType weights = GemmType::kF32;
};

// Griffin/Hawk ("recurrent_gemma") or SRM ("srm"), by config.json.
absl::StatusOr<std::unique_ptr<DeviceModel>> LoadDeviceModel(
    const DeviceModelOptions& options, cudaStream_t stream);

}  // namespace slabserve::cuda

#endif  // SLABSERVE_ENGINE_BACKEND_CUDA_DEVICE_MODEL_H_
