// End-to-end: the real slabserve binary serving griffin_tiny (with the test
// tokenizer) over gRPC on loopback. Exactness against the golden greedy ids,
// a crowd of concurrent streams, cancellation, deadlines, stop strings and
// request validation.
#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/e2e_util.h"
#include "tests/server_process.h"
#include "tests/server_suite.h"

namespace slabserve::testing {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr char kModelDir[] = "tests/golden/griffin_tiny";
constexpr int kMaxTokensLimit = 1000000;

class ServerE2eTest : public ServerSuite<ServerE2eTest> {
 public:
  static std::vector<std::string> ServerFlags() {
    return {"--config=configs/default.textproto",
            absl::StrCat("--model=", kModelDir),
            "--tokenizer=tests/golden/tokenizer/tokenizer.model",
            "--state_memory=16MiB",
            absl::StrCat("--max_tokens_limit=", kMaxTokensLimit)};
  }

 protected:
  // Waits (bounded) until no slot is in use; returns the last count seen.
  int WaitForFreeSlots() {
    int in_use = -1;
    for (int i = 0; i < 200; ++i) {
      in_use = ModelInfo().slots_in_use();
      if (in_use == 0) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return in_use;
  }
};

TEST_F(ServerE2eTest, GreedyTokenIdsMatchGolden) {
  std::vector<GoldenCase> cases = LoadGoldenCases(kModelDir);
  ASSERT_FALSE(cases.empty());
  for (const GoldenCase& c : cases) {
    GenerateResult result = Generate(*stub_, GreedyRequest(c.prompt_ids, 16));
    ASSERT_TRUE(result.status.ok())
        << c.name << ": " << result.status.error_message();
    ASSERT_EQ(result.completions.size(), 1u);
    const CompletionResult& completion = result.completions[0];
    EXPECT_THAT(completion.ids, ElementsAreArray(c.greedy_ids)) << c.name;
    EXPECT_EQ(completion.finish, v1::FINISH_REASON_LENGTH);
    EXPECT_EQ(completion.chunks_after_finish, 0);
    EXPECT_EQ(completion.usage.prompt_tokens(),
              static_cast<int>(c.prompt_ids.size()));
    EXPECT_EQ(completion.usage.completion_tokens(), 16);
    EXPECT_GT(completion.usage.total_seconds(), 0);
    EXPECT_LE(completion.usage.time_to_first_token_seconds(),
              completion.usage.total_seconds());
  }
}

TEST_F(ServerE2eTest, TextPromptIsTokenizedWithBosAndStreamsItsText) {
  std::vector<GoldenCase> cases = LoadGoldenCases(kModelDir);
  auto with_text = std::find_if(cases.begin(), cases.end(),
                                [](auto& c) { return !c.prompt_text.empty(); });
  ASSERT_NE(with_text, cases.end());
  v1::GenerateRequest request;
  request.set_text(with_text->prompt_text);
  request.set_max_tokens(16);
  request.set_ignore_eos(true);
  GenerateResult result = Generate(*stub_, request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  const CompletionResult& completion = result.completions.at(0);
  EXPECT_EQ(completion.usage.prompt_tokens(),
            static_cast<int>(with_text->prompt_ids.size()));
  EXPECT_THAT(completion.ids, ElementsAreArray(with_text->greedy_ids));

  // The streamed deltas add up to the text of all ids.
  grpc::ClientContext context;
  v1::DetokenizeRequest detokenize;
  for (int32_t id : completion.ids) detokenize.add_ids(id);
  v1::DetokenizeResponse decoded;
  ASSERT_TRUE(stub_->Detokenize(&context, detokenize, &decoded).ok());
  EXPECT_EQ(completion.text, decoded.text());
}

TEST_F(ServerE2eTest, TokenizeMatchesTheGoldenPromptIds) {
  std::vector<GoldenCase> cases = LoadGoldenCases(kModelDir);
  for (const GoldenCase& c : cases) {
    if (c.prompt_text.empty()) continue;
    grpc::ClientContext context;
    v1::TokenizeRequest request;
    request.set_text(c.prompt_text);
    request.set_add_bos(true);
    v1::TokenizeResponse response;
    ASSERT_TRUE(stub_->Tokenize(&context, request, &response).ok());
    EXPECT_THAT(response.ids(), ElementsAreArray(c.prompt_ids));
    EXPECT_EQ(response.pieces_size(), response.ids_size() - 1);  // BOS: none
  }
}

TEST_F(ServerE2eTest, ModelInfoDescribesTheModel) {
  v1::ModelInfo info = ModelInfo();
  EXPECT_EQ(info.name(), "griffin_tiny");
  EXPECT_EQ(info.architecture(), "griffin");
  EXPECT_EQ(info.vocab_size(), 512);
  EXPECT_EQ(info.num_layers(), 6);
  EXPECT_EQ(info.hidden_size(), 64);
  EXPECT_EQ(info.attention_window(), 8);
  EXPECT_GT(info.state_bytes_per_sequence(), 0);
  EXPECT_EQ(info.slot_capacity(), (16 << 20) / info.state_bytes_per_sequence());
  EXPECT_TRUE(info.has_tokenizer());
  EXPECT_EQ(info.bos_token_id(), 2);
  EXPECT_EQ(info.eos_token_id(), 1);
  EXPECT_EQ(info.max_tokens_limit(), kMaxTokensLimit);
  EXPECT_EQ(info.weights_dtype(), "f32");
}

// 200 streams at once, greedy and seeded sampling mixed, each equal to the
// same request served alone.
TEST_F(ServerE2eTest, TwoHundredConcurrentStreamsMatchTheirSoloRuns) {
  constexpr int kStreams = 200;
  std::mt19937 rng(7);
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < kStreams; ++i) {
    std::vector<int32_t> prompt = {2};
    int length = 1 + static_cast<int>(rng() % 40);
    for (int t = 0; t < length; ++t) prompt.push_back(3 + rng() % 509);
    v1::GenerateRequest request = GreedyRequest(prompt, 8 + rng() % 25);
    if (i % 4 == 1) {
      request.mutable_sampling()->set_temperature(0.9f);
      request.mutable_sampling()->set_top_p(0.95f);
      request.mutable_sampling()->set_seed(1000 + i);
    }
    requests.push_back(std::move(request));
  }
  std::vector<std::vector<int32_t>> solo(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    GenerateResult result = Generate(*stub_, requests[i]);
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    solo[i] = result.completions.at(0).ids;
    ASSERT_EQ(static_cast<int>(solo[i].size()), requests[i].max_tokens());
  }

  std::vector<GenerateResult> crowd(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] { crowd[i] = Generate(*stub_, requests[i]); });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(crowd[i].status.ok())
        << i << ": " << crowd[i].status.error_message();
    EXPECT_EQ(crowd[i].completions.at(0).ids, solo[i]) << "stream " << i;
    EXPECT_EQ(crowd[i].completions.at(0).finish, v1::FINISH_REASON_LENGTH);
  }
  // They really shared steps: some step ran more than one sequence.
  std::string metrics = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_GT(MetricValue(metrics, "slabserve_batch_size_count"),
            MetricValue(metrics, "slabserve_batch_size_bucket{le=\"1\"}"));
  EXPECT_EQ(WaitForFreeSlots(), 0);
}

