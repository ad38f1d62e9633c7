// The scheduler's bookkeeping under stress: slots always return to the pool,
// queues stay fair and bounded, slow readers cost only their own slot,
// deadlines, cancellation, draining and failing steps end requests cleanly.
#include <atomic>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "engine/scheduler/scheduler.h"
#include "engine/scheduler/test_util.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace {

using ::slabserve::testing::Absorb;
using ::slabserve::testing::MakeCpuScheduler;
using ::slabserve::testing::ReadAll;
using ::slabserve::testing::RequestResult;
using ::slabserve::testing::RunToEnd;
using ::slabserve::testing::TinyModel;

Model* Griffin() { return TinyModel("griffin_tiny"); }

// `slots`: a state budget for exactly that many sequences (0: 1 GiB).
std::unique_ptr<Scheduler> Make(const SchedulerOptions& options, int slots = 0,
                                Model* model = Griffin()) {
  return MakeCpuScheduler(model, options, slots);
}

GenerationRequest Request(int prompt_length, int max_new_tokens,
                          uint32_t salt = 0) {
  return ::slabserve::testing::RandomRequest(prompt_length, max_new_tokens,
                                             salt);
}

std::shared_ptr<RequestStream> Submit(Scheduler& scheduler,
                                      const GenerationRequest& request) {
  auto stream = scheduler.Submit(request);
  EXPECT_TRUE(stream.ok()) << stream.status();
  return stream.ok() ? *stream : nullptr;
}

// Polls `done` for up to 10 s.
template <typename Predicate>
bool Eventually(Predicate done) {
  for (int i = 0; i < 1000; ++i) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return done();
}

TEST(SchedulerLifecycleTest, OnEventsLetsAReaderDrainWithoutWaiting) {
  auto scheduler = Make(SchedulerOptions());
  const int max_new_tokens = 40;
  auto stream = Submit(*scheduler, Request(8, max_new_tokens, 1));
  ASSERT_NE(stream, nullptr);
  // The callback only reads what is ready, never waits: everything must
  // still arrive, the end included.
  absl::Mutex mu;
  RequestResult result;
  result.completions.resize(1);
  int notifications = 0;
  bool ended = false;
  stream->SetOnEvents([&] {
    absl::MutexLock lock(&mu);
    ++notifications;
    // Until nothing is ready: the final events come with true.
    std::vector<StreamEvent> events;
    do {
      events.clear();
      if (!stream->Read(&events, absl::ZeroDuration())) ended = true;
      Absorb(events, result);
    } while (!events.empty());
  });
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(
        mu.AwaitWithTimeout(absl::Condition(&ended), absl::Seconds(30)));
    EXPECT_GT(notifications, 0);
    EXPECT_EQ(result.completions[0].ids().size(), max_new_tokens);
    EXPECT_EQ(result.completions[0].finish, FinishReason::kLength);
  }
  // Set after the end, it is called at once.
  auto late = Submit(*scheduler, Request(8, 2, 2));
  ASSERT_NE(late, nullptr);
  ReadAll(*late, 1);
  bool called = false;
  late->SetOnEvents([&] { called = true; });
  EXPECT_TRUE(called);
}

TEST(SchedulerLifecycleTest, SlotsReturnAfterFinishesCancelsAndDeadlines) {
  auto scheduler = Make(SchedulerOptions(), 12);
  ASSERT_EQ(scheduler->stats().slot_capacity, 12);
  std::mt19937 rng(3);
  struct Job {
    std::shared_ptr<RequestStream> stream;
    int n;
    int cancel_after;  // events read before Cancel; -1: never
  };
  std::vector<Job> jobs;
  for (int i = 0; i < 300; ++i) {
    GenerationRequest request =
        Request(1 + rng() % 50, 1 + rng() % 40, static_cast<uint32_t>(i));
    request.n = 1 + rng() % 3;
    request.priority = rng() % 3;
    if (rng() % 5 == 0) {
      request.deadline = absl::Now() + absl::Milliseconds(rng() % 30);
    }
    if (rng() % 2 == 0) {
      request.sampling.temperature = 1.0f;
      request.sampling.seed = i;
    }
    const int cancel_after = rng() % 5 == 0 ? static_cast<int>(rng() % 3) : -1;
    jobs.push_back({Submit(*scheduler, request), request.n, cancel_after});
    if (i % 30 == 0) absl::SleepFor(absl::Milliseconds(1));
  }
  std::map<FinishReason, int> reasons;
  absl::Mutex mu;
  auto reader = [&](int part) {
    for (size_t j = part; j < jobs.size(); j += 3) {
      RequestResult result;
      result.completions.resize(jobs[j].n);
      std::vector<StreamEvent> events;
      int reads = 0;
      while (true) {
        events.clear();
        bool more = jobs[j].stream->Read(&events, absl::Milliseconds(50));
        Absorb(events, result);
        if (!more) break;
        if (reads++ == jobs[j].cancel_after) jobs[j].stream->Cancel();
      }
      absl::MutexLock lock(&mu);
      for (const auto& completion : result.completions) {
        EXPECT_TRUE(completion.ended);
        ++reasons[completion.finish];
      }
    }
  };
  std::thread a(reader, 0), b(reader, 1), c(reader, 2);
  a.join();
  b.join();
  c.join();
  EXPECT_GT(reasons[FinishReason::kLength], 0);
  EXPECT_GT(reasons[FinishReason::kCancelled], 0);
  EXPECT_GT(reasons[FinishReason::kDeadline], 0);
  const SchedulerStats stats = scheduler->stats();
  EXPECT_EQ(stats.slots_in_use, 0);
  EXPECT_EQ(stats.state_bytes_in_use, 0u);
  EXPECT_EQ(stats.running, 0);
  EXPECT_EQ(stats.waiting, 0);
}

