#include "loadtest/runner.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace slabload {
namespace {

using Clock = std::chrono::steady_clock;
using slabserve::GenerateStream;
namespace v1 = slabserve::v1;

std::atomic<bool> g_interrupted{false};

void OnInterrupt(int) { g_interrupted.store(true); }

// The dispatcher wakes at least this often to check bounds and signals.
constexpr auto kPoll = std::chrono::milliseconds(50);

class LoadRun {
 public:
  LoadRun(const StreamStarter& start, Workload& workload,
          const RunConfig& config)
      : start_stream_(start), workload_(workload), config_(config) {}

  RunResult Run() {
    start_ = Clock::now();
    std::thread progress;
    if (config_.progress) progress = std::thread([this] { ProgressLoop(); });
    Dispatch();
    WaitForInFlight();
    {
      std::lock_guard<std::mutex> lock(mu_);
      finished_ = true;
    }
    cv_.notify_all();
    if (progress.joinable()) progress.join();
    RunResult result;
    result.stopped_early = stopped_early_;
    result.records.assign(std::make_move_iterator(records_.begin()),
                          std::make_move_iterator(records_.end()));
    return result;
  }

 private:
  double Now() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
  }

  bool OpenLoop() const { return config_.rate > 0 || config_.burst; }

  // Returns why sending must stop now, or "" to go on. Holds mu_.
  std::string StopReason(bool warmup, double now) const {
    if (g_interrupted.load()) return "interrupted";
    // Most requests failing, none succeeding: a server that rejects
    // everything (long requests still in flight do not count as success).
    if (config_.fail_fast_after > 0 && ok_ == 0 &&
        failed_ >= config_.fail_fast_after && failed_ * 2 >= issued_) {
      return absl::StrCat("the first ", failed_,
                          " requests all failed; first error: ", first_error_);
    }
    if (warmup) return "";
    if (config_.requests > 0 && measured_issued_ >= config_.requests) {
      return "done";
    }
    if (config_.duration_s > 0 && measure_start_ >= 0 &&
        now - measure_start_ >= config_.duration_s) {
      return "done";
    }
    return "";
  }

