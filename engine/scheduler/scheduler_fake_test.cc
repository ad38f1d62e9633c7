// The scheduler's own logic over FakeBackend, whose tokens are known in
// advance: admission, fork, the prefix cache, cancellation, deadlines,
// failing steps, slot accounting, and with simulated per-token blocks,
// admission by blocks, preemption by swap and resumption. No model math runs
// here.
#include <atomic>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engine/backend/fake_backend.h"
#include "engine/scheduler/scheduler.h"
#include "engine/scheduler/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace {

using ::slabserve::testing::CompletionResult;
using ::slabserve::testing::ReadAll;
using ::slabserve::testing::RequestResult;
using ::slabserve::testing::RunToEnd;
using ::testing::ElementsAre;

constexpr int kVocab = 512;

struct Harness {
  FakeBackend* backend;  // owned by the scheduler
  std::unique_ptr<Scheduler> scheduler;

  // Every slot and block is back, in the scheduler's stats and in the
  // backend, and nothing is left swapped out.
  void ExpectNoSlotsInUse() const {
    const SchedulerStats stats = scheduler->stats();
    EXPECT_EQ(stats.slots_in_use, 0);
    EXPECT_EQ(stats.blocks_in_use, 0);
    EXPECT_EQ(stats.state_bytes_in_use, 0u);
    EXPECT_EQ(stats.swapped, 0);
    EXPECT_EQ(stats.swap_bytes, 0u);
    EXPECT_EQ(backend->used(), 0);
  }
};

Harness Make(FakeBackendOptions backend_options = {},
             SchedulerOptions options = {}) {
  auto backend = std::make_unique<FakeBackend>(backend_options);
  FakeBackend* raw = backend.get();
  auto scheduler = Scheduler::Create(std::move(backend), options);
  EXPECT_TRUE(scheduler.ok()) << scheduler.status();
  return {raw, scheduler.ok() ? *std::move(scheduler) : nullptr};
}

GenerationRequest Request(int prompt_length, int max_new_tokens,
                          uint32_t salt = 0) {
  return ::slabserve::testing::RandomRequest(prompt_length, max_new_tokens,
                                             salt);
}

// What a slot seeded with `seed` generates after `prompt`: each sampled
// token is fed back.
std::vector<int32_t> Expected(std::vector<int32_t> history, uint64_t seed,
                              int tokens) {
  std::vector<int32_t> out;
  for (int i = 0; i < tokens; ++i) {
    out.push_back(FakeBackend::NextToken(history, seed, kVocab));
    history.push_back(out.back());
  }
  return out;
}

