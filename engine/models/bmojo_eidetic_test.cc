// The long-term eidetic memory: the store's bookkeeping (threshold, bound,
// eviction order, admissions per window), and the model with the memory on:
// the same memory and logits whether a sequence runs token by token, in
// chunks or in a batch, and exactly B'MOJO-F when it is off.
#include "engine/models/bmojo_eidetic.h"

#include <memory>
#include <string>
#include <vector>

#include "engine/eval/golden.h"
#include "engine/models/registry.h"
#include "engine/state/state_pool.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace {

using bmojo::EideticStore;
using bmojo::HeadInnovation;

constexpr int kWidth = 2;  // kv floats per key (and per value)

// A store row of `capacity` entries, zeroed like a fresh slot.
struct Row {
  explicit Row(int capacity)
      : bytes(EideticStore::RowBytes(capacity, kWidth) / sizeof(float)) {}
  std::vector<float> bytes;
};

// Offers position p with score r; key = (p, p), value = (−p, −p).
bool Offer(EideticStore& store, int p, float r) {
  const float key[kWidth] = {float(p), float(p)};
  const float value[kWidth] = {-float(p), -float(p)};
  return store.Offer(p, r, key, value);
}

std::vector<int> Positions(const EideticStore& store) {
  std::vector<int> positions;
  for (int e = 0; e < store.size(); ++e) {
    positions.push_back(store.position(e));
    EXPECT_EQ(store.key(e)[1], float(store.position(e)));
    EXPECT_EQ(store.value(e)[0], -float(store.position(e)));
  }
  return positions;
}

TEST(EideticStoreTest, InnovationIsTheUnexplainedPartOfTheValue) {
  const float x[3] = {1, 2, 3};
  const float parallel[3] = {-2, -4, -6};
  const float orthogonal[3] = {3, 0, -1};
  const float zero[3] = {0, 0, 0};
  EXPECT_NEAR(HeadInnovation(x, parallel, 3), 0.0f, 1e-6);
  EXPECT_NEAR(HeadInnovation(x, orthogonal, 3), 1.0f, 1e-6);
  EXPECT_EQ(HeadInnovation(x, zero, 3), 1.0f);
  EXPECT_EQ(HeadInnovation(zero, x, 3), 1.0f);
  const float half[2] = {1, 1};
  const float axis[2] = {1, 0};
  EXPECT_NEAR(HeadInnovation(axis, half, 2), 0.5f, 1e-6);
}

TEST(EideticStoreTest, AdmitsAtTheThresholdAndStaysBounded) {
  const EideticConfig config{3, 0.5, 0};
  Row row(3);
  EideticStore store(row.bytes.data(), config, 4, kWidth);
  EXPECT_FALSE(Offer(store, 0, 0.49f));
  EXPECT_TRUE(Offer(store, 1, 0.5f));
  EXPECT_TRUE(Offer(store, 2, 0.9f));
  EXPECT_TRUE(Offer(store, 3, 0.7f));
  EXPECT_EQ(store.size(), 3);
  for (int p = 4; p < 40; ++p) {
    Offer(store, p, 0.5f + 0.01f * (p % 7));
    EXPECT_LE(store.size(), 3);
  }
  EXPECT_EQ(store.size(), 3);
}

TEST(EideticStoreTest, EvictsTheLowestScoreThenTheOldest) {
  const EideticConfig config{3, 0.5, 0};
  Row row(3);
  EideticStore store(row.bytes.data(), config, 4, kWidth);
  Offer(store, 10, 0.6f);
  Offer(store, 11, 0.8f);
  Offer(store, 12, 0.6f);
  // Full: a lower score than every entry is not admitted.
  EXPECT_FALSE(Offer(store, 13, 0.55f));
  EXPECT_EQ(Positions(store), (std::vector<int>{10, 11, 12}));
  // A tie with the lowest evicts the oldest of the lowest (10).
  EXPECT_TRUE(Offer(store, 14, 0.6f));
  EXPECT_EQ(Positions(store), (std::vector<int>{14, 11, 12}));
  // Then 12 is the oldest at 0.6.
  EXPECT_TRUE(Offer(store, 15, 0.95f));
  EXPECT_EQ(Positions(store), (std::vector<int>{14, 11, 15}));
  EXPECT_EQ(store.score(2), 0.95f);
}

