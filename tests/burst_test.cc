// End-to-end: a burst of 2,000 streams opened at once against the default
// config and model, twice over (4,000 requests). With thousands of slots
// every request must be served: the waiting queue is bounded by the bytes its
// requests hold, not by a count below the slot capacity.
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "tests/server_process.h"

namespace slabserve::testing {
namespace {

constexpr int kConcurrent = 2000;
constexpr int kRounds = 2;
constexpr int kMaxTokens = 4;

// Resident memory of `pid` in MiB (0 if unknown).
int64_t ResidentMib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) / 1024;
  }
  return 0;
}

TEST(BurstTest, TwoThousandStreamsAtOnceAreAllServed) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--config=configs/default.textproto"});
  ASSERT_TRUE(server.ok()) << server.status();
  const int64_t resident_before = ResidentMib((*server)->pid());
  ConnectOptions connect;
  connect.channels = 4;
  std::unique_ptr<Client> client =
      Client::Connect((*server)->address(), connect);
  v1::ModelInfo info;
  ASSERT_TRUE(client->Info(&info).ok());
  // Thousands of slots, so nothing but the queue's bound could refuse; the
  // streams arrive faster than steps admit them, so many wait at once.
  ASSERT_GT(info.slot_capacity(), 1024);

  v1::GenerateRequest request;
  request.set_text("In the beginning");
  request.set_max_tokens(kMaxTokens);
  request.set_ignore_eos(true);
  const CallOptions options = CallOptions::WithTimeout(240);
  for (int round = 0; round < kRounds; ++round) {
    std::mutex mu;
    std::map<std::string, int> failures;  // "CODE: message" -> count
    std::atomic<int> tokens{0}, done{0};
    absl::Notification all_done;
    std::vector<std::shared_ptr<GenerateStream>> streams;
    for (int i = 0; i < kConcurrent; ++i) {
      StreamCallbacks callbacks;
      callbacks.on_chunk = [&](const v1::GenerateChunk& chunk) {
        tokens += chunk.token_ids_size();
      };
      callbacks.on_done = [&](const grpc::Status& status) {
        if (!status.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          ++failures[StatusCodeName(status.error_code()) + ": " +
                     status.error_message()];
        }
        if (++done == kConcurrent) all_done.Notify();
      };
      streams.push_back(client->GenerateAsync(request, callbacks, options));
    }
    ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(300)))
        << "round " << round << ": " << done << " of " << kConcurrent
        << " streams ended";
    std::string report;
    for (const auto& [what, count] : failures) {
      report += std::to_string(count) + " x " + what + "\n";
    }
    EXPECT_TRUE(failures.empty()) << "round " << round << ":\n" << report;
    EXPECT_EQ(tokens, kConcurrent * kMaxTokens) << "round " << round;
  }
  // Once idle, the memory the burst touched (slots' state pages, freed
  // heap) goes back: the burst filled ~256 MiB of state. (Not under ASan,
  // whose quarantine keeps freed memory on purpose.)
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "resident memory is not meaningful under ASan";
#endif
  int64_t resident = ResidentMib((*server)->pid());
  for (int i = 0; i < 150 && resident > resident_before + 128; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    resident = ResidentMib((*server)->pid());
  }
  EXPECT_LE(resident, resident_before + 128)
      << "MiB resident after the bursts; " << resident_before << " before";
}

}  // namespace
}  // namespace slabserve::testing