TEST(SchedulerFakeTest, EmitsTheBackendsTokensAndEndsOnLength) {
  Harness h = Make();
  std::vector<GenerationRequest> requests;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 40; ++i) {  // more than the 16 slots: some queue
    requests.push_back(Request(1 + i % 9, 1 + i % 13, i));
    requests.back().sampling.seed = 100 + i;
    requests.back().top_logprobs = i % 3 - 1;
    auto stream = h.scheduler->Submit(requests.back());
    ASSERT_TRUE(stream.ok()) << stream.status();
    streams.push_back(*stream);
  }
  for (size_t i = 0; i < streams.size(); ++i) {
    const GenerationRequest& request = requests[i];
    RequestResult result = ReadAll(*streams[i], 1);
    EXPECT_EQ(
        result.completions[0].ids(),
        Expected(request.prompt, request.sampling.seed, request.max_new_tokens))
        << i;
    EXPECT_EQ(result.completions[0].finish, FinishReason::kLength);
    ASSERT_FALSE(result.completions[0].tokens.empty());
    EXPECT_EQ(result.completions[0].tokens[0].top.size(),
              static_cast<size_t>(std::max(0, request.top_logprobs)));
    EXPECT_EQ(result.usage.prompt_tokens, request.prompt.size());
    EXPECT_EQ(result.usage.completion_tokens, request.max_new_tokens);
  }
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, StopTokenAndEosEndACompletion) {
  GenerationRequest request = Request(5, 12, 1);
  const std::vector<int32_t> free_run =
      Expected(request.prompt, request.sampling.seed, 12);
  FakeBackendOptions with_eos;
  with_eos.eos_id = free_run[7];
  Harness h = Make(with_eos);
  request.stop_token_ids = {free_run[4]};
  RequestResult stopped = RunToEnd(*h.scheduler, request);
  const auto stop = std::find(free_run.begin(), free_run.end(), free_run[4]);
  EXPECT_EQ(stopped.completions[0].ids(),
            std::vector<int32_t>(free_run.begin(), stop + 1));
  EXPECT_EQ(stopped.completions[0].finish, FinishReason::kStop);

  request.stop_token_ids.clear();
  request.ignore_eos = false;
  RequestResult eos = RunToEnd(*h.scheduler, request);
  const auto end = std::find(free_run.begin(), free_run.end(), free_run[7]);
  EXPECT_EQ(eos.completions[0].ids(),
            std::vector<int32_t>(free_run.begin(), end + 1));
  EXPECT_EQ(eos.completions[0].finish, FinishReason::kEos);
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, AShortPromptIsNotHeldBehindAHugeOne) {
  SchedulerOptions options;
  options.step_token_budget = 16;
  Harness h = Make({}, options);
  // 100,000 prompt tokens at 16 a step: thousands of steps of prefill. Its
  // first chunk waits in the backend while the small request arrives.
  h.backend->HoldSteps();
  auto huge = h.scheduler->Submit(Request(100000, 1, 1));
  ASSERT_TRUE(huge.ok()) << huge.status();
  for (int i = 0; i < 1000 && h.scheduler->stats().waiting != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  if (h.scheduler->stats().waiting != 0) {
    h.backend->ReleaseSteps();
    FAIL() << "the huge prompt was never admitted";
  }
  GenerationRequest small = Request(8, 1, 2);
  auto small_stream = h.scheduler->Submit(small);
  ASSERT_TRUE(small_stream.ok()) << small_stream.status();
  // Both streams report on the step loop's thread, so which had events
  // first is the scheduler's order, not the readers'.
  std::atomic<bool> huge_had_events = false, huge_first = false;
  (*huge)->SetOnEvents([&] { huge_had_events = true; });
  (*small_stream)->SetOnEvents([&] {
    if (huge_had_events) huge_first = true;
  });
  h.backend->ReleaseSteps();
  RequestResult result = ReadAll(**small_stream, 1);
  EXPECT_EQ(result.completions[0].ids(),
            Expected(small.prompt, small.sampling.seed, 1));
  // First come, first served would have made it wait for all the prefill.
  EXPECT_FALSE(huge_first);
  (*huge)->Cancel();
  ReadAll(**huge, 1);
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, FreeSlotMemoryIsReleasedOnceAfterWorkWhenIdle) {
  Harness h = Make();
  absl::SleepFor(absl::Milliseconds(2500));
  EXPECT_EQ(h.backend->memory_releases(), 0);  // no work yet: nothing to do
  RunToEnd(*h.scheduler, Request(5, 3, 1));
  EXPECT_EQ(h.backend->memory_releases(), 0);  // not while busy
  absl::SleepFor(absl::Milliseconds(3500));
  EXPECT_EQ(h.backend->memory_releases(), 1);  // once, after 2 s idle
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(h.backend->memory_releases(), 1);
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, ForkFeedsThePromptOnceAndSeedsEachCompletion) {
  Harness h = Make();
  GenerationRequest request = Request(30, 6, 2);
  request.n = 4;
  request.sampling.seed = 70;
  RequestResult result = RunToEnd(*h.scheduler, request);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(result.completions[i].ids(), Expected(request.prompt, 70 + i, 6))
        << "completion " << i;
  }
  EXPECT_EQ(result.usage.completion_tokens, 24);
  // The prompt once, then every completion's fed-back tokens but the last.
  EXPECT_EQ(h.backend->tokens_fed(), 30 + 4 * 5);
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, PrefixCacheHitsRestoreInsteadOfFeeding) {
  SchedulerOptions options;
  options.prefix_cache_bytes = 1 << 20;
  options.step_token_budget = 64;
  Harness h = Make({}, options);
  GenerationRequest first = Request(150, 4, 3);
  first.n = 2;
  first.sampling.seed = 9;
  RequestResult cold = RunToEnd(*h.scheduler, first);
  EXPECT_EQ(cold.usage.cached_prompt_tokens, 0);
  EXPECT_EQ(h.backend->tokens_fed(), 150 + 2 * 3);

  // The whole prompt is cached with its logits: nothing of it is fed, and
  // each completion still samples with its own seed.
  RequestResult warm = RunToEnd(*h.scheduler, first);
  EXPECT_EQ(warm.usage.cached_prompt_tokens, 150);
  EXPECT_EQ(h.backend->tokens_fed(), 2 * (150 + 2 * 3) - 150);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(warm.completions[i].ids(), cold.completions[i].ids());
    EXPECT_EQ(warm.completions[i].ids(), Expected(first.prompt, 9 + i, 4));
  }

  // A prompt sharing 130 tokens restores the block boundary at 128.
  GenerationRequest shares = first;
  shares.n = 1;
  shares.prompt.resize(130);
  shares.prompt.push_back(77);
  const int64_t fed_before = h.backend->tokens_fed();
  RequestResult partial = RunToEnd(*h.scheduler, shares);
  EXPECT_EQ(partial.usage.cached_prompt_tokens, 128);
  EXPECT_EQ(h.backend->tokens_fed() - fed_before, 3 + 3);
  EXPECT_EQ(partial.completions[0].ids(), Expected(shares.prompt, 9, 4));
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, AdmissionWaitsUntilAllNSlotsAreFree) {
  FakeBackendOptions two_slots;
  two_slots.capacity = 2;
  SchedulerOptions options;
  options.stream_buffer_tokens = 2;  // unread streams pause, keeping slots
  Harness h = Make(two_slots, options);
  GenerationRequest pair = Request(4, 20, 4);
  pair.n = 2;
  auto holder = h.scheduler->Submit(pair);
  ASSERT_TRUE(holder.ok());
  for (int i = 0; i < 1000 && h.scheduler->stats().running == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  GenerationRequest first = Request(4, 3, 5);
  GenerationRequest second = Request(4, 3, 6);
  auto first_stream = h.scheduler->Submit(first);
  auto second_stream = h.scheduler->Submit(second);
  ASSERT_TRUE(first_stream.ok() && second_stream.ok());
  absl::SleepFor(absl::Milliseconds(50));
  SchedulerStats stats = h.scheduler->stats();
  EXPECT_EQ(stats.slots_in_use, 2);
  EXPECT_EQ(stats.running, 1);
  EXPECT_EQ(stats.waiting, 2);
  // Neither fits beside the pair; once it is read, both run.
  RequestResult held = ReadAll(**holder, 2);
  EXPECT_EQ(held.completions[1].ids(), Expected(pair.prompt, 1, 20));
  EXPECT_EQ(ReadAll(**first_stream, 1).completions[0].ids(),
            Expected(first.prompt, 0, 3));
  EXPECT_EQ(ReadAll(**second_stream, 1).completions[0].ids(),
            Expected(second.prompt, 0, 3));
  h.ExpectNoSlotsInUse();
}

// Reads `request` from the step loop's own notifications, so each read
// takes exactly what the stream let through at that moment; returns the
// token count of every read that had events.
std::vector<int> ReadSizesAsNotified(Harness& h,
                                     const GenerationRequest& request,
                                     RequestResult* result) {
  h.backend->HoldSteps();  // nothing is pushed before the callback is set
  auto stream = h.scheduler->Submit(request);
  EXPECT_TRUE(stream.ok()) << stream.status();
  if (!stream.ok()) {
    h.backend->ReleaseSteps();
    return {};
  }
  struct Reads {  // shared: the callback may outlive this call briefly
    absl::Mutex mu;
    std::vector<int> sizes;
    RequestResult result;
    bool ended = false;
  };
  auto reads = std::make_shared<Reads>();
  reads->result.completions.resize(request.n);
  RequestStream* raw = stream->get();  // alive while the step loop pushes
  raw->SetOnEvents([reads, raw] {
    absl::MutexLock lock(&reads->mu);
    while (true) {  // the final events come with true, the end after them
      std::vector<StreamEvent> events;
      if (!raw->Read(&events, absl::ZeroDuration())) reads->ended = true;
      if (events.empty()) return;
      int tokens = 0;
      for (const StreamEvent& event : events) {
        tokens += static_cast<int>(event.tokens.size());
      }
      reads->sizes.push_back(tokens);
      ::slabserve::testing::Absorb(events, reads->result);
    }
  });
  h.backend->ReleaseSteps();
  absl::MutexLock lock(&reads->mu);
  const bool ended = reads->mu.AwaitWithTimeout(absl::Condition(&reads->ended),
                                                absl::Seconds(30));
  EXPECT_TRUE(ended) << "the stream never ended";
  *result = reads->result;
  return reads->sizes;
}

TEST(SchedulerFakeTest, StreamIntervalGathersStepsIntoFewerReads) {
  SchedulerOptions options;
  options.stream_interval = 4;
  Harness h = Make({}, options);
  GenerationRequest request = Request(4, 14, 3);
  RequestResult result;
  std::vector<int> sizes = ReadSizesAsNotified(h, request, &result);
  EXPECT_EQ(result.completions[0].ids(), Expected(request.prompt, 0, 14));
  EXPECT_EQ(result.completions[0].finish, FinishReason::kLength);
  // The first token at once, then groups of four steps, the end at once.
  EXPECT_THAT(sizes, ElementsAre(1, 4, 4, 4, 1));
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, AFullStreamBufferIsDeliveredBeforeTheInterval) {
  SchedulerOptions options;
  options.stream_interval = 8;
  options.stream_buffer_tokens = 4;  // two steps of a request with n = 2
  Harness h = Make({}, options);
  GenerationRequest pair = Request(4, 9, 5);
  pair.n = 2;
  RequestResult result;
  std::vector<int> sizes = ReadSizesAsNotified(h, pair, &result);
  EXPECT_EQ(result.completions[1].ids(), Expected(pair.prompt, 1, 9));
  // Two tokens a step: the first step at once, then every full buffer.
  EXPECT_THAT(sizes, ElementsAre(2, 4, 4, 4, 4));
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, CancelAndDeadlinesEndRequestsAndFreeSlots) {
  FakeBackendOptions one_slot;
  one_slot.capacity = 1;
  Harness h = Make(one_slot);
  auto endless = h.scheduler->Submit(Request(4, 1 << 30));
  ASSERT_TRUE(endless.ok());
  std::vector<StreamEvent> events;
  ASSERT_TRUE((*endless)->Read(&events, absl::Seconds(10)));
  GenerationRequest queued = Request(4, 5);
  queued.deadline = absl::Now() + absl::Milliseconds(20);
  auto expired = h.scheduler->Submit(queued);
  ASSERT_TRUE(expired.ok());
  RequestResult timed_out = ReadAll(**expired, 1);
  EXPECT_EQ(timed_out.completions[0].finish, FinishReason::kDeadline);
  EXPECT_TRUE(timed_out.completions[0].tokens.empty());
  (*endless)->Cancel();
  EXPECT_EQ(ReadAll(**endless, 1).completions[0].finish,
            FinishReason::kCancelled);

  GenerationRequest running = Request(4, 1 << 30);
  // Long enough that even a stalled machine runs a step before it passes.
  running.deadline = absl::Now() + absl::Milliseconds(500);
  RequestResult late = RunToEnd(*h.scheduler, running);
  EXPECT_EQ(late.completions[0].finish, FinishReason::kDeadline);
  EXPECT_GT(late.completions[0].tokens.size(), 0u);
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, FailingChunkEndsOnlyItsRequest) {
  Harness h = Make();
  h.backend->FailChunksWith(3);
  GenerationRequest bad = Request(10, 8, 7);
  bad.n = 3;
  bad.prompt[5] = 3;
  auto bad_stream = h.scheduler->Submit(bad);
  ASSERT_TRUE(bad_stream.ok());
  std::vector<GenerationRequest> good;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 6; ++i) {
    good.push_back(Request(8 + i, 8, 20 + i));
    streams.push_back(*h.scheduler->Submit(good.back()));
  }
  RequestResult failed = ReadAll(**bad_stream, 3);
  for (const auto& completion : failed.completions) {
    EXPECT_EQ(completion.error.code(), absl::StatusCode::kInternal);
    EXPECT_EQ(completion.error.message(), "poisoned token 3");
    EXPECT_EQ(completion.finish, FinishReason::kNone);
    EXPECT_TRUE(completion.tokens.empty());
  }
  for (size_t i = 0; i < good.size(); ++i) {
    RequestResult result = ReadAll(*streams[i], 1);
    EXPECT_TRUE(result.completions[0].error.ok())
        << result.completions[0].error;
    EXPECT_EQ(result.completions[0].ids(), Expected(good[i].prompt, 0, 8));
  }
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, FailedStepEndsItsRequestsWithTheBackendsError) {
  Harness h = Make();
  // The loop is idle, so the next step is this request's prefill.
  h.backend->FailNextStep(absl::UnavailableError("device lost"));
  RequestResult failed = RunToEnd(*h.scheduler, Request(6, 4, 8));
  EXPECT_EQ(failed.completions[0].error, absl::UnavailableError("device lost"));
  EXPECT_TRUE(failed.completions[0].tokens.empty());
  // The scheduler goes on.
  GenerationRequest next = Request(6, 4, 9);
  EXPECT_EQ(RunToEnd(*h.scheduler, next).completions[0].ids(),
            Expected(next.prompt, 0, 4));
  h.ExpectNoSlotsInUse();
}

