#include "engine/backend/registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/backend/cpu_backend.h"

#if defined(SLABSERVE_WITH_CUDA)
#include "engine/backend/cuda_backend.h"
#include "kernels/cuda/device.h"
#endif

namespace slabserve {
namespace {

// OK when a CUDA backend can start here.
absl::Status CudaAvailable() {
#if defined(SLABSERVE_WITH_CUDA)
  std::string reason;
  if (cuda::DeviceCount(&reason) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("backend 'cuda' is not available: no CUDA device (",
                     reason, "); use backend \"cpu\" or \"auto\""));
  }
  return absl::OkStatus();
#else
  return absl::FailedPreconditionError(
      "backend 'cuda' is not available in this build: slabserve was built "
      "without --config=cuda; use backend \"cpu\" or \"auto\"");
#endif
}

absl::StatusOr<std::unique_ptr<Backend>> CreateCuda(
    Model* model, size_t state_budget_bytes, const BackendOptions& options) {
#if defined(SLABSERVE_WITH_CUDA)
  CudaBackendOptions cuda_options;
  cuda_options.model.dir = options.model_dir;
  cuda_options.model.weights_file = options.weights_file;
  cuda_options.model.weights =
      options.bf16_weights ? cuda::GemmType::kBf16 : cuda::GemmType::kF32;
  cuda_options.graph_max_batch = options.cuda_graph_max_batch;
  absl::StatusOr<std::unique_ptr<CudaBackend>> backend =
      CudaBackend::Create(model, state_budget_bytes, cuda_options);
  if (!backend.ok()) return backend.status();
  return std::unique_ptr<Backend>(*std::move(backend));
#else
  return CudaAvailable();
#endif
}

}  // namespace

bool IsBackendName(absl::string_view name) {
  for (absl::string_view known : kBackendNames) {
    if (name == known) return true;
  }
  return false;
}

absl::Status CheckBackendAvailable(absl::string_view name) {
  if (name == "cuda") return CudaAvailable();
  if (name != "cpu" && name != "auto") {
    return absl::InvalidArgumentError(
        absl::StrCat("backend \"", name, "\" is not one of ",
                     absl::StrJoin(kBackendNames, ", ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(
    absl::string_view name, Model* model, size_t state_budget_bytes,
    const BackendOptions& options) {
  if (absl::Status status = CheckBackendAvailable(name); !status.ok()) {
    return status;
  }
  const bool cuda = name == "cuda" || (name == "auto" && CudaAvailable().ok() &&
                                       !options.model_dir.empty());
  if (cuda) {
    if (options.model_dir.empty()) {
      return absl::InvalidArgumentError(
          "backend 'cuda' needs the model directory to upload weights from");
    }
    return CreateCuda(model, state_budget_bytes, options);
  }
  absl::StatusOr<std::unique_ptr<CpuBackend>> cpu =
      CpuBackend::Create(model, state_budget_bytes, options.block_tokens);
  if (!cpu.ok()) return cpu.status();
  return std::unique_ptr<Backend>(*std::move(cpu));
}

}  // namespace slabserve