// Whether `stream` has events ready now (they are consumed).
bool HasEvents(RequestStream& stream) {
  std::vector<StreamEvent> events;
  stream.Read(&events, absl::ZeroDuration());
  return !events.empty();
}

TEST(SchedulerLifecycleTest, HigherPriorityFirstThenArrivalOrder) {
  SchedulerOptions options;
  options.stream_buffer_tokens = 4;  // an unread stream holds the slot
  auto scheduler = Make(options, 1);
  auto blocker = Submit(*scheduler, Request(5, 40));
  ASSERT_TRUE(Eventually([&] { return scheduler->stats().running == 1; }));
  GenerationRequest low = Request(5, 20);
  GenerationRequest high = Request(5, 20);
  high.priority = 1;
  std::vector<std::shared_ptr<RequestStream>> streams = {
      Submit(*scheduler, low), Submit(*scheduler, low),
      Submit(*scheduler, high)};
  // One slot, and each admitted stream stalls unread: the order of
  // admission shows in which stream has tokens, free of reader timing.
  ReadAll(*blocker, 1);
  for (int next : {2, 0, 1}) {
    ASSERT_TRUE(Eventually([&] { return HasEvents(*streams[next]); }))
        << "stream " << next << " never started";
    for (int i = 0; i < 3; ++i) {
      if (i != next && streams[i] != nullptr) {
        EXPECT_FALSE(HasEvents(*streams[i]))
            << "stream " << i << " ran before " << next;
      }
    }
    EXPECT_FALSE(ReadAll(*streams[next], 1).timed_out);
    streams[next] = nullptr;
  }
}

TEST(SchedulerLifecycleTest, LongPromptIsChunkedWhileDecodesContinue) {
  SchedulerOptions options;
  options.step_token_budget = 32;
  absl::Mutex mu;
  std::vector<StepMetrics> steps;
  options.on_step = [&](const StepMetrics& metrics) {
    absl::MutexLock lock(&mu);
    steps.push_back(metrics);
  };
  // The decoding stream neither pauses nor ends, however the test's thread
  // is scheduled: every step of the long prompt has a decode beside it.
  options.stream_buffer_tokens = 1 << 20;
  auto scheduler = Make(options);
  auto decoding = Submit(*scheduler, Request(4, 1 << 30));
  std::vector<StreamEvent> events;
  ASSERT_TRUE(decoding->Read(&events, absl::Seconds(10)));
  ASSERT_FALSE(events.empty());
  RequestResult long_prompt = RunToEnd(*scheduler, Request(640, 1, 9));
  EXPECT_EQ(long_prompt.completions[0].tokens.size(), 1u);
  int mixed_steps = 0, max_prefill = 0;
  {
    absl::MutexLock lock(&mu);
    for (const StepMetrics& step : steps) {
      if (step.prefill_tokens > 0 && step.decode_tokens > 0) ++mixed_steps;
      max_prefill = std::max(max_prefill, step.prefill_tokens);
      EXPECT_LE(step.prefill_tokens + step.decode_tokens, 32);
    }
  }
  // 640 prompt tokens at 31 a step, each step also decoding the stream.
  EXPECT_GE(mixed_steps, 20);
  EXPECT_EQ(max_prefill, 31);
  decoding->Cancel();
  RequestResult rest = ReadAll(*decoding, 1);
  EXPECT_EQ(rest.completions[0].finish, FinishReason::kCancelled);
}

