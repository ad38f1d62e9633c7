// The client against the real server (started here on a loopback port the
// OS picks, with the tiny Griffin model).
#include "clients/cpp/client.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

namespace slabserve {
namespace {

class ClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* tmp = std::getenv("TEST_TMPDIR");
    const std::string port_file = std::string(tmp ? tmp : "/tmp") + "/port";
    std::remove(port_file.c_str());
    const std::string port_flag = "--port_file=" + port_file;
    server_pid_ = fork();
    if (server_pid_ == 0) {
      execl("server/slabserve", "slabserve",
            "--model=tests/golden/griffin_tiny",
            "--tokenizer=tests/golden/tokenizer/tokenizer.model",
            "--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
            "--log_level=warn", "--max_tokens_limit=1000000", port_flag.c_str(),
            nullptr);
      _exit(127);
    }
    int port = 0;
    for (int i = 0; i < 600 && port == 0; ++i) {
      std::ifstream(port_file) >> port;
      if (port != 0) break;
      int status;
      if (waitpid(server_pid_, &status, WNOHANG) == server_pid_) {
        server_pid_ = 0;
        FAIL() << "server exited before listening (status " << status << ")";
      }
      usleep(100 * 1000);
    }
    ASSERT_NE(port, 0) << "server wrote no port file within 60 s";
    client_ =
        Client::Connect("127.0.0.1:" + std::to_string(port), ConnectOptions{2})
            .release();
  }

  static void TearDownTestSuite() {
    delete client_;
    if (server_pid_ > 0) {
      kill(server_pid_, SIGTERM);
      waitpid(server_pid_, nullptr, 0);
    }
  }

  void SetUp() override { ASSERT_NE(client_, nullptr) << "no server"; }

  static v1::GenerateRequest Request(int max_tokens) {
    v1::GenerateRequest request;
    for (int id : {5, 6, 7, 8}) request.mutable_token_ids()->add_ids(id);
    request.set_max_tokens(max_tokens);
    request.set_ignore_eos(true);
    return request;
  }

  static pid_t server_pid_;
  static Client* client_;
};

pid_t ClientTest::server_pid_ = 0;
Client* ClientTest::client_ = nullptr;

// Waits for on_done of async streams.
class Latch {
 public:
  explicit Latch(int count) : count_(count) {}
  void CountDown() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--count_ == 0) cv_.notify_all();
  }
  bool Wait(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return count_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_;
};

TEST_F(ClientTest, UnaryCalls) {
  grpc::health::v1::HealthCheckResponse::ServingStatus serving;
  ASSERT_TRUE(client_->Health(&serving).ok());
  EXPECT_EQ(ServingStatusName(serving), "SERVING");
  v1::ModelInfo info;
  ASSERT_TRUE(client_->Info(&info).ok());
  EXPECT_EQ(info.architecture(), "griffin");
  v1::TokenizeRequest tokenize;
  tokenize.set_text("hello world");
  v1::TokenizeResponse ids;
  ASSERT_TRUE(client_->Tokenize(tokenize, &ids).ok());
  ASSERT_GT(ids.ids_size(), 0);
  v1::DetokenizeRequest detokenize;
  *detokenize.mutable_ids() = ids.ids();
  v1::DetokenizeResponse text;
  ASSERT_TRUE(client_->Detokenize(detokenize, &text).ok());
  EXPECT_EQ(text.text(), "hello world");
}

TEST_F(ClientTest, BlockingGenerateStreamsEveryToken) {
  int tokens = 0;
  v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
  grpc::Status status =
      client_->Generate(Request(12), [&](const v1::GenerateChunk& chunk) {
        tokens += chunk.token_ids_size();
        if (chunk.finish_reason()) finish = chunk.finish_reason();
        return true;
      });
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(tokens, 12);
  EXPECT_EQ(finish, v1::FINISH_REASON_LENGTH);
}

TEST_F(ClientTest, BlockingGenerateStopsWhenTheCallbackSaysSo) {
  int chunks = 0;
  grpc::Status status = client_->Generate(
      Request(4000), [&](const v1::GenerateChunk&) { return ++chunks < 2; });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(ClientTest, RejectionsCarryTheServersStatus) {
  grpc::Status status = client_->Generate(
      Request(0), [](const v1::GenerateChunk&) { return true; });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(status.error_message().empty());
}

TEST_F(ClientTest, ManyConcurrentAsyncStreamsComplete) {
  constexpr int kStreams = 300;
  Latch latch(kStreams);
  std::atomic<int> tokens{0}, ok{0};
  std::vector<std::shared_ptr<GenerateStream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    StreamCallbacks callbacks;
    callbacks.on_chunk = [&](const v1::GenerateChunk& chunk) {
      tokens += chunk.token_ids_size();
    };
    callbacks.on_done = [&](const grpc::Status& status) {
      if (status.ok()) ++ok;
      latch.CountDown();
    };
    streams.push_back(client_->GenerateAsync(Request(5), callbacks));
  }
  ASSERT_TRUE(latch.Wait(std::chrono::seconds(60)));
  EXPECT_EQ(ok.load(), kStreams);
  EXPECT_EQ(tokens.load(), kStreams * 5);
  for (auto& stream : streams) stream->Cancel();  // harmless once finished
}

TEST_F(ClientTest, AsyncCancelAndDeadline) {
  Latch latch(2);
  grpc::StatusCode cancelled = grpc::StatusCode::OK;
  grpc::StatusCode expired = grpc::StatusCode::OK;
  std::shared_ptr<GenerateStream> stream;
  std::atomic<bool> first_chunk{false};
  StreamCallbacks to_cancel;
  to_cancel.on_chunk = [&](const v1::GenerateChunk&) { first_chunk = true; };
  to_cancel.on_done = [&](const grpc::Status& s) {
    cancelled = s.error_code();
    latch.CountDown();
  };
  // Streams far too long to end by themselves, however fast the machine.
  stream = client_->GenerateAsync(Request(1000000), to_cancel);
  StreamCallbacks to_expire;
  to_expire.on_done = [&](const grpc::Status& s) {
    expired = s.error_code();
    latch.CountDown();
  };
  client_->GenerateAsync(Request(1000000), to_expire,
                         CallOptions::WithTimeout(0.05));
  while (!first_chunk)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stream->Cancel();
  ASSERT_TRUE(latch.Wait(std::chrono::seconds(60)));
  EXPECT_EQ(cancelled, grpc::StatusCode::CANCELLED);
  EXPECT_EQ(expired, grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST(ClientUnreachableTest, CallsFailWithUnavailable) {
  std::unique_ptr<Client> client = Client::Connect("127.0.0.1:1");
  v1::ModelInfo info;
  EXPECT_EQ(client->Info(&info, CallOptions::WithTimeout(5)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(client->WaitForReady(std::chrono::system_clock::now() +
                                    std::chrono::milliseconds(200)));
}

}  // namespace
}  // namespace slabserve