TEST_F(ServerE2eTest, CancelMidStreamFreesTheSlot) {
  grpc::ClientContext context;
  auto reader =
      stub_->Generate(&context, GreedyRequest({2, 40, 41}, kMaxTokensLimit));
  v1::GenerateChunk chunk;
  int tokens = 0;
  while (tokens < 20 && reader->Read(&chunk)) tokens += chunk.token_ids_size();
  ASSERT_GE(tokens, 20);
  EXPECT_EQ(ModelInfo().slots_in_use(), 1);
  context.TryCancel();
  while (reader->Read(&chunk)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(WaitForFreeSlots(), 0);
  EXPECT_THAT(HttpGet(server_->metrics_port(), "/metrics"),
              HasSubstr("slabserve_requests_total{status=\"cancelled\"}"));
}

TEST_F(ServerE2eTest, DeadlineEndsTheStreamAndFreesTheSlot) {
  GenerateResult result =
      Generate(*stub_, GreedyRequest({2, 7, 8}, kMaxTokensLimit),
               absl::Milliseconds(300));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(WaitForFreeSlots(), 0);
}

TEST_F(ServerE2eTest, StopStringEndsTheCompletionBeforeIt) {
  v1::GenerateRequest request;
  request.set_text("The quick brown fox");
  request.set_max_tokens(48);
  request.set_ignore_eos(true);
  GenerateResult free_run = Generate(*stub_, request);
  ASSERT_TRUE(free_run.status.ok());
  const std::string& text = free_run.completions.at(0).text;
  // A two-character ASCII stop string from the middle of the free run.
  size_t at = text.size() / 2;
  while (at + 1 < text.size() && !(absl::ascii_isalpha(text[at]) &&
                                   absl::ascii_isalpha(text[at + 1]))) {
    ++at;
  }
  ASSERT_LT(at + 1, text.size()) << "no letters in: " << text;
  std::string stop = text.substr(at, 2);

  request.add_stop(stop);
  GenerateResult stopped = Generate(*stub_, request);
  ASSERT_TRUE(stopped.status.ok()) << stopped.status.error_message();
  const CompletionResult& completion = stopped.completions.at(0);
  EXPECT_EQ(completion.text, text.substr(0, text.find(stop)));
  EXPECT_EQ(completion.finish, v1::FINISH_REASON_STOP);
  EXPECT_LT(completion.ids.size(), free_run.completions[0].ids.size());
  EXPECT_EQ(WaitForFreeSlots(), 0);
}

TEST_F(ServerE2eTest, StopTokenIdEndsTheCompletionWithIt) {
  GoldenCase c = LoadGoldenCases(kModelDir).at(1);
  v1::GenerateRequest request = GreedyRequest(c.prompt_ids, 16);
  request.add_stop_token_ids(c.greedy_ids[5]);
  GenerateResult result = Generate(*stub_, request);
  ASSERT_TRUE(result.status.ok());
  size_t first =
      std::find(c.greedy_ids.begin(), c.greedy_ids.end(), c.greedy_ids[5]) -
      c.greedy_ids.begin();
  EXPECT_THAT(
      result.completions.at(0).ids,
      ElementsAreArray(c.greedy_ids.begin(), c.greedy_ids.begin() + first + 1));
  EXPECT_EQ(result.completions[0].finish, v1::FINISH_REASON_STOP);
}

TEST_F(ServerE2eTest, NSeededCompletionsAreReproducible) {
  v1::GenerateRequest request = GreedyRequest({2, 100, 200, 300}, 12);
  request.set_n(3);
  request.mutable_sampling()->set_temperature(1.0f);
  request.mutable_sampling()->set_seed(42);
  GenerateResult first = Generate(*stub_, request);
  GenerateResult second = Generate(*stub_, request);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  ASSERT_EQ(first.completions.size(), 3u);
  ASSERT_EQ(second.completions.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(first.completions[i].ids.size(), 12u);
    EXPECT_EQ(first.completions[i].ids, second.completions[i].ids);
    EXPECT_EQ(first.completions[i].finish, v1::FINISH_REASON_LENGTH);
    EXPECT_EQ(first.completions[i].chunks_after_finish, 0);
  }
  // Greedy completions of one prompt are all the golden ones.
  GoldenCase c = LoadGoldenCases(kModelDir).at(2);
  v1::GenerateRequest greedy = GreedyRequest(c.prompt_ids, 16);
  greedy.set_n(2);
  GenerateResult both = Generate(*stub_, greedy);
  ASSERT_EQ(both.completions.size(), 2u);
  for (const CompletionResult& completion : both.completions) {
    EXPECT_THAT(completion.ids, ElementsAreArray(c.greedy_ids));
  }
}

TEST_F(ServerE2eTest, LogprobsCarryTheChosenAndTopTokens) {
  GoldenCase c = LoadGoldenCases(kModelDir).at(0);
  v1::GenerateRequest request = GreedyRequest(c.prompt_ids, 8);
  request.set_logprobs(true);
  request.set_top_logprobs(3);
  GenerateResult result = Generate(*stub_, request);
  ASSERT_TRUE(result.status.ok());
  const CompletionResult& completion = result.completions.at(0);
  ASSERT_EQ(completion.logprobs.size(), completion.ids.size());
  for (size_t i = 0; i < completion.ids.size(); ++i) {
    const v1::Logprobs& logprobs = completion.logprobs[i];
    EXPECT_EQ(logprobs.chosen().id(), completion.ids[i]);
    EXPECT_LE(logprobs.chosen().logprob(), 0.0f);
    ASSERT_EQ(logprobs.top_size(), 3);
    EXPECT_EQ(logprobs.top(0).id(), completion.ids[i]);  // greedy
    EXPECT_GE(logprobs.top(0).logprob(), logprobs.top(1).logprob());
  }
}

TEST_F(ServerE2eTest, RequestIdIsEchoedOrAssigned) {
  v1::GenerateRequest request = GreedyRequest({2, 5}, 3);
  request.set_request_id("my-request-1");
  GenerateResult named = Generate(*stub_, request);
  ASSERT_FALSE(named.request_ids.empty());
  for (const std::string& id : named.request_ids) EXPECT_EQ(id, "my-request-1");
  request.clear_request_id();
  GenerateResult a = Generate(*stub_, request);
  GenerateResult b = Generate(*stub_, request);
  ASSERT_FALSE(a.request_ids.empty());
  ASSERT_FALSE(b.request_ids.empty());
  EXPECT_FALSE(a.request_ids[0].empty());
  EXPECT_NE(a.request_ids[0], b.request_ids[0]);
}

struct InvalidCase {
  std::string name;
  std::function<void(v1::GenerateRequest&)> edit;
  std::string message;
};

TEST_F(ServerE2eTest, MalformedBytesAndInvalidUtf8AreInvalidArgument) {
  // Protobuf serializes a string that is not UTF-8 (with a logged error);
  // the server must refuse to parse it, and say so.
  v1::GenerateRequest generate;
  generate.set_text("In the \xff\xfe beginning");
  generate.set_max_tokens(4);
  GenerateResult result = Generate(*stub_, generate);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(result.status.error_message(),
              HasSubstr("request is not a valid slabserve.v1.GenerateRequest"));
  {
    grpc::ClientContext context;
    v1::TokenizeRequest tokenize;
    tokenize.set_text("\xc3\x28");
    v1::TokenizeResponse response;
    grpc::Status status = stub_->Tokenize(&context, tokenize, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(),
                HasSubstr("not a valid slabserve.v1.TokenizeRequest"));
  }
  // Bytes that are no protobuf at all, to every method.
  grpc::GenericStub generic(server_->NewChannel());
  const std::string garbage = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01";
  for (const char* method : {"Tokenize", "Detokenize", "GetModelInfo"}) {
    grpc::Slice slice(garbage);
    grpc::ByteBuffer request(&slice, 1), response;
    grpc::ClientContext context;
    absl::Notification done;
    grpc::Status status;
    generic.UnaryCall(
        &context, absl::StrCat("/slabserve.v1.Slabserve/", method),
        grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
          status = std::move(s);
          done.Notify();
        });
    done.WaitForNotification();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << method;
    EXPECT_THAT(status.error_message(), HasSubstr("malformed protobuf bytes"))
        << method;
  }
  // The server goes on serving.
  EXPECT_GT(ModelInfo().slot_capacity(), 0);
}