TEST(EideticStoreTest, TopKPerWindowKeepsTheBestOfEachWindow) {
  const EideticConfig config{8, 0.0, 2};
  Row row(8);
  EideticStore store(row.bytes.data(), config, 4, kWidth);
  // Window [0, 4): four candidates, two kept.
  EXPECT_TRUE(Offer(store, 0, 0.3f));
  EXPECT_TRUE(Offer(store, 1, 0.9f));
  EXPECT_TRUE(Offer(store, 2, 0.5f));   // replaces 0 (0.3)
  EXPECT_FALSE(Offer(store, 3, 0.4f));  // below both kept
  EXPECT_EQ(Positions(store), (std::vector<int>{2, 1}));
  // The next window has its own quota.
  EXPECT_TRUE(Offer(store, 4, 0.1f));
  EXPECT_TRUE(Offer(store, 5, 0.2f));
  EXPECT_EQ(store.size(), 4);
}

TEST(EideticStoreTest, CapacityZeroAdmitsNothing) {
  const EideticConfig config{0, 0.0, 0};
  Row row(0);
  EideticStore store(row.bytes.data(), config, 4, kWidth);
  EXPECT_FALSE(Offer(store, 5, 1.0f));
  EXPECT_EQ(store.size(), 0);
}

// ---- The model with the memory on ----

const std::string kDir = "tests/golden/bmojo_tiny";