TEST(SchedulerLifecycleTest, FullPoolQueuesThenFullQueueRejects) {
  SchedulerOptions options;
  const size_t request_bytes = WaitingBytes(Request(3, 50));
  options.max_waiting_bytes = 2 * request_bytes + request_bytes / 2;
  options.stream_buffer_tokens = 4;  // unread streams pause, holding slots
  auto scheduler = Make(options, 2);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 2; ++i)
    streams.push_back(Submit(*scheduler, Request(3, 50)));
  ASSERT_TRUE(Eventually([&] { return scheduler->stats().running == 2; }));
  for (int i = 0; i < 2; ++i)
    streams.push_back(Submit(*scheduler, Request(3, 50)));
  EXPECT_EQ(scheduler->stats().waiting, 2);
  EXPECT_EQ(scheduler->stats().waiting_bytes, 2 * request_bytes);
  auto rejected = scheduler->Submit(Request(3, 50));
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(
      rejected.status().message(),
      absl::StrCat("waiting queue is full: 2 requests hold ", 2 * request_bytes,
                   " bytes, this one needs ", request_bytes,
                   " more, max_waiting_bytes is ", options.max_waiting_bytes));
  // Reading lets everyone through, in turn.
  for (auto& stream : streams) {
    RequestResult result = ReadAll(*stream, 1);
    EXPECT_EQ(result.completions[0].tokens.size(), 50u);
  }
  EXPECT_EQ(scheduler->stats().slots_in_use, 0);
}

TEST(SchedulerLifecycleTest, BurstOfSmallRequestsQueuesPastAThousand) {
  // The queue is bounded by bytes, so a burst far larger than any fixed
  // request count waits for the one slot instead of being turned away.
  SchedulerOptions options;
  auto scheduler = Make(options, 1);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 3000; ++i) {
    absl::StatusOr<std::shared_ptr<RequestStream>> stream =
        scheduler->Submit(Request(3, 1, i));
    ASSERT_TRUE(stream.ok()) << i << ": " << stream.status();
    streams.push_back(*std::move(stream));
  }
  EXPECT_GT(scheduler->stats().waiting, 1024);
  for (auto& stream : streams) {
    EXPECT_EQ(ReadAll(*stream, 1).completions[0].tokens.size(), 1u);
  }
  EXPECT_EQ(scheduler->stats().waiting_bytes, 0u);
  EXPECT_EQ(scheduler->stats().slots_in_use, 0);
}

TEST(SchedulerLifecycleTest, SlowReaderDoesNotBlockOthers) {
  SchedulerOptions options;
  options.stream_buffer_tokens = 4;
  auto scheduler = Make(options);
  auto unread = Submit(*scheduler, Request(6, 100));
  std::vector<std::shared_ptr<RequestStream>> others;
  for (int i = 0; i < 20; ++i) {
    others.push_back(Submit(*scheduler, Request(5 + i, 30, i)));
  }
  for (auto& stream : others) {
    EXPECT_EQ(ReadAll(*stream, 1).completions[0].tokens.size(), 30u);
  }
  // The unread request is paused but keeps its slot.
  EXPECT_EQ(scheduler->stats().slots_in_use, 1);
  RequestResult result = ReadAll(*unread, 1);
  EXPECT_EQ(result.completions[0].tokens.size(), 100u);
  EXPECT_EQ(result.completions[0].finish, FinishReason::kLength);
  EXPECT_EQ(scheduler->stats().slots_in_use, 0);
}

TEST(SchedulerLifecycleTest, DeadlinesEndRunningAndQueuedRequests) {
  auto scheduler = Make(SchedulerOptions(), 1);
  GenerationRequest running = Request(4, 1 << 30);
  // Long enough that even a stalled machine runs a step before it passes;
  // the queued one expires first, behind it.
  running.deadline = absl::Now() + absl::Milliseconds(500);
  auto first = Submit(*scheduler, running);
  GenerationRequest queued = Request(4, 10);
  queued.deadline = absl::Now() + absl::Milliseconds(20);
  auto second = Submit(*scheduler, queued);
  RequestResult a = ReadAll(*first, 1);
  RequestResult b = ReadAll(*second, 1);
  EXPECT_EQ(a.completions[0].finish, FinishReason::kDeadline);
  EXPECT_GT(a.completions[0].tokens.size(), 0u);
  EXPECT_EQ(a.usage.completion_tokens, a.completions[0].tokens.size());
  EXPECT_EQ(b.completions[0].finish, FinishReason::kDeadline);
  EXPECT_TRUE(b.completions[0].tokens.empty());
  EXPECT_EQ(scheduler->stats().slots_in_use, 0);
}