TEST_F(ServerE2eTest, InvalidRequestsNameWhatIsWrong) {
  const std::vector<InvalidCase> cases = {
      {"no prompt", [](auto& r) { r.clear_token_ids(); },
       "prompt is empty: set text or token_ids"},
      {"empty text", [](auto& r) { r.set_text(""); }, "prompt text is empty"},
      {"empty ids", [](auto& r) { r.mutable_token_ids()->clear_ids(); },
       "prompt token_ids is empty"},
      {"unknown id", [](auto& r) { r.mutable_token_ids()->add_ids(512); },
       "prompt token id 512 at position 2 is outside the vocabulary"},
      {"negative id", [](auto& r) { r.mutable_token_ids()->set_ids(0, -1); },
       "prompt token id -1 at position 0"},
      {"max_tokens 0", [](auto& r) { r.set_max_tokens(0); },
       "max_tokens must be > 0"},
      {"max_tokens over limit",
       [](auto& r) { r.set_max_tokens(kMaxTokensLimit + 1); },
       "exceeds the server's limit"},
      {"temperature",
       [](auto& r) { r.mutable_sampling()->set_temperature(-1); },
       "temperature must be"},
      {"top_p", [](auto& r) { r.mutable_sampling()->set_top_p(1.5f); },
       "top_p must be in (0, 1]"},
      {"top_k", [](auto& r) { r.mutable_sampling()->set_top_k(-2); },
       "top_k must be >= 0"},
      {"min_p", [](auto& r) { r.mutable_sampling()->set_min_p(2); },
       "min_p must be in [0, 1)"},
      {"min_p 1", [](auto& r) { r.mutable_sampling()->set_min_p(1); },
       "min_p must be in [0, 1), got 1"},
      {"long request_id",
       [](auto& r) { r.set_request_id(std::string(129, 'a')); },
       "request_id must be at most 128 bytes"},
      {"request_id with a newline",
       [](auto& r) { r.set_request_id("x\n[error] fake"); },
       "request_id byte 1 is not printable ASCII"},
      {"request_id with an escape",
       [](auto& r) { r.set_request_id("\x1b[31m"); },
       "request_id byte 0 is not printable ASCII"},
      {"repetition_penalty",
       [](auto& r) { r.mutable_sampling()->set_repetition_penalty(-1); },
       "repetition_penalty must be"},
      {"n negative", [](auto& r) { r.set_n(-1); }, "n must be in [1, 16]"},
      {"n too large", [](auto& r) { r.set_n(17); }, "n must be in [1, 16]"},
      {"top_logprobs too large",
       [](auto& r) {
         r.set_logprobs(true);
         r.set_top_logprobs(21);
       },
       "top_logprobs must be in [0, 20]"},
      {"top_logprobs without logprobs", [](auto& r) { r.set_top_logprobs(2); },
       "top_logprobs needs logprobs = true"},
      {"empty stop string", [](auto& r) { r.add_stop(""); },
       "stop string 0 is empty"},
      {"stop token id", [](auto& r) { r.add_stop_token_ids(9999); },
       "stop token id 9999 at position 0 is outside the vocabulary"},
      {"prompt too long",
       [](auto& r) {
         for (int i = 0; i < 32768; ++i) r.mutable_token_ids()->add_ids(5);
       },
       "prompt has 32770 tokens; this server accepts at most 32768 "
       "(max_prompt_tokens)"},
  };
  for (const InvalidCase& c : cases) {
    v1::GenerateRequest request = GreedyRequest({2, 5}, 4);
    c.edit(request);
    GenerateResult result = Generate(*stub_, request);
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.name;
    EXPECT_THAT(result.status.error_message(), HasSubstr(c.message)) << c.name;
    EXPECT_TRUE(result.completions.empty()) << c.name;
  }
  EXPECT_THAT(
      HttpGet(server_->metrics_port(), "/metrics"),
      HasSubstr("slabserve_requests_total{status=\"invalid_argument\"}"));
}

}  // namespace
}  // namespace slabserve::testing
