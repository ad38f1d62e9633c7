// Picks the backend named by the server's `backend` setting.
#ifndef SLABSERVE_ENGINE_BACKEND_REGISTRY_H_
#define SLABSERVE_ENGINE_BACKEND_REGISTRY_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/backend/backend.h"
#include "engine/models/model.h"

namespace slabserve {

// The names CreateBackend knows, for validating configurations.
inline constexpr absl::string_view kBackendNames[] = {"auto", "cpu", "cuda"};

bool IsBackendName(absl::string_view name);

// What a device backend needs beyond the loaded model: where its weights
// come from (the CUDA backend uploads them from the checkpoint itself).
struct BackendOptions {
  std::string model_dir;
  std::string weights_file;
  bool bf16_weights = false;  // cuda: BF16 projections, F32 accumulation
  // > 0: overrides the model's tokens per block of per-token state (cpu).
  int block_tokens = 0;
  // cuda: largest decode batch run as a CUDA graph; 0: no graphs.
  int cuda_graph_max_batch = 1024;
};

// OK when this build can create backend `name`: FAILED_PRECONDITION for
// "cuda" in a build without --config=cuda ("not available in this build")
// or on a machine without a CUDA device, INVALID_ARGUMENT for an unknown
// name. Cheap, so a server can check before loading weights.
absl::Status CheckBackendAvailable(absl::string_view name);

// "cpu" gives a CpuBackend, "cuda" a CudaBackend (in a --config=cuda build,
// with a device), "auto" the CudaBackend when a device is usable and
// options name the model directory, the CpuBackend otherwise; else
// CheckBackendAvailable's error. `model` must outlive the backend.
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(
    absl::string_view name, Model* model, size_t state_budget_bytes,
    const BackendOptions& options = {});

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_BACKEND_REGISTRY_H_