  void Dispatch() {
    std::unique_ptr<PoissonArrivals> arrivals;
    if (config_.rate > 0 && !config_.burst) {
      arrivals =
          std::make_unique<PoissonArrivals>(config_.rate, config_.arrival_seed);
    }
    double next_arrival = arrivals ? arrivals->Next() : 0;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      const double now = Now();
      const bool warmup = config_.warmup_s > 0
                              ? now < config_.warmup_s
                              : issued_ < config_.warmup_requests;
      const std::string stop = StopReason(warmup, now);
      if (!stop.empty()) {
        if (stop != "done") stopped_early_ = stop;
        return;
      }
      if (!OpenLoop() && inflight_ >= config_.concurrency) {
        cv_.wait_for(lock, kPoll);
        continue;
      }
      if (OpenLoop() && now < next_arrival) {
        cv_.wait_for(
            lock,
            std::min<std::chrono::duration<double>>(
                kPoll, std::chrono::duration<double>(next_arrival - now)));
        continue;
      }
      RequestRecord& record = records_.emplace_back();
      record.warmup = warmup;
      record.start = now;
      const int64_t id = issued_++;
      ++inflight_;
      if (!warmup && measured_issued_++ == 0) measure_start_ = now;
      lock.unlock();
      Issue(id, &record);
      if (arrivals) next_arrival = arrivals->Next();
      lock.lock();
    }
  }

  void Issue(int64_t id, RequestRecord* record) {
    slabserve::StreamCallbacks callbacks;
    // Each stream's callbacks run one at a time, so they write its record
    // without a lock; OnDone publishes it under mu_.
    callbacks.on_chunk = [this, record](const v1::GenerateChunk& chunk) {
      if (chunk.token_ids_size() > 0) {
        record->chunk_times.push_back(Now());
        record->chunk_tokens.push_back(chunk.token_ids_size());
        tokens_.fetch_add(chunk.token_ids_size(), std::memory_order_relaxed);
      }
      if (chunk.has_usage() && chunk.usage().prompt_tokens() > 0) {
        record->prompt_tokens = chunk.usage().prompt_tokens();
      }
    };
    callbacks.on_done = [this, id, record](const grpc::Status& status) {
      record->end = Now();
      record->ok = status.ok();
      record->status_code = slabserve::StatusCodeName(status.error_code());
      record->error = status.error_message();
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (status.ok()) {
          ++ok_;
        } else if (failed_++ == 0) {
          first_error_ = absl::StrCat(record->status_code, ": ", record->error);
        }
        --inflight_;
        done_ids_.insert(id);
        streams_.erase(id);
      }
      cv_.notify_all();
    };
    v1::GenerateRequest request = workload_.Next();
    std::shared_ptr<GenerateStream> stream =
        start_stream_(request, std::move(callbacks), config_.request_timeout_s);
    std::lock_guard<std::mutex> lock(mu_);
    // Keep the handle for cancellation unless the stream already ended.
    if (done_ids_.erase(id) == 0) streams_[id] = std::move(stream);
  }

  void WaitForInFlight() {
    std::unique_lock<std::mutex> lock(mu_);
    bool cancelled = false;
    while (inflight_ > 0) {
      if (g_interrupted.load() && !cancelled) {
        for (auto& [id, stream] : streams_) stream->Cancel();
        cancelled = true;
      }
      cv_.wait_for(lock, kPoll);
    }
  }

  void ProgressLoop() {
    const int64_t total =
        config_.requests > 0 ? config_.requests + config_.warmup_requests : 0;
    int64_t last_tokens = 0;
    double last_time = 0;
    double rate = 0;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      // The predicate keeps completions (which notify cv_) from redrawing.
      if (cv_.wait_for(lock, std::chrono::milliseconds(250),
                       [this] { return finished_; })) {
        break;
      }
      const double now = Now();
      const int64_t tokens = tokens_.load(std::memory_order_relaxed);
      if (now - last_time >= 0.5) {
        rate = (tokens - last_tokens) / (now - last_time);
        last_tokens = tokens;
        last_time = now;
      }
      const int64_t done = ok_ + failed_;
      std::string bar;
      if (total > 0) {
        constexpr int kWidth = 30;
        const int filled = static_cast<int>(kWidth * done / total);
        bar = absl::StrCat("[", std::string(filled, '#'),
                           std::string(kWidth - filled, ' '), "] ");
      }
      std::fprintf(stderr,
                   "\r\033[2K%s%lld%s done  %d in flight  %.0f tok/s  "
                   "%lld errors  %.1f s",
                   bar.c_str(), static_cast<long long>(done),
                   total > 0 ? absl::StrCat("/", total).c_str() : "", inflight_,
                   rate, static_cast<long long>(failed_), now);
      std::fflush(stderr);
    }
    std::fprintf(stderr, "\r\033[2K");
    std::fflush(stderr);
  }

  const StreamStarter& start_stream_;
  Workload& workload_;
  const RunConfig config_;
  Clock::time_point start_;
  std::atomic<int64_t> tokens_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  // A deque keeps element addresses stable while it grows, so callbacks can
  // hold a pointer to their record.
  std::deque<RequestRecord> records_;
  std::unordered_map<int64_t, std::shared_ptr<GenerateStream>> streams_;
  std::unordered_set<int64_t> done_ids_;
  int inflight_ = 0;
  int64_t issued_ = 0;
  int64_t measured_issued_ = 0;
  double measure_start_ = -1;
  int64_t ok_ = 0;
  int64_t failed_ = 0;
  std::string first_error_;
  std::string stopped_early_;
  bool finished_ = false;
};

}  // namespace

RunResult RunLoad(const StreamStarter& start, Workload& workload,
                  const RunConfig& config) {
  LoadRun run(start, workload, config);
  return run.Run();
}

void InstallInterruptHandler() { std::signal(SIGINT, OnInterrupt); }

bool Interrupted() { return g_interrupted.load(); }

}  // namespace slabload
