// A gRPC end-to-end test suite sharing one slabserve child: Derived defines
// `static std::vector<std::string> ServerFlags()`; every test gets a stub
// on a connection of its own.
#ifndef SLABSERVE_TESTS_SERVER_SUITE_H_
#define SLABSERVE_TESTS_SERVER_SUITE_H_

#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "slabserve/v1/slabserve.grpc.pb.h"
#include "tests/server_process.h"

namespace slabserve::testing {

template <typename Derived>
class ServerSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<ServerProcess>> started =
        ServerProcess::Start(Derived::ServerFlags());
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = started->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Slabserve::NewStub(server_->NewChannel());
  }

  v1::ModelInfo ModelInfo() {
    grpc::ClientContext context;
    v1::ModelInfo info;
    EXPECT_TRUE(stub_->GetModelInfo(&context, {}, &info).ok());
    return info;
  }

  static inline ServerProcess* server_ = nullptr;
  std::unique_ptr<v1::Slabserve::Stub> stub_;
};

}  // namespace slabserve::testing

#endif  // SLABSERVE_TESTS_SERVER_SUITE_H_