TEST(SchedulerLifecycleTest, DrainFinishesInFlightThenCancelsAfterGrace) {
  {
    auto scheduler = Make(SchedulerOptions());
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int i = 0; i < 5; ++i) {
      streams.push_back(Submit(*scheduler, Request(8, 20, i)));
    }
    scheduler->Drain(absl::Seconds(30));
    auto refused = scheduler->Submit(Request(8, 20));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(refused.status().message(), "server is draining");
    for (auto& stream : streams) {
      RequestResult result = ReadAll(*stream, 1);
      EXPECT_EQ(result.completions[0].finish, FinishReason::kLength);
      EXPECT_EQ(result.completions[0].tokens.size(), 20u);
    }
  }
  auto scheduler = Make(SchedulerOptions(), 2);
  std::vector<std::shared_ptr<RequestStream>> endless;
  for (int i = 0; i < 3; ++i) {  // the third waits for a slot
    endless.push_back(Submit(*scheduler, Request(8, 1 << 30, i)));
  }
  std::vector<RequestResult> results(3);
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) {
    readers.emplace_back([&, i] { results[i] = ReadAll(*endless[i], 1); });
  }
  const absl::Time start = absl::Now();
  scheduler->Drain(absl::Milliseconds(100));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
  for (auto& reader : readers) reader.join();
  for (const RequestResult& result : results) {
    EXPECT_EQ(result.completions[0].finish, FinishReason::kCancelled);
  }
  EXPECT_EQ(scheduler->stats().slots_in_use, 0);
}

TEST(SchedulerLifecycleTest, DestroyingTheSchedulerEndsOpenStreams) {
  std::shared_ptr<RequestStream> stream;
  {
    auto scheduler = Make(SchedulerOptions());
    stream = Submit(*scheduler, Request(8, 1 << 30));
    std::vector<StreamEvent> events;
    ASSERT_TRUE(stream->Read(&events, absl::Seconds(10)));
  }
  RequestResult rest = ReadAll(*stream, 1);
  EXPECT_EQ(rest.completions[0].finish, FinishReason::kCancelled);
}

// Forwards to a real model but fails any batch holding `poison`, the way a
// model rejects input it cannot run.
class PoisonedModel : public Model {
 public:
  PoisonedModel(Model* inner, int32_t poison)
      : inner_(inner), poison_(poison) {}
  const ModelInfo& info() const override { return inner_->info(); }
  std::vector<StateSlabSpec> StateLayout() const override {
    return inner_->StateLayout();
  }
  absl::Status Forward(absl::Span<const SequenceChunk> batch, StatePool& pool,
                       float* logits) override {
    for (const SequenceChunk& chunk : batch) {
      for (int32_t id : chunk.tokens) {
        if (id == poison_) return absl::InternalError("poisoned token");
      }
    }
    return inner_->Forward(batch, pool, logits);
  }

 private:
  Model* inner_;
  int32_t poison_;
};

TEST(SchedulerLifecycleTest, FailedStepEndsOnlyTheAffectedRequest) {
  std::vector<GenerationRequest> good;
  for (int i = 0; i < 6; ++i) good.push_back(Request(10 + i, 12, 100 + i));
  std::vector<RequestResult> alone;
  {
    auto scheduler = Make(SchedulerOptions());
    for (const auto& request : good)
      alone.push_back(RunToEnd(*scheduler, request));
  }
  PoisonedModel poisoned(Griffin(), 3);
  auto scheduler = Make(SchedulerOptions(), 0, &poisoned);
  GenerationRequest bad = Request(10, 12);
  bad.prompt[4] = 3;
  auto bad_stream = Submit(*scheduler, bad);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const auto& request : good)
    streams.push_back(Submit(*scheduler, request));
  RequestResult failed = ReadAll(*bad_stream, 1);
  EXPECT_EQ(failed.completions[0].error.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(failed.completions[0].tokens.empty());
  for (size_t i = 0; i < good.size(); ++i) {
    RequestResult result = ReadAll(*streams[i], 1);
    EXPECT_TRUE(result.completions[0].error.ok());
    EXPECT_EQ(result.completions[0].ids(), alone[i].completions[0].ids());
  }
  EXPECT_EQ(scheduler->stats().slots_in_use, 0);
}

}  // namespace
}  // namespace slabserve