std::unique_ptr<Model> Load(const EideticConfig& eidetic) {
  LoadOptions options;
  options.eidetic = eidetic;
  absl::StatusOr<std::unique_ptr<Model>> model = LoadModel(kDir, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

std::unique_ptr<StatePool> Pool(const Model& model, int slots) {
  auto pool = StatePool::CreateWithCapacity(model.StateLayout(), slots,
                                            model.TokenLayout(), 128);
  EXPECT_TRUE(pool.ok()) << pool.status();
  return pool.ok() ? *std::move(pool) : nullptr;
}

std::vector<int32_t> Prompt(int n) {
  std::vector<int32_t> tokens(n);
  for (int i = 0; i < n; ++i) tokens[i] = (i * 197 + 11) % 512;
  return tokens;
}

// Logits after feeding `prompt` in chunks of `chunk` tokens (0: whole), and
// then 5 decode steps, concatenated; the slot is left allocated.
std::vector<float> RunSequence(Model& model, StatePool& pool, int slot,
                               const std::vector<int32_t>& prompt, int chunk) {
  std::vector<float> all, logits(512);
  for (size_t fed = 0; fed < prompt.size();) {
    const size_t n = chunk > 0 ? std::min<size_t>(chunk, prompt.size() - fed)
                               : prompt.size();
    EXPECT_TRUE(model
                    .Prefill(slot, absl::MakeConstSpan(prompt).subspan(fed, n),
                             pool, logits.data())
                    .ok());
    fed += n;
  }
  all.insert(all.end(), logits.begin(), logits.end());
  for (int32_t token : {3, 99, 250, 7, 400}) {
    const int32_t one[] = {token};
    EXPECT_TRUE(model.Prefill(slot, one, pool, logits.data()).ok());
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

// The memory stores of every B'MOJO-F layer of a slot.
std::vector<char> Stores(const Model& model, const StatePool& pool, int slot) {
  std::vector<char> bytes;
  const std::vector<StateSlabSpec> layout = model.StateLayout();
  for (size_t i = 0; i < layout.size(); ++i) {
    if (layout[i].name.find("eidetic_memory") == std::string::npos) continue;
    const char* row = pool.Row<char>(i, slot);
    bytes.insert(bytes.end(), row, row + layout[i].bytes_per_slot);
  }
  return bytes;
}

TEST(EideticModelTest, TokenByTokenChunkedAndBatchedAgreeBitwise) {
  for (const EideticConfig& config :
       {EideticConfig{6, 0.3, 0}, EideticConfig{16, 0.0, 1}}) {
    std::unique_ptr<Model> model = Load(config);
    ASSERT_NE(model, nullptr);
    auto pool = Pool(*model, 4);
    const std::vector<int32_t> prompt = Prompt(70);
    const int one = pool->Allocate(), chunked = pool->Allocate();
    const int whole = pool->Allocate(), crowd = pool->Allocate();
    const std::vector<float> want = RunSequence(*model, *pool, one, prompt, 1);
    EXPECT_EQ(RunSequence(*model, *pool, chunked, prompt, 9), want);
    EXPECT_EQ(RunSequence(*model, *pool, whole, prompt, 0), want);
    const std::vector<char> stores = Stores(*model, *pool, one);
    EXPECT_EQ(Stores(*model, *pool, chunked), stores);
    EXPECT_EQ(Stores(*model, *pool, whole), stores);
    // In a batch beside another sequence's prefill.
    std::vector<float> logits(2 * 512);
    const std::vector<int32_t> other = Prompt(23);
    pool->Release(one);
    const int neighbour = pool->Allocate();
    const std::vector<SequenceChunk> batch = {{neighbour, other, true},
                                              {crowd, prompt, true}};
    ASSERT_TRUE(model->Forward(batch, *pool, logits.data()).ok());
    EXPECT_TRUE(
        std::equal(want.begin(), want.begin() + 512, logits.begin() + 512));
  }
}

TEST(EideticModelTest, MemoryFillsUpToItsCapacityAndChangesTheLogits) {
  const int capacity = 5;
  std::unique_ptr<Model> on = Load({capacity, 0.0, 0});
  std::unique_ptr<Model> off = Load({});
  ASSERT_NE(on, nullptr);
  ASSERT_NE(off, nullptr);
  auto pool_on = Pool(*on, 1);
  auto pool_off = Pool(*off, 1);
  const std::vector<int32_t> prompt = Prompt(40);
  const std::vector<float> with =
      RunSequence(*on, *pool_on, pool_on->Allocate(), prompt, 0);
  const std::vector<float> without =
      RunSequence(*off, *pool_off, pool_off->Allocate(), prompt, 0);
  EXPECT_NE(with, without);
  const std::vector<StateSlabSpec> layout = on->StateLayout();
  int stores = 0;
  for (size_t i = 0; i < layout.size(); ++i) {
    if (layout[i].name.find("eidetic_memory") == std::string::npos) continue;
    ++stores;
    const EideticConfig config{capacity, 0.0, 0};
    EideticStore store(pool_on->Row<char>(i, 0), config,
                       on->info().attention_window, 32);
    EXPECT_EQ(store.size(), capacity);  // 45 − W + 1 candidates, threshold 0
    for (int e = 0; e < store.size(); ++e) {
      EXPECT_GE(store.score(e), 0.0f);
      EXPECT_LE(store.score(e), 1.0f);
      EXPECT_LE(store.position(e), 45 - on->info().attention_window);
    }
  }
  EXPECT_EQ(stores, 2);
}

// Against an independent float64 implementation of the memory
// (tools/golden/make_bmojo_shapes.py --eidetic): bmojo_tiny's prompts with
// the memory on, token by token, whole and batched, within the golden
// tolerances (logits, checksums, greedy ids, states).
TEST(EideticModelTest, MatchesTheFloat64Reference) {
  const struct {
    const char* file;
    EideticConfig config;
  } fixtures[] = {{"capacity6_threshold0.3.json", {6, 0.3, 0}},
                  {"capacity8_threshold0_top2.json", {8, 0.0, 2}}};
  for (const auto& fixture : fixtures) {
    std::unique_ptr<Model> model = Load(fixture.config);
    ASSERT_NE(model, nullptr);
    absl::StatusOr<GoldenFile> golden = LoadGoldenFile(
        std::string("tests/golden/bmojo_eidetic/") + fixture.file);
    ASSERT_TRUE(golden.ok()) << golden.status();
    for (const RunOptions options :
         {RunOptions{1, false}, RunOptions{0, false}, RunOptions{5, true}}) {
      absl::StatusOr<std::vector<CaseResult>> results =
          RunCases(*model, golden->cases, options);
      ASSERT_TRUE(results.ok()) << results.status();
      for (size_t i = 0; i < results->size(); ++i) {
        const CaseReport report = CompareCase(*golden, i, (*results)[i]);
        EXPECT_TRUE(report.ok())
            << fixture.file << " " << report.name << ": " << report.problems[0];
      }
    }
  }
}

// Capacity 0 (the default) adds no slab and changes no bit.
TEST(EideticModelTest, CapacityZeroIsExactlyBmojoF) {
  std::unique_ptr<Model> off = Load({});
  std::unique_ptr<Model> zero = Load({0, 0.0, 0});
  ASSERT_NE(off, nullptr);
  ASSERT_NE(zero, nullptr);
  EXPECT_EQ(off->StateLayout().size(), zero->StateLayout().size());
  auto a = Pool(*off, 1);
  auto b = Pool(*zero, 1);
  const std::vector<int32_t> prompt = Prompt(30);
  EXPECT_EQ(RunSequence(*off, *a, a->Allocate(), prompt, 7),
            RunSequence(*zero, *b, b->Allocate(), prompt, 7));
}

TEST(EideticModelTest, OtherFamiliesRefuseTheOption) {
  LoadOptions options;
  options.eidetic.capacity = 8;
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadModel("tests/golden/griffin_tiny", options);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("hybrid_qwen3 option"),
            std::string::npos)
      << model.status();
}

}  // namespace
}  // namespace slabserve