// A backend with simulated per-token state: `blocks` blocks of 4 tokens.
FakeBackendOptions WithBlocks(int blocks, int capacity = 8) {
  FakeBackendOptions options;
  options.capacity = capacity;
  options.block_tokens = 4;
  options.blocks = blocks;
  return options;
}

// Waits (bounded) until `done` holds for the scheduler's stats.
template <typename Predicate>
bool AwaitStats(const Scheduler& scheduler, Predicate done) {
  for (int i = 0; i < 2000; ++i) {
    if (done(scheduler.stats())) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return false;
}

TEST(SchedulerFakeTest, APromptNeedingMoreBlocksThanThePoolIsRejected) {
  Harness h = Make(WithBlocks(20));
  absl::StatusOr<std::shared_ptr<RequestStream>> stream =
      h.scheduler->Submit(Request(81, 4));  // 21 blocks of 4
  EXPECT_EQ(stream.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(stream.status().message(),
            "prompt of 81 tokens needs 21 state blocks of 4 tokens; the state "
            "memory holds only 20");
  EXPECT_EQ(h.scheduler->stats().block_capacity, 20);
  GenerationRequest fits = Request(80, 1);  // the whole pool, alone
  EXPECT_EQ(RunToEnd(*h.scheduler, fits).completions[0].ids(),
            Expected(fits.prompt, 0, 1));
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, AdmissionWaitsForThePromptsBlocks) {
  SchedulerOptions options;
  options.stream_buffer_tokens = 2;  // unread streams pause, keeping blocks
  Harness h = Make(WithBlocks(20), options);
  GenerationRequest holder = Request(40, 6, 1);  // 10 blocks, then 11
  auto held = h.scheduler->Submit(holder);
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(AwaitStats(*h.scheduler, [](const SchedulerStats& stats) {
    return stats.blocks_in_use == 11;
  }));
  // 10 prompt blocks + the watermark of 1 do not fit the 9 free: it waits
  // though slots are free.
  GenerationRequest second = Request(40, 3, 2);
  auto waiting = h.scheduler->Submit(second);
  ASSERT_TRUE(waiting.ok());
  absl::SleepFor(absl::Milliseconds(50));
  SchedulerStats stats = h.scheduler->stats();
  EXPECT_EQ(stats.running, 1);
  EXPECT_EQ(stats.waiting, 1);
  EXPECT_EQ(stats.slots_in_use, 1);
  EXPECT_EQ(ReadAll(**held, 1).completions[0].ids(),
            Expected(holder.prompt, 0, 6));
  EXPECT_EQ(ReadAll(**waiting, 1).completions[0].ids(),
            Expected(second.prompt, 0, 3));
  EXPECT_EQ(h.scheduler->stats().preemptions, 0);
  h.ExpectNoSlotsInUse();
}

// Requests that together outgrow the pool, each with its own seed; every
// one must still produce exactly its own tokens.
struct Crowd {
  std::vector<GenerationRequest> requests;
  std::vector<std::shared_ptr<RequestStream>> streams;

  void Submit(Scheduler& scheduler, GenerationRequest request) {
    auto stream = scheduler.Submit(request);
    ASSERT_TRUE(stream.ok()) << stream.status();
    requests.push_back(std::move(request));
    streams.push_back(*stream);
  }
  void ExpectExact() {
    for (size_t i = 0; i < streams.size(); ++i) {
      const GenerationRequest& request = requests[i];
      RequestResult result = ReadAll(*streams[i], request.n);
      for (int c = 0; c < request.n; ++c) {
        EXPECT_TRUE(result.completions[c].error.ok())
            << result.completions[c].error;
        EXPECT_EQ(result.completions[c].ids(),
                  Expected(request.prompt, request.sampling.seed + c,
                           request.max_new_tokens))
            << "request " << i << " completion " << c;
      }
    }
  }
};

TEST(SchedulerFakeTest, PreemptsTheMostRecentlyAdmittedAndResumesExactly) {
  // Three sequences of 8 + 20 tokens need 7 blocks each; 12 hold two.
  Harness h = Make(WithBlocks(12));
  h.backend->HoldSteps();  // all three are admitted before any decodes
  Crowd crowd;
  for (int i = 0; i < 3; ++i) {
    GenerationRequest request = Request(8, 20, 10 + i);
    request.sampling.seed = 100 + i;
    request.top_logprobs = 1;
    crowd.Submit(*h.scheduler, request);
  }
  h.backend->ReleaseSteps();
  crowd.ExpectExact();
  const std::vector<uint64_t> victims = h.backend->swapped_seeds();
  ASSERT_FALSE(victims.empty());
  EXPECT_EQ(victims[0], 102u);  // the last admitted goes first
  // The first admitted is never the most recent while others run.
  EXPECT_EQ(std::count(victims.begin(), victims.end(), 100u), 0);
  EXPECT_EQ(h.backend->swaps_in(), static_cast<int64_t>(victims.size()));
  EXPECT_EQ(h.scheduler->stats().preemptions,
            static_cast<int64_t>(victims.size()));
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, PreemptsTheLowestPriorityFirst) {
  Harness h = Make(WithBlocks(12));
  h.backend->HoldSteps();
  Crowd crowd;
  for (int i = 0; i < 3; ++i) {
    GenerationRequest request = Request(8, 20, 20 + i);
    request.sampling.seed = 200 + i;
    request.priority = i == 0 ? 0 : 5;  // the first admitted is the least
    crowd.Submit(*h.scheduler, request);
  }
  // A fork of three completions, preempted and resumed as one.
  GenerationRequest forked = Request(8, 12, 23);
  forked.sampling.seed = 300;
  forked.n = 3;
  forked.priority = 1;
  crowd.Submit(*h.scheduler, forked);
  h.backend->ReleaseSteps();
  crowd.ExpectExact();
  const std::vector<uint64_t> victims = h.backend->swapped_seeds();
  ASSERT_FALSE(victims.empty());
  EXPECT_EQ(victims[0], 200u);
  EXPECT_GT(std::count(victims.begin(), victims.end(), 200u), 0);
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, APreemptedRequestsHeldTokensAreDeliveredAtOnce) {
  SchedulerOptions options;
  options.stream_interval = 5;
  Harness h = Make(WithBlocks(12), options);
  h.backend->HoldSteps();
  Crowd crowd;
  for (int i = 0; i < 2; ++i) {
    GenerationRequest request = Request(8, 20, 40 + i);
    request.sampling.seed = 500 + i;
    crowd.Submit(*h.scheduler, request);
  }
  // The last admitted is the one preempted; its reads as they come.
  GenerationRequest victim = Request(8, 20, 42);
  victim.sampling.seed = 502;
  RequestResult result;
  const std::vector<int> sizes = ReadSizesAsNotified(h, victim, &result);
  crowd.ExpectExact();
  EXPECT_EQ(result.completions[0].ids(), Expected(victim.prompt, 502, 20));
  ASSERT_FALSE(h.backend->swapped_seeds().empty());
  EXPECT_EQ(h.backend->swapped_seeds()[0], 502u);
  // Without the release: the first token, groups of five, the rest at the
  // end. With it, what the interval held when the request was swapped out
  // goes then, a smaller group before the last.
  ASSERT_GE(sizes.size(), 3u);
  EXPECT_EQ(sizes[0], 1);
  EXPECT_TRUE(std::any_of(sizes.begin() + 1, sizes.end() - 1, [&](int n) {
    return n > 0 && n < options.stream_interval;
  })) << ::testing::PrintToString(sizes);
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, AVictimPastTheSwapBudgetEndsWithAClearError) {
  SchedulerOptions options;
  options.max_swap_bytes = 0;  // no swapping: every victim ends
  Harness h = Make(WithBlocks(12), options);
  h.backend->HoldSteps();
  std::vector<std::shared_ptr<RequestStream>> streams;
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 3; ++i) {
    requests.push_back(Request(8, 20, 30 + i));
    requests.back().sampling.seed = 400 + i;
    streams.push_back(*h.scheduler->Submit(requests.back()));
  }
  h.backend->ReleaseSteps();
  int ended_by_budget = 0;
  for (size_t i = 0; i < streams.size(); ++i) {
    const CompletionResult result = ReadAll(*streams[i], 1).completions[0];
    const std::vector<int32_t> expected =
        Expected(requests[i].prompt, 400 + i, 20);
    if (result.error.ok()) {
      EXPECT_EQ(result.ids(), expected);
      continue;
    }
    ++ended_by_budget;
    EXPECT_EQ(result.error.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(std::string(result.error.message()),
                ::testing::HasSubstr("do not fit the host swap budget"));
    // What it produced before it ended is still its own.
    EXPECT_EQ(result.ids(),
              std::vector<int32_t>(expected.begin(),
                                   expected.begin() + result.tokens.size()));
  }
  EXPECT_GT(ended_by_budget, 0);
  EXPECT_LT(ended_by_budget, 3);
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, ASequenceOutgrowingThePoolAloneEndsWithAnError) {
  Harness h = Make(WithBlocks(4));
  GenerationRequest request = Request(8, 100, 40);
  RequestResult result = RunToEnd(*h.scheduler, request);
  // 16 tokens fill the 4 blocks: the prefill's token and 8 decodes.
  EXPECT_EQ(result.completions[0].error.code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(result.completions[0].ids(), Expected(request.prompt, 0, 9));
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, ACancelledSwappedRequestFreesItsHostCopy) {
  SchedulerOptions options;
  options.stream_buffer_tokens = 8;  // unread streams pause, keeping blocks
  Harness h = Make(WithBlocks(5), options);
  GenerationRequest high = Request(4, 12, 50);
  high.priority = 1;
  auto kept = h.scheduler->Submit(high);
  ASSERT_TRUE(kept.ok());
  auto victim = h.scheduler->Submit(Request(4, 12, 51));
  ASSERT_TRUE(victim.ok());
  // Both grow toward 3 blocks before their readers pause them: 6 > 5.
  ASSERT_TRUE(AwaitStats(*h.scheduler, [](const SchedulerStats& stats) {
    return stats.swapped == 1 && stats.swap_bytes > 0;
  }));
  (*victim)->Cancel();
  EXPECT_EQ(ReadAll(**victim, 1).completions[0].finish,
            FinishReason::kCancelled);
  EXPECT_EQ(ReadAll(**kept, 1).completions[0].ids(),
            Expected(high.prompt, 0, 12));
  EXPECT_EQ(h.scheduler->stats().preemptions, 1);
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, SwappedRequestsResumeBeforeNewAdmissions) {
  SchedulerOptions options;
  options.stream_buffer_tokens = 8;  // unread streams pause, keeping blocks
  Harness h = Make(WithBlocks(5), options);
  GenerationRequest high = Request(4, 12, 52);
  high.priority = 1;
  auto kept = h.scheduler->Submit(high);
  GenerationRequest low = Request(4, 12, 53);
  auto swapped = h.scheduler->Submit(low);
  ASSERT_TRUE(kept.ok() && swapped.ok());
  ASSERT_TRUE(AwaitStats(*h.scheduler, [](const SchedulerStats& stats) {
    return stats.swapped == 1;
  }));
  // A short prompt whose block is free still waits behind the swapped one.
  GenerationRequest late = Request(4, 2, 54);
  late.priority = 2;
  auto queued = h.scheduler->Submit(late);
  ASSERT_TRUE(queued.ok());
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(h.scheduler->stats().waiting, 1);
  EXPECT_EQ(h.scheduler->stats().swapped, 1);
  EXPECT_EQ(ReadAll(**kept, 1).completions[0].ids(),
            Expected(high.prompt, 0, 12));
  EXPECT_EQ(ReadAll(**swapped, 1).completions[0].ids(),
            Expected(low.prompt, 0, 12));
  EXPECT_EQ(ReadAll(**queued, 1).completions[0].ids(),
            Expected(late.prompt, 0, 2));
  h.ExpectNoSlotsInUse();
}

TEST(SchedulerFakeTest, CachedPrefixesShareBlocksAndGiveThemUpUnderPressure) {
  SchedulerOptions options;
  options.prefix_cache_bytes = 1 << 20;
  Harness h = Make(WithBlocks(40), options);
  GenerationRequest first = Request(100, 2, 60);  // 25 blocks
  RunToEnd(*h.scheduler, first);
  // The cache pins the prompt's blocks (shared, not copied).
  EXPECT_EQ(h.scheduler->stats().blocks_in_use, 25);
  RequestResult warm = RunToEnd(*h.scheduler, first);
  EXPECT_EQ(warm.usage.cached_prompt_tokens, 100);
  EXPECT_EQ(warm.completions[0].ids(), Expected(first.prompt, 0, 2));
  // A different prompt that needs 30 blocks: the cached ones are evicted.
  GenerationRequest other = Request(120, 2, 61);
  EXPECT_EQ(RunToEnd(*h.scheduler, other).completions[0].ids(),
            Expected(other.prompt, 0, 2));
  EXPECT_EQ(h.scheduler->stats().preemptions, 0);
}

}  // namespace
}  // namespace slabserve
