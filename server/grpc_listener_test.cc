#include "server/grpc_listener.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"

namespace slabserve::server {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

// A channel with a connection of its own (no subchannel shared with other
// channels to the same address).
std::shared_ptr<grpc::Channel> NewChannel(int port) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), args);
}

// The server's health over `channel`, or minus the call's status code.
int Check(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, HealthCheckRequest(), &response);
  return status.ok() ? response.status() : -status.error_code();
}

TEST(GrpcListenerTest, ClosingThePortRefusesNewConnectionsOnly) {
  absl::StatusOr<std::unique_ptr<GrpcListener>> listener =
      GrpcListener::Listen("127.0.0.1", 0);
  ASSERT_TRUE(listener.ok()) << listener.status();
  const int port = (*listener)->port();
  ASSERT_GT(port, 0);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  // Any callback service: a server needs one (or a polled queue) to start.
  grpc::CallbackGenericService unimplemented;
  builder.RegisterCallbackGenericService(&unimplemented);
  auto acceptor = builder.experimental().AddExternalConnectionAcceptor(
      grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
      grpc::InsecureServerCredentials());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  (*listener)->Start(std::move(acceptor));

  std::shared_ptr<grpc::Channel> open = NewChannel(port);
  EXPECT_EQ(Check(open), HealthCheckResponse::SERVING);
  (*listener)->Close();
  EXPECT_EQ(Check(NewChannel(port)), -grpc::StatusCode::UNAVAILABLE);
  // The connection accepted before the port closed is still served.
  EXPECT_EQ(Check(open), HealthCheckResponse::SERVING);
  server->Shutdown();
}

TEST(GrpcListenerTest, PortInUseIsRefused) {
  absl::StatusOr<std::unique_ptr<GrpcListener>> first =
      GrpcListener::Listen("127.0.0.1", 0);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<GrpcListener>> second =
      GrpcListener::Listen("127.0.0.1", (*first)->port());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr("in use"));
}

}  // namespace
}  // namespace slabserve::server
