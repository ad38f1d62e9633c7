#include "engine/backend/registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/backend/cpu_backend.h"

namespace slabserve {

bool IsBackendName(absl::string_view name) {
  for (absl::string_view known : kBackendNames) {
    if (name == known) return true;
  }
  return false;
}

absl::Status CheckBackendAvailable(absl::string_view name) {
  if (name == "cuda") {
    return absl::FailedPreconditionError(
        "backend 'cuda' is not available in this build: slabserve has no "
        "CUDA backend yet; use backend \"cpu\" or \"auto\"");
  }
  if (name != "cpu" && name != "auto") {
    return absl::InvalidArgumentError(
        absl::StrCat("backend \"", name, "\" is not one of ",
                     absl::StrJoin(kBackendNames, ", ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(
    absl::string_view name, Model* model, size_t state_budget_bytes,
    int block_tokens) {
  if (absl::Status status = CheckBackendAvailable(name); !status.ok()) {
    return status;
  }
  absl::StatusOr<std::unique_ptr<CpuBackend>> cpu =
      CpuBackend::Create(model, state_budget_bytes, block_tokens);
  if (!cpu.ok()) return cpu.status();
  return std::unique_ptr<Backend>(*std::move(cpu));
}

}  // namespace slabserve
