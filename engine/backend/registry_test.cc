#include "engine/backend/registry.h"

#include "engine/models/registry.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace {

TEST(BackendRegistryTest, CpuAndAutoWorkCudaAndUnknownNamesAreErrors) {
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadModel("tests/golden/griffin_tiny");
  ASSERT_TRUE(model.ok()) << model.status();
  for (const char* name : {"cpu", "auto"}) {
    auto backend = CreateBackend(name, model->get(), size_t{16} << 20);
    ASSERT_TRUE(backend.ok()) << name << ": " << backend.status();
    EXPECT_GT((*backend)->capacity(), 0);
  }
  auto cuda = CreateBackend("cuda", model->get(), size_t{16} << 20);
  EXPECT_EQ(cuda.status().code(), absl::StatusCode::kFailedPrecondition);
  // Without --config=cuda: not in this build; with it, on this machine: no
  // device (the tests that need one live in cuda_backend_test).
  EXPECT_NE(cuda.status().message().find("backend 'cuda' is not available"),
            std::string::npos)
      << cuda.status();
  auto tpu = CreateBackend("tpu", model->get(), size_t{16} << 20);
  EXPECT_EQ(tpu.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tpu.status().message().find("backend \"tpu\" is not one of"),
            std::string::npos)
      << tpu.status();
  EXPECT_EQ(CheckBackendAvailable("cuda").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(CheckBackendAvailable("auto").ok());
  EXPECT_TRUE(IsBackendName("auto"));
  EXPECT_FALSE(IsBackendName("gpu"));
}

}  // namespace
}  // namespace slabserve
