// Picks the backend named by the server's `backend` setting.
#ifndef SLABSERVE_ENGINE_BACKEND_REGISTRY_H_
#define SLABSERVE_ENGINE_BACKEND_REGISTRY_H_

#include <cstddef>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/backend/backend.h"
#include "engine/models/model.h"

namespace slabserve {

// The names CreateBackend knows, for validating configurations.
inline constexpr absl::string_view kBackendNames[] = {"auto", "cpu", "cuda"};

bool IsBackendName(absl::string_view name);

// OK when this build can create backend `name`: FAILED_PRECONDITION for
// "cuda" (not available in this build), INVALID_ARGUMENT for an unknown
// name. Cheap, so a server can check before loading weights.
absl::Status CheckBackendAvailable(absl::string_view name);

// "cpu" and "auto" give a CpuBackend (this build has no other); otherwise
// CheckBackendAvailable's error. `block_tokens` > 0 overrides the model's
// tokens per block of per-token state. `model` must outlive the backend.
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(
    absl::string_view name, Model* model, size_t state_budget_bytes,
    int block_tokens = 0);

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_BACKEND_REGISTRY_H_
