#include "engine/scheduler/test_util.h"

#include <map>
#include <random>

#include "absl/synchronization/mutex.h"
#include "engine/backend/cpu_backend.h"
#include "engine/models/registry.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace testing {

Model* TinyModel(const std::string& name) {
  static absl::Mutex mu;
  static auto* models = new std::map<std::string, std::unique_ptr<Model>>();
  absl::MutexLock lock(&mu);
  std::unique_ptr<Model>& model = (*models)[name];
  if (model == nullptr) {
    absl::StatusOr<std::unique_ptr<Model>> loaded =
        LoadModel("tests/golden/" + name);
    if (!loaded.ok()) {
      ADD_FAILURE() << loaded.status();
      return nullptr;
    }
    model = *std::move(loaded);
  }
  return model.get();
}

std::unique_ptr<Scheduler> MakeCpuScheduler(Model* model,
                                            const SchedulerOptions& options,
                                            int slots) {
  if (model == nullptr) {
    ADD_FAILURE() << "no model";
    return nullptr;
  }
  size_t budget = size_t{1} << 30;
  if (slots > 0) {
    absl::StatusOr<std::unique_ptr<CpuBackend>> probe =
        CpuBackend::Create(model, budget);
    if (!probe.ok()) {
      ADD_FAILURE() << probe.status();
      return nullptr;
    }
    budget = (*probe)->bytes_per_slot() * slots;
  }
  absl::StatusOr<std::unique_ptr<CpuBackend>> backend =
      CpuBackend::Create(model, budget);
  if (!backend.ok()) {
    ADD_FAILURE() << backend.status();
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<Scheduler>> scheduler =
      Scheduler::Create(*std::move(backend), options);
  if (!scheduler.ok()) {
    ADD_FAILURE() << scheduler.status();
    return nullptr;
  }
  return *std::move(scheduler);
}

std::vector<int32_t> CompletionResult::ids() const {
  std::vector<int32_t> out;
  for (const SampledToken& token : tokens) out.push_back(token.id);
  return out;
}

void Absorb(const std::vector<StreamEvent>& events, RequestResult& result) {
  for (const StreamEvent& event : events) {
    if (event.index < 0 ||
        event.index >= static_cast<int>(result.completions.size())) {
      ADD_FAILURE() << "event for completion " << event.index;
      continue;
    }
    CompletionResult& completion = result.completions[event.index];
    EXPECT_FALSE(completion.ended) << "event after the last one";
    completion.tokens.insert(completion.tokens.end(), event.tokens.begin(),
                             event.tokens.end());
    if (event.finish != FinishReason::kNone || !event.error.ok()) {
      completion.finish = event.finish;
      completion.error = event.error;
      completion.ended = true;
    }
    if (event.usage.total_time > absl::ZeroDuration()) {
      result.usage = event.usage;
    }
  }
}

RequestResult ReadAll(RequestStream& stream, int n, absl::Duration limit) {
  RequestResult result;
  result.completions.resize(n);
  const absl::Time give_up = absl::Now() + limit;
  std::vector<StreamEvent> events;
  while (true) {
    if (absl::Now() > give_up) {
      result.timed_out = true;
      ADD_FAILURE() << "stream did not end within " << limit;
      break;
    }
    events.clear();
    const bool more = stream.Read(&events, absl::Milliseconds(100));
    Absorb(events, result);
    if (!more) break;
  }
  for (const CompletionResult& completion : result.completions) {
    EXPECT_TRUE(completion.ended || result.timed_out);
  }
  return result;
}

RequestResult RunToEnd(Scheduler& scheduler, const GenerationRequest& request) {
  absl::StatusOr<std::shared_ptr<RequestStream>> stream =
      scheduler.Submit(request);
  if (!stream.ok()) {
    ADD_FAILURE() << stream.status();
    return RequestResult();
  }
  return ReadAll(**stream, request.n);
}

GenerationRequest RandomRequest(int prompt_length, int max_new_tokens,
                                uint32_t salt) {
  std::mt19937 rng(salt);
  GenerationRequest request;
  request.prompt = {2};
  while (static_cast<int>(request.prompt.size()) < prompt_length) {
    request.prompt.push_back(4 + rng() % 508);
  }
  request.max_new_tokens = max_new_tokens;
  request.ignore_eos = true;
  return request;
}

void ExpectSameResult(const RequestResult& expected,
                      const RequestResult& actual, const std::string& what) {
  ASSERT_EQ(expected.completions.size(), actual.completions.size()) << what;
  for (size_t c = 0; c < expected.completions.size(); ++c) {
    const auto& want = expected.completions[c];
    const auto& got = actual.completions[c];
    EXPECT_TRUE(got.error.ok()) << what << ": " << got.error;
    EXPECT_EQ(want.finish, got.finish) << what << " completion " << c;
    ASSERT_EQ(want.ids(), got.ids()) << what << " completion " << c;
    for (size_t t = 0; t < want.tokens.size(); ++t) {
      EXPECT_EQ(want.tokens[t].logprob, got.tokens[t].logprob)
          << what << " completion " << c << " token " << t;
      ASSERT_EQ(want.tokens[t].top.size(), got.tokens[t].top.size());
      for (size_t k = 0; k < want.tokens[t].top.size(); ++k) {
        EXPECT_EQ(want.tokens[t].top[k].id, got.tokens[t].top[k].id);
        EXPECT_EQ(want.tokens[t].top[k].logprob, got.tokens[t].top[k].logprob);
      }
    }
  }
}

}  // namespace testing
}  // namespace slabserve
