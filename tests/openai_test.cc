// End-to-end: the OpenAI-compatible HTTP API of the real slabserve binary
// serving griffin_tiny on loopback, next to its gRPC port: whole and
// streamed completions and chats identical to gRPC's greedy output, every
// error status, the full queue, a client that hangs up, and draining.
#include <signal.h>

#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e_util.h"
#include "tests/http_client.h"
#include "tests/server_process.h"

namespace slabserve::testing {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr char kModel[] = "griffin_tiny";
constexpr char kPrompt[] = "In the beginning God created";

struct OpenAiServer {
  std::unique_ptr<ServerProcess> process;
  int port = 0;
};

// The server with its OpenAI port; `flags` come after the defaults.
OpenAiServer StartServer(const std::string& name,
                         const std::vector<std::string>& flags) {
  const std::string port_file =
      absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name, "_openai_port");
  std::vector<std::string> all = {
      "--model=tests/golden/griffin_tiny",
      "--tokenizer=tests/golden/tokenizer/tokenizer.model",
      "--openai_listen=127.0.0.1:0", "--openai_port_file=" + port_file};
  all.insert(all.end(), flags.begin(), flags.end());
  OpenAiServer server;
  absl::StatusOr<std::unique_ptr<ServerProcess>> started =
      ServerProcess::Start(all);
  EXPECT_TRUE(started.ok()) << started.status();
  if (!started.ok()) return server;
  server.process = *std::move(started);
  std::ifstream(port_file) >> server.port;  // written before the gRPC port
  return server;
}

Json ParseBody(const HttpReply& reply) {
  return Json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
}

std::string GrpcGreedyText(ServerProcess& server, const std::string& prompt,
                           int max_tokens) {
  auto stub = v1::Slabserve::NewStub(server.NewChannel());
  v1::GenerateRequest request;
  request.set_text(prompt);
  request.set_max_tokens(max_tokens);
  GenerateResult result = Generate(*stub, request);
  EXPECT_TRUE(result.status.ok()) << result.status.error_message();
  return result.completions.empty() ? "" : result.completions[0].text;
}

void ExpectError(const HttpReply& reply, int status, const std::string& type,
                 const std::string& message) {
  EXPECT_EQ(reply.status, status) << reply.body;
  Json body = ParseBody(reply);
  ASSERT_TRUE(body.contains("error")) << reply.body;
  EXPECT_EQ(body["error"]["type"], type) << reply.body;
  EXPECT_THAT(body["error"]["message"].get<std::string>(), HasSubstr(message));
  EXPECT_TRUE(body["error"].contains("param"));
  EXPECT_TRUE(body["error"].contains("code"));
}

class OpenAiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new OpenAiServer(StartServer(
        "main",
        {"--state_memory=16MiB", "--openai_max_body=4KiB", "--max_n=4"}));
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_->process, nullptr);
    ASSERT_GT(server_->port, 0);
  }
  HttpReply Post(const std::string& path, const Json& body) {
    return HttpCall(server_->port, "POST", path, body.dump());
  }

  static OpenAiServer* server_;
};

OpenAiServer* OpenAiTest::server_ = nullptr;

