// End-to-end operations of the slabserve binary: health and reflection,
// metrics, back-pressure (a full queue), graceful drain on SIGTERM, a model
// without a tokenizer, and start-up errors.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/e2e_util.h"
#include "tests/server_process.h"

namespace slabserve::testing {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr char kGriffin[] = "--model=tests/golden/griffin_tiny";

std::unique_ptr<ServerProcess> StartOrDie(
    const std::vector<std::string>& flags) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start(flags);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// The health of `service` ("" = the whole server), or the RPC's error code
// as a negative number.
int HealthStatus(const std::shared_ptr<grpc::Channel>& channel,
                 const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  return status.ok() ? response.status() : -status.error_code();
}

v1::ModelInfo GetInfo(v1::Slabserve::Stub& stub) {
  grpc::ClientContext context;
  v1::ModelInfo info;
  EXPECT_TRUE(stub.GetModelInfo(&context, {}, &info).ok());
  return info;
}

TEST(ServerOpsTest, HealthReflectionAndMetricsAnswer) {
  // The backend named explicitly (the other tests take the default, auto).
  std::unique_ptr<ServerProcess> server =
      StartOrDie({kGriffin, "--backend=cpu"});
  ASSERT_NE(server, nullptr);
  std::shared_ptr<grpc::Channel> channel = server->NewChannel();
  EXPECT_EQ(HealthStatus(channel, ""), HealthCheckResponse::SERVING);
  EXPECT_EQ(HealthStatus(channel, "slabserve.v1.Slabserve"),
            HealthCheckResponse::SERVING);

  // Reflection lists the service and serves its file descriptor.
  auto reflection =
      grpc::reflection::v1alpha::ServerReflection::NewStub(channel);
  grpc::ClientContext context;
  auto stream = reflection->ServerReflectionInfo(&context);
  grpc::reflection::v1alpha::ServerReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<std::string> services;
  for (const auto& service : response.list_services_response().service()) {
    services.push_back(service.name());
  }
  EXPECT_THAT(services, ::testing::Contains("slabserve.v1.Slabserve"));
  EXPECT_THAT(services, ::testing::Contains("grpc.health.v1.Health"));
  request.set_file_containing_symbol("slabserve.v1.Slabserve");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_GE(response.file_descriptor_response().file_descriptor_proto_size(),
            1);
  google::protobuf::FileDescriptorProto file;
  ASSERT_TRUE(file.ParseFromString(
      response.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(file.name(), "slabserve/v1/slabserve.proto");
  ASSERT_EQ(file.service_size(), 1);
  EXPECT_EQ(file.service(0).name(), "Slabserve");
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  // One request, then every metric the dashboards use is exposed.
  auto stub = v1::Slabserve::NewStub(channel);
  ASSERT_TRUE(Generate(*stub, GreedyRequest({2, 9, 10}, 5)).status.ok());
  std::string health = HttpGet(server->metrics_port(), "/healthz");
  EXPECT_THAT(health, HasSubstr("200 OK"));
  std::string metrics = HttpGet(server->metrics_port(), "/metrics");
  for (const char* name : {
           "slabserve_requests_total{status=\"ok\"} 1",
           "slabserve_prompt_tokens_total 3",
           "slabserve_generated_tokens_total 5",
           "slabserve_time_to_first_token_seconds_count 1",
           "slabserve_inter_token_latency_seconds_count 4",
           "slabserve_e2e_latency_seconds_count 1",
           "slabserve_queue_time_seconds_count 1",
           "slabserve_step_time_seconds_count",
           "slabserve_batch_size_count",
           "slabserve_running 0",
           "slabserve_waiting 0",
           "slabserve_free_slots",
           "slabserve_slots_in_use 0",
           "slabserve_state_memory_bytes 0",
       }) {
    EXPECT_THAT(metrics, HasSubstr(name));
  }
  EXPECT_GE(MetricValue(metrics, "slabserve_step_time_seconds_count"), 5);
}

TEST(ServerOpsTest, FullQueueIsResourceExhausted) {
  // First learn the size of one sequence's state, then give a server room
  // for exactly one slot and one waiting 2,000-token prompt (8,000 bytes of
  // ids plus a few hundred of bookkeeping) but not two.
  int64_t bytes_per_sequence = 0;
  {
    std::unique_ptr<ServerProcess> probe = StartOrDie({kGriffin});
    ASSERT_NE(probe, nullptr);
    auto stub = v1::Slabserve::NewStub(probe->NewChannel());
    bytes_per_sequence = GetInfo(*stub).state_bytes_per_sequence();
  }
  ASSERT_GT(bytes_per_sequence, 0);
  std::unique_ptr<ServerProcess> server = StartOrDie(
      {kGriffin, absl::StrCat("--state_memory=", bytes_per_sequence * 3 / 2),
       "--max_waiting_memory=12000", "--max_tokens_limit=1000000"});
  ASSERT_NE(server, nullptr);
  auto stub = v1::Slabserve::NewStub(server->NewChannel());
  ASSERT_EQ(GetInfo(*stub).slot_capacity(), 1);

  grpc::ClientContext running_context;
  auto running =
      stub->Generate(&running_context, GreedyRequest({2, 3, 4}, 1000000));
  v1::GenerateChunk chunk;
  ASSERT_TRUE(running->Read(&chunk));
  grpc::ClientContext waiting_context;
  std::vector<int32_t> long_prompt = {2};
  while (long_prompt.size() < 2000) {
    long_prompt.push_back(4 + long_prompt.size() % 500);
  }
  auto waiting =
      stub->Generate(&waiting_context, GreedyRequest(long_prompt, 4));
  for (int i = 0; i < 500 && GetInfo(*stub).waiting_requests() < 1; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(GetInfo(*stub).waiting_requests(), 1);

  GenerateResult rejected = Generate(*stub, GreedyRequest(long_prompt, 4));
  EXPECT_EQ(rejected.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(rejected.status.error_message(),
              HasSubstr("waiting queue is full"));

  // Freeing the slot lets the waiting request run to the end.
  running_context.TryCancel();
  while (running->Read(&chunk)) {
  }
  EXPECT_EQ(running->Finish().error_code(), grpc::StatusCode::CANCELLED);
  int tokens = 0;
  while (waiting->Read(&chunk)) tokens += chunk.token_ids_size();
  EXPECT_TRUE(waiting->Finish().ok());
  EXPECT_EQ(tokens, 4);
  EXPECT_THAT(HttpGet(server->metrics_port(), "/metrics"),
              HasSubstr("slabserve_requests_total{status=\"resource_"
                        "exhausted\"} 1"));
}

TEST(ServerOpsTest, SigtermDrainsInFlightStreamsThenExitsZero) {
  // The port stays open past the grace period, so the checks below can
  // reach the draining server on a new call.
  std::unique_ptr<ServerProcess> server =
      StartOrDie({kGriffin, "--drain_grace_seconds=2",
                  "--drain_listen_seconds=3", "--max_tokens_limit=1000000"});
  ASSERT_NE(server, nullptr);
  std::shared_ptr<grpc::Channel> channel = server->NewChannel();
  auto stub = v1::Slabserve::NewStub(channel);
  GoldenCase golden = LoadGoldenCases("tests/golden/griffin_tiny").at(1);

  // Five streams that finish within the grace period, and one that never
  // would (its client does not read until the end).
  constexpr int kFinite = 5;
  constexpr int kTokens = 200;
  struct Stream {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::GenerateChunk>> reader;
    std::vector<int32_t> ids;
    v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
    void Add(const v1::GenerateChunk& chunk) {
      ids.insert(ids.end(), chunk.token_ids().begin(), chunk.token_ids().end());
      if (chunk.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
        finish = chunk.finish_reason();
      }
    }
  };
  std::vector<std::unique_ptr<Stream>> streams;
  for (int i = 0; i <= kFinite; ++i) {
    auto stream = std::make_unique<Stream>();
    int max_tokens = i < kFinite ? kTokens : 1000000;
    stream->reader = stub->Generate(
        &stream->context, GreedyRequest(golden.prompt_ids, max_tokens));
    v1::GenerateChunk chunk;
    // Admitted and running; on a busy machine the first chunk may already
    // hold every token and the finish.
    ASSERT_TRUE(stream->reader->Read(&chunk));
    stream->Add(chunk);
    streams.push_back(std::move(stream));
  }

  ASSERT_EQ(kill(server->pid(), SIGTERM), 0);
  std::string health;
  for (int i = 0; i < 200; ++i) {
    health = HttpGet(server->metrics_port(), "/healthz");
    if (absl::StrContains(health, "503")) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_THAT(health, HasSubstr("503 Service Unavailable"));
  EXPECT_EQ(HealthStatus(channel, ""), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(HealthStatus(channel, "slabserve.v1.Slabserve"),
            HealthCheckResponse::NOT_SERVING);
  GenerateResult refused = Generate(*stub, GreedyRequest({2, 3}, 4));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(refused.status.error_message(), HasSubstr("shutting down"));

  for (int i = 0; i <= kFinite; ++i) {
    Stream& stream = *streams[i];
    v1::GenerateChunk chunk;
    while (stream.reader->Read(&chunk)) stream.Add(chunk);
    grpc::Status status = stream.reader->Finish();
    if (i < kFinite) {
      // Nothing lost: every token, in order, then a clean end.
      EXPECT_TRUE(status.ok()) << i << ": " << status.error_message();
      EXPECT_EQ(stream.finish, v1::FINISH_REASON_LENGTH) << i;
      ASSERT_EQ(stream.ids.size(), static_cast<size_t>(kTokens)) << i;
      EXPECT_THAT(
          std::vector<int32_t>(stream.ids.begin(), stream.ids.begin() + 16),
          ElementsAreArray(golden.greedy_ids));
    } else {
      // Cut off when the grace period ran out, with a clear status.
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
      EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));
      EXPECT_GT(stream.ids.size(), 0u);
    }
  }
  EXPECT_EQ(server->WaitForExit(absl::Seconds(20)), std::optional<int>(0))
      << server->Log();
  EXPECT_THAT(server->Log(), HasSubstr("SIGTERM: draining"));
}

// By default the port closes on SIGTERM, so a gateway without active health
// checks gets "connection refused" and retries elsewhere, while streams in
// flight still run to their end.
TEST(ServerOpsTest, SigtermClosesThePortButFinishesInFlightStreams) {
  std::unique_ptr<ServerProcess> server = StartOrDie(
      {kGriffin, "--drain_grace_seconds=5", "--max_tokens_limit=1000000"});
  ASSERT_NE(server, nullptr);
  auto stub = v1::Slabserve::NewStub(server->NewChannel());
  // `endless`, unread, keeps the server draining through the checks below
  // (its flow-control window and stream buffer fill); `finite` must end well.
  constexpr int kTokens = 200;
  grpc::ClientContext endless_context, finite_context;
  auto endless =
      stub->Generate(&endless_context, GreedyRequest({2, 3, 4}, 1000000));
  auto finite =
      stub->Generate(&finite_context, GreedyRequest({2, 3, 4}, kTokens));
  v1::GenerateChunk chunk;
  ASSERT_TRUE(endless->Read(&chunk));
  ASSERT_TRUE(finite->Read(&chunk));
  int tokens = chunk.token_ids_size();

  ASSERT_EQ(kill(server->pid(), SIGTERM), 0);
  // A new connection is refused soon after the signal.
  int fresh = HealthCheckResponse::SERVING;
  for (int i = 0; i < 100 && fresh != -grpc::StatusCode::UNAVAILABLE; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    fresh = HealthStatus(server->NewChannel(), "");
  }
  EXPECT_EQ(fresh, -grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(HttpGet(server->metrics_port(), "/healthz"),
              HasSubstr("503 Service Unavailable"));

  while (finite->Read(&chunk)) tokens += chunk.token_ids_size();
  grpc::Status status = finite->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(tokens, kTokens);
  while (endless->Read(&chunk)) {
  }
  status = endless->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));
  EXPECT_EQ(server->WaitForExit(absl::Seconds(30)), std::optional<int>(0))
      << server->Log();
}

TEST(ServerOpsTest, ModelWithoutTokenizerTakesTokenIdsOnly) {
  std::unique_ptr<ServerProcess> server =
      StartOrDie({"--model=tests/golden/srm_tiny"});
  ASSERT_NE(server, nullptr);
  auto stub = v1::Slabserve::NewStub(server->NewChannel());
  v1::ModelInfo info = GetInfo(*stub);
  EXPECT_EQ(info.architecture(), "srm");
  EXPECT_FALSE(info.has_tokenizer());
  ASSERT_GT(info.max_sequence_length(), 0);

  for (const GoldenCase& c : LoadGoldenCases("tests/golden/srm_tiny")) {
    GenerateResult result = Generate(*stub, GreedyRequest(c.prompt_ids, 16));
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    EXPECT_THAT(result.completions.at(0).ids, ElementsAreArray(c.greedy_ids))
        << c.name;
    EXPECT_EQ(result.completions[0].text, "");
  }

  v1::GenerateRequest text;
  text.set_text("hello");
  text.set_max_tokens(4);
  GenerateResult no_tokenizer = Generate(*stub, text);
  EXPECT_EQ(no_tokenizer.status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(no_tokenizer.status.error_message(),
            "model has no tokenizer: send token_ids");

  v1::GenerateRequest stop = GreedyRequest({2, 3}, 4);
  stop.add_stop("x");
  EXPECT_THAT(Generate(*stub, stop).status.error_message(),
              HasSubstr("stop strings cannot be matched"));

  const int limit = info.max_sequence_length();
  std::vector<int32_t> too_long(limit + 1, 5);
  GenerateResult long_prompt = Generate(*stub, GreedyRequest(too_long, 4));
  EXPECT_EQ(long_prompt.status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(long_prompt.status.error_message(),
              HasSubstr(absl::StrCat("accepts at most ", limit)));

  // A prompt near the limit may generate up to the model's last position.
  std::vector<int32_t> near_limit(limit - 3, 5);
  GenerateResult capped = Generate(*stub, GreedyRequest(near_limit, 4));
  ASSERT_TRUE(capped.status.ok()) << capped.status.error_message();
  EXPECT_EQ(capped.completions.at(0).finish, v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(capped.completions[0].ids.size(), 4u);
  GenerateResult past_limit = Generate(*stub, GreedyRequest(near_limit, 5));
  EXPECT_EQ(past_limit.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(past_limit.status.error_message(),
              HasSubstr(absl::StrCat(limit)));

  grpc::ClientContext context;
  v1::TokenizeRequest tokenize;
  tokenize.set_text("hello");
  v1::TokenizeResponse tokens;
  EXPECT_EQ(stub->Tokenize(&context, tokenize, &tokens).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(ServerOpsTest, BadStartupConfigurationExitsNonZeroWithAReason) {
  std::string dir =
      std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : ".";
  std::string bad_config = dir + "/bad.textproto";
  std::ofstream(bad_config) << "model_dir: \"tests/golden/griffin_tiny\"\n"
                               "max_batch: \"many\"\n";
  struct Case {
    std::vector<std::string> flags;
    int exit_code;
    std::string message;
  };
  const Case cases[] = {
      {{}, 2, "model_dir is not set"},
      {{"--config=no/such.textproto"},
       2,
       "config file no/such.textproto cannot be opened"},
      {{"--config=" + bad_config}, 2, "line 2"},
      {{"--model=tests/golden"}, 2, "has no config.json"},
      {{"--model=tests/golden/no_such_model"}, 2, "does not exist"},
      {{"--model=tests/golden/griffin_tiny/config.json"},
       2,
       "is not a directory"},
      {{kGriffin, "--state_memory=lots"}, 2, "--state_memory"},
      {{kGriffin, "--log_level=loud"}, 2, "log_level \"loud\""},
      {{kGriffin, "--listen=127.0.0.1"}, 2, "listen: address"},
      {{kGriffin, "--backend=tpu"},
       2,
       "config: backend \"tpu\" is not one of auto, cpu, cuda"},
      {{kGriffin, "--backend=cuda", "--listen=127.0.0.1:0",
        "--metrics_listen=none"},
       1,
       "backend 'cuda' is not available in this build: "},
      {{kGriffin, "--tokenizer=tests/golden/griffin_tiny/config.json",
        "--listen=127.0.0.1:0", "--metrics_listen=none"},
       1,
       "cannot load tokenizer"},
  };
  for (const Case& c : cases) {
    ProcessResult result = RunServerToExit(c.flags, absl::Seconds(30));
    EXPECT_EQ(result.exit_code, c.exit_code) << result.output;
    EXPECT_THAT(result.output, HasSubstr(c.message));
  }
}

TEST(ServerOpsTest, StreamIntervalSendsTheSameTokensInFewerChunks) {
  const v1::GenerateRequest request = GreedyRequest({2, 5, 9}, 101);
  GenerateResult every_step;
  {
    std::unique_ptr<ServerProcess> server = StartOrDie({kGriffin});
    ASSERT_NE(server, nullptr);
    auto stub = v1::Slabserve::NewStub(server->NewChannel());
    every_step = Generate(*stub, request);
  }
  std::unique_ptr<ServerProcess> server =
      StartOrDie({kGriffin, "--stream_interval=4"});
  ASSERT_NE(server, nullptr);
  auto stub = v1::Slabserve::NewStub(server->NewChannel());
  const GenerateResult grouped = Generate(*stub, request);
  ASSERT_TRUE(every_step.status.ok()) << every_step.status.error_message();
  ASSERT_TRUE(grouped.status.ok()) << grouped.status.error_message();
  ASSERT_EQ(every_step.completions.size(), 1u);
  ASSERT_EQ(grouped.completions.size(), 1u);
  EXPECT_EQ(grouped.completions[0].ids, every_step.completions[0].ids);
  ASSERT_EQ(every_step.completions[0].ids.size(), 101u);
  // After the first chunk, at least four steps' worth per chunk (more when
  // the server's pump lags), the rest with the end. How many tokens the
  // first holds depends on when the pump runs (scheduler_fake_test checks
  // that the first token is let through at once).
  const std::vector<int>& sizes = grouped.completions[0].chunk_tokens;
  for (size_t i = 1; i + 1 < sizes.size(); ++i) {
    EXPECT_GE(sizes[i], 4) << "chunk " << i;
  }
}

TEST(ServerOpsTest, StreamsWhoseClientStopsReadingAreCancelled) {
  std::unique_ptr<ServerProcess> server =
      StartOrDie({kGriffin, "--stream_stall_seconds=1",
                  "--stream_buffer_tokens=4", "--max_tokens_limit=1000000"});
  ASSERT_NE(server, nullptr);
  // Streams on their own connections that never read a single chunk: the
  // server's writes fill the flow-control window and wait.
  constexpr int kSilent = 3;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::GenerateChunk>>> silent;
  // Each on its own connection, whose receive window stays at HTTP/2's
  // initial 64 KiB (no bandwidth probing to grow it) as an unread one would.
  grpc::ChannelArguments own_connection;
  own_connection.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  own_connection.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  for (int i = 0; i < kSilent; ++i) {
    channels.push_back(grpc::CreateCustomChannel(
        server->address(), grpc::InsecureChannelCredentials(), own_connection));
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    silent.push_back(v1::Slabserve::NewStub(channels.back())
                         ->Generate(contexts.back().get(),
                                    GreedyRequest({2, 3, 4}, 1000000)));
  }
  auto stub = v1::Slabserve::NewStub(server->NewChannel());
  for (int i = 0; i < 200 && GetInfo(*stub).slots_in_use() < kSilent; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(GetInfo(*stub).slots_in_use(), kSilent);
  // A client that reads is served meanwhile.
  GenerateResult served = Generate(*stub, GreedyRequest({2, 5}, 8));
  EXPECT_TRUE(served.status.ok()) << served.status.error_message();
  // Within the stall timeout (plus the watch interval) the silent streams
  // are cancelled and their slots freed, though their clients stay.
  int in_use = -1;
  for (int i = 0; i < 600 && in_use != 0; ++i) {  // up to 60 s (sanitizers)
    absl::SleepFor(absl::Milliseconds(100));
    in_use = GetInfo(*stub).slots_in_use();
  }
  EXPECT_EQ(in_use, 0);
  EXPECT_THAT(server->Log(), HasSubstr("stalled: the client read nothing"));
  for (auto& context : contexts) context->TryCancel();
}

TEST(ServerOpsTest, PortInUseIsAnErrorNotASharedPort) {
  std::unique_ptr<ServerProcess> first = StartOrDie({kGriffin});
  ASSERT_NE(first, nullptr);
  ProcessResult second =
      RunServerToExit({kGriffin, absl::StrCat("--listen=", first->address()),
                       "--metrics_listen=none"},
                      absl::Seconds(30));
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_THAT(second.output,
              HasSubstr(absl::StrCat("cannot listen on ", first->address())));
  // The first server still answers, alone on its port.
  auto stub = v1::Slabserve::NewStub(first->NewChannel());
  EXPECT_GT(GetInfo(*stub).slot_capacity(), 0);
}

}  // namespace
}  // namespace slabserve::testing