TEST_F(OpenAiTest, ModelsHealthAndUnknownPaths) {
  HttpReply models = HttpCall(server_->port, "GET", "/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(ParseBody(models)["data"][0]["id"], kModel);
  HttpReply health = HttpCall(server_->port, "GET", "/health");
  EXPECT_EQ(health.status, 200);
  ExpectError(HttpCall(server_->port, "GET", "/v2/nothing"), 404,
              "invalid_request_error", "unknown path");
  ExpectError(HttpCall(server_->port, "GET", "/v1/completions"), 405,
              "invalid_request_error", "use POST");
}

TEST_F(OpenAiTest, WholeCompletionIsGrpcsGreedyOutput) {
  HttpReply reply = Post("/v1/completions", {{"model", kModel},
                                             {"prompt", kPrompt},
                                             {"max_tokens", 12},
                                             {"temperature", 0}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  Json body = ParseBody(reply);
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["choices"][0]["text"],
            GrpcGreedyText(*server_->process, kPrompt, 12));
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["usage"]["completion_tokens"], 12);
  EXPECT_EQ(body["usage"]["total_tokens"],
            body["usage"]["prompt_tokens"].get<int>() + 12);
}

TEST_F(OpenAiTest, StreamedCompletionAddsUpAndEndsWithDone) {
  HttpReply reply =
      Post("/v1/completions", {{"model", kModel},
                               {"prompt", kPrompt},
                               {"max_tokens", 12},
                               {"temperature", 0},
                               {"n", 2},
                               {"logprobs", 1},
                               {"stream", true},
                               {"stream_options", {{"include_usage", true}}}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_THAT(reply.headers, HasSubstr("text/event-stream"));
  std::vector<std::string> events = SseData(reply.body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string texts[2];
  int finished = 0;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    Json chunk = Json::parse(events[i]);
    for (const Json& choice : chunk["choices"]) {
      texts[choice["index"].get<int>()] += choice["text"].get<std::string>();
      if (!choice["finish_reason"].is_null()) ++finished;
    }
  }
  EXPECT_EQ(finished, 2);
  const std::string greedy = GrpcGreedyText(*server_->process, kPrompt, 12);
  EXPECT_EQ(texts[0], greedy);
  EXPECT_EQ(texts[1], greedy);
  Json usage = Json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 24);
}

TEST_F(OpenAiTest, ChatUsesTheTemplateWholeAndStreamed) {
  Json request = {{"model", kModel},
                  {"messages", {{{"role", "user"}, {"content", "Who?"}}}},
                  {"max_tokens", 10},
                  {"temperature", 0}};
  const std::string greedy =
      GrpcGreedyText(*server_->process, "user: Who?\nassistant: ", 10);
  HttpReply whole = Post("/v1/chat/completions", request);
  ASSERT_EQ(whole.status, 200) << whole.body;
  Json body = ParseBody(whole);
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(body["choices"][0]["message"]["content"], greedy);

  request["stream"] = true;
  HttpReply streamed = Post("/v1/chat/completions", request);
  ASSERT_EQ(streamed.status, 200);
  std::vector<std::string> events = SseData(streamed.body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    Json delta = Json::parse(events[i])["choices"][0]["delta"];
    if (i == 0) {
      EXPECT_EQ(delta["role"], "assistant");
    }
    if (delta.contains("content")) text += delta["content"].get<std::string>();
  }
  EXPECT_EQ(text, greedy);
}

TEST_F(OpenAiTest, StopStringEndsWithStop) {
  const std::string greedy = GrpcGreedyText(*server_->process, kPrompt, 12);
  ASSERT_GE(greedy.size(), 4u);
  const std::string stop = greedy.substr(2, 2);
  HttpReply reply = Post("/v1/completions", {{"model", kModel},
                                             {"prompt", kPrompt},
                                             {"max_tokens", 12},
                                             {"temperature", 0},
                                             {"stop", stop}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  Json choice = ParseBody(reply)["choices"][0];
  EXPECT_EQ(choice["text"], greedy.substr(0, greedy.find(stop)));
  EXPECT_EQ(choice["finish_reason"], "stop");
}

TEST_F(OpenAiTest, InvalidRequestsAre400And413) {
  ExpectError(HttpCall(server_->port, "POST", "/v1/completions", "{oops"), 400,
              "invalid_request_error", "JSON object");
  ExpectError(Post("/v1/completions", {{"model", "gpt-4"}, {"prompt", "x"}}),
              400, "invalid_request_error", "does not exist");
  ExpectError(
      Post("/v1/completions", {{"model", kModel}, {"prompt", "x"}, {"n", 5}}),
      400, "invalid_request_error", "n");
  ExpectError(Post("/v1/completions", {{"model", kModel},
                                       {"prompt", "x"},
                                       {"stop", {"a", "b", "c", "d", "e"}}}),
              400, "invalid_request_error", "stop strings");
  ExpectError(Post("/v1/completions",
                   {{"model", kModel}, {"prompt", std::string(5000, 'a')}}),
              413, "invalid_request_error", "larger than");
}

TEST(OpenAiKeysTest, MissingOrWrongKeysAre401) {
  const std::string keys =
      absl::StrCat(std::getenv("TEST_TMPDIR"), "/openai_keys");
  std::ofstream(keys) << "sk-test-0123456789abcdef\n";
  OpenAiServer server = StartServer("keys", {"--api_keys_file=" + keys});
  ASSERT_GT(server.port, 0);
  const std::string body =
      Json{{"model", kModel}, {"prompt", "x"}, {"max_tokens", 2}}.dump();
  ExpectError(HttpCall(server.port, "POST", "/v1/completions", body), 401,
              "invalid_request_error", "API key");
  ExpectError(HttpCall(server.port, "POST", "/v1/completions", body,
                       {{"Authorization", "Bearer sk-wrong-0123456789ab"}}),
              401, "invalid_request_error", "not valid");
  EXPECT_EQ(HttpCall(server.port, "GET", "/v1/models").status, 401);
  EXPECT_EQ(HttpCall(server.port, "POST", "/v1/completions", body,
                     {{"Authorization", "Bearer sk-test-0123456789abcdef"}})
                .status,
            200);
  EXPECT_EQ(HttpCall(server.port, "GET", "/health").status, 200);
}

Json LongStream() {
  return {{"model", kModel},    {"prompt", kPrompt}, {"max_tokens", 1000000},
          {"ignore_eos", true}, {"temperature", 0},  {"stream", true}};
}

TEST(OpenAiQueueTest, FullQueueIs429AndAHangUpFreesTheSlot) {
  // One slot, and room to queue one 2,000-token prompt but not two (as in
  // server_ops_test).
  int64_t bytes_per_sequence = 0;
  {
    OpenAiServer probe = StartServer("probe", {});
    ASSERT_NE(probe.process, nullptr);
    auto stub = v1::Slabserve::NewStub(probe.process->NewChannel());
    grpc::ClientContext context;
    v1::ModelInfo info;
    ASSERT_TRUE(stub->GetModelInfo(&context, {}, &info).ok());
    bytes_per_sequence = info.state_bytes_per_sequence();
  }
  OpenAiServer server = StartServer(
      "queue", {absl::StrCat("--state_memory=", bytes_per_sequence * 3 / 2),
                "--max_waiting_memory=12000", "--max_tokens_limit=1000000"});
  ASSERT_GT(server.port, 0);
  auto running = std::make_unique<HttpConnection>(
      server.port, "POST", "/v1/completions", LongStream().dump());
  ASSERT_TRUE(running->ReadUntil("data: "));

  std::vector<int> long_prompt = {2};
  while (long_prompt.size() < 2000) {
    long_prompt.push_back(4 + long_prompt.size() % 500);
  }
  const std::string waiting_body = Json{
      {"model", kModel},
      {"prompt", long_prompt},
      {"max_tokens", 4},
      {"temperature", 0}}.dump();
  HttpReply waiting_reply;
  std::thread waiting([&] {
    waiting_reply =
        HttpCall(server.port, "POST", "/v1/completions", waiting_body);
  });
  auto stub = v1::Slabserve::NewStub(server.process->NewChannel());
  auto waiting_requests = [&] {
    grpc::ClientContext context;
    v1::ModelInfo info;
    stub->GetModelInfo(&context, {}, &info);
    return info.waiting_requests();
  };
  for (int i = 0; i < 500 && waiting_requests() < 1; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(waiting_requests(), 1);
  ExpectError(HttpCall(server.port, "POST", "/v1/completions", waiting_body),
              429, "rate_limit_error", "waiting queue is full");

  // Hanging up cancels the running stream; the waiting request gets the
  // slot and finishes.
  running.reset();
  waiting.join();
  EXPECT_EQ(waiting_reply.status, 200) << waiting_reply.body;
  EXPECT_EQ(ParseBody(waiting_reply)["usage"]["completion_tokens"], 4);
}

TEST(OpenAiDrainTest, DrainingIs503) {
  OpenAiServer server = StartServer(
      "drain", {"--max_tokens_limit=1000000", "--drain_grace_seconds=30"});
  ASSERT_GT(server.port, 0);
  HttpConnection running(server.port, "POST", "/v1/completions",
                         LongStream().dump());
  ASSERT_TRUE(running.ReadUntil("data: "));
  ASSERT_EQ(kill(server.process->pid(), SIGTERM), 0);
  int health = 200;
  for (int i = 0; i < 500 && health == 200; ++i) {
    health = HttpCall(server.port, "GET", "/health").status;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(health, 503);
  ExpectError(HttpCall(server.port, "POST", "/v1/completions",
                       Json{{"model", kModel}, {"prompt", "x"}}.dump()),
              503, "server_error", "shutting down");
}

}  // namespace
}  // namespace slabserve::testing
