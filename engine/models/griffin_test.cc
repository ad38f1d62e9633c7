#include "engine/models/griffin.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/eval/golden.h"
#include "engine/io/checkpoint.h"
#include "engine/models/golden_test_util.h"
#include "engine/models/registry.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace {

struct Variant {
  const char* model;
  const char* golden;
  const char* weights;  // "" = model.safetensors
};

std::string Dir(const Variant& v) {
  return std::string("tests/golden/") + v.model;
}

std::unique_ptr<Model> Load(const Variant& v) {
  LoadOptions options;
  options.weights_file = v.weights;
  return LoadForTest(Dir(v), options);
}

GoldenFile Golden(const Variant& v) {
  return GoldenForTest(Dir(v) + "/" + v.golden);
}

std::vector<CaseResult> RunAll(Model& model,
                               const std::vector<GoldenCase>& cases,
                               int prompt_chunk, bool batched) {
  return RunCasesForTest(model, cases, {prompt_chunk, batched});
}

double MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double diff = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
  }
  return diff;
}

class GriffinGoldenTest : public ::testing::TestWithParam<Variant> {};

// Prompt token by token: last logits, per-position checksums, every greedy
// step's top-5 and checksum, and the greedy ids, all within tolerance.
TEST_P(GriffinGoldenTest, EveryCaseMatchesGolden) {
  std::unique_ptr<Model> model = Load(GetParam());
  ASSERT_NE(model, nullptr);
  const GoldenFile golden = Golden(GetParam());
  ASSERT_EQ(golden.cases.size(), 9u);
  const std::vector<CaseResult> results =
      RunAll(*model, golden.cases, 1, false);
  ASSERT_EQ(results.size(), golden.cases.size());
  for (size_t i = 0; i < results.size(); ++i) {
    const CaseReport report = CompareCase(golden, i, results[i]);
    EXPECT_TRUE(report.ok()) << report.name << ": " << report.problems[0];
    EXPECT_LE(report.max_logit_diff, 1e-4) << report.name;
    EXPECT_EQ(results[i].greedy_ids, golden.cases[i].greedy_ids) << report.name;
    EXPECT_EQ(results[i].greedy_ids.size(), 16u);
  }
}

// The kernels are batch-invariant, so a crowd changes no bit.
TEST_P(GriffinGoldenTest, OneBatchEqualsOneByOneBitwise) {
  std::unique_ptr<Model> model = Load(GetParam());
  ASSERT_NE(model, nullptr);
  const GoldenFile golden = Golden(GetParam());
  for (int chunk : {1, 0}) {
    const std::vector<CaseResult> single =
        RunAll(*model, golden.cases, chunk, false);
    const std::vector<CaseResult> batch =
        RunAll(*model, golden.cases, chunk, true);
    ASSERT_EQ(single.size(), batch.size());
    for (size_t i = 0; i < single.size(); ++i) {
      EXPECT_EQ(single[i].last_logits, batch[i].last_logits)
          << golden.cases[i].name << " chunk " << chunk;
      EXPECT_EQ(single[i].step_logits, batch[i].step_logits)
          << golden.cases[i].name << " chunk " << chunk;
    }
  }
}

// Chunked prefill (chunks shorter and longer than W = 8) equals the whole
// prompt in one chunk, and still matches the golden data.
TEST_P(GriffinGoldenTest, ChunkedPrefillEqualsWholePrefill) {
  std::unique_ptr<Model> model = Load(GetParam());
  ASSERT_NE(model, nullptr);
  const GoldenFile golden = Golden(GetParam());
  const std::vector<CaseResult> whole = RunAll(*model, golden.cases, 0, false);
  for (int chunk : {1, 3, 5, 8, 13}) {
    const std::vector<CaseResult> chunked =
        RunAll(*model, golden.cases, chunk, false);
    ASSERT_EQ(chunked.size(), whole.size());
    for (size_t i = 0; i < whole.size(); ++i) {
      EXPECT_LE(MaxDiff(chunked[i].last_logits, whole[i].last_logits), 1e-5)
          << golden.cases[i].name << " chunk " << chunk;
      EXPECT_EQ(chunked[i].greedy_ids, whole[i].greedy_ids)
          << golden.cases[i].name << " chunk " << chunk;
      EXPECT_TRUE(CompareCase(golden, i, chunked[i]).ok())
          << golden.cases[i].name << " chunk " << chunk;
    }
  }
}

// The two "batch2" members, prefilled together in one Forward call, give
// their single-sequence results.
TEST_P(GriffinGoldenTest, Batch2MembersTogetherMatchSingle) {
  std::unique_ptr<Model> model = Load(GetParam());
  ASSERT_NE(model, nullptr);
  const GoldenFile golden = Golden(GetParam());
  std::vector<GoldenCase> pair;
  std::vector<size_t> index;
  for (size_t i = 0; i < golden.cases.size(); ++i) {
    if (golden.cases[i].name.rfind("batch2_", 0) == 0) {
      pair.push_back(golden.cases[i]);
      index.push_back(i);
    }
  }
  ASSERT_EQ(pair.size(), 2u);
  const std::vector<CaseResult> together = RunAll(*model, pair, 0, true);
  const std::vector<CaseResult> single = RunAll(*model, pair, 0, false);
  ASSERT_EQ(together.size(), 2u);
  for (size_t j = 0; j < 2; ++j) {
    EXPECT_EQ(together[j].last_logits, single[j].last_logits);
    EXPECT_EQ(together[j].greedy_ids, golden.cases[index[j]].greedy_ids);
    EXPECT_TRUE(CompareCase(golden, index[j], together[j]).ok());
  }
}

INSTANTIATE_TEST_SUITE_P(
    TinyModels, GriffinGoldenTest,
    ::testing::Values(
        Variant{"griffin_tiny", "golden.json", ""},
        Variant{"griffin_tiny", "golden.bf16.json", "model.bf16.safetensors"},
        Variant{"hawk_tiny", "golden.json", ""},
        Variant{"hawk_tiny", "golden.bf16.json", "model.bf16.safetensors"}),
    [](const ::testing::TestParamInfo<Variant>& info) {
      return std::string(info.param.model) +
             (info.param.weights[0] ? "_bf16" : "_f32");
    });

TEST(GriffinModelTest, InfoAndStateLayout) {
  std::unique_ptr<Model> griffin = Load({"griffin_tiny", "", ""});
  ASSERT_NE(griffin, nullptr);
  const ModelInfo& info = griffin->info();
  EXPECT_EQ(info.architecture, "griffin");
  EXPECT_EQ(info.vocab_size, 512);
  EXPECT_EQ(info.num_layers, 6);
  EXPECT_EQ(info.hidden_size, 64);
  EXPECT_EQ(info.attention_window, 8);
  EXPECT_EQ(info.bos_id, 2);
  EXPECT_EQ(info.eos_id, 1);
  EXPECT_EQ(info.pad_id, 0);
  EXPECT_TRUE(info.add_bos);
  EXPECT_EQ(info.weights_dtype, "f32");
  // Layers r, r, a, r, r, a: conv tail [3, 64] + h [64] per recurrent layer,
  // key and value rings [8, 16] per attention layer.
  const std::vector<StateSlabSpec> layout = griffin->StateLayout();
  ASSERT_EQ(layout.size(), 12u);
  EXPECT_EQ(layout[0].bytes_per_slot, 3u * 64 * 4);
  EXPECT_EQ(layout[1].bytes_per_slot, 64u * 4);
  EXPECT_EQ(layout[4].name, "layer2.key_ring");
  EXPECT_EQ(layout[4].bytes_per_slot, 8u * 16 * 4);

  std::unique_ptr<Model> hawk =
      Load({"hawk_tiny", "", "model.bf16.safetensors"});
  ASSERT_NE(hawk, nullptr);
  EXPECT_EQ(hawk->info().architecture, "hawk");
  EXPECT_EQ(hawk->info().attention_window, 0);
  EXPECT_EQ(hawk->info().weights_dtype, "bf16");
  EXPECT_EQ(hawk->StateLayout().size(), 12u);
}

TEST(GriffinModelTest, BadBatchesFailAndLeaveStateUnchanged) {
  std::unique_ptr<Model> model = Load({"griffin_tiny", "", ""});
  ASSERT_NE(model, nullptr);
  auto pool = StatePool::CreateWithCapacity(model->StateLayout(), 3);
  ASSERT_TRUE(pool.ok());
  StatePool& p = **pool;
  const int a = p.Allocate(), b = p.Allocate(), unused = 2;
  std::vector<float> logits(2 * 512);
  const std::vector<int32_t> prompt = {2, 40, 300, 7, 99, 12, 5, 8, 9, 10};
  ASSERT_TRUE(model->Prefill(a, prompt, p, logits.data()).ok());
  ASSERT_TRUE(model->Prefill(b, {prompt.data(), 4}, p, logits.data()).ok());
  const StateSnapshot before_a = p.Save(a), before_b = p.Save(b);

  const std::vector<int32_t> good = {17}, bad = {512}, negative = {-1};
  const std::vector<int32_t> none;
  struct Bad {
    std::vector<SequenceChunk> batch;
    const char* message;
  };
  const std::vector<Bad> cases = {
      {{{a, good}, {b, bad}}, "token id 512"},
      {{{a, negative}}, "token id -1"},
      {{{a, good}, {a, good}}, "twice"},
      {{{unused, good}}, "not allocated"},
      {{{7, good}}, "outside"},
      {{{a, none}}, "no tokens"},
  };
  for (const Bad& c : cases) {
    const absl::Status status = model->Forward(c.batch, p, logits.data());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_NE(status.message().find(c.message), std::string::npos) << status;
  }
  EXPECT_EQ(model->Forward({{{a, good}}}, p, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  for (auto [slot, before] : {std::pair{a, &before_a}, {b, &before_b}}) {
    const StateSnapshot after = p.Save(slot);
    EXPECT_EQ(after.position, before->position);
    EXPECT_EQ(after.bytes, before->bytes);
  }
  EXPECT_EQ(p.position(a), 10);
  EXPECT_EQ(p.position(b), 4);

  // A pool built for another layout is refused.
  auto other = StatePool::CreateWithCapacity({{"x", 4}}, 1);
  ASSERT_TRUE(other.ok());
  const int slot = (*other)->Allocate();
  EXPECT_EQ(model->Forward({{{slot, good}}}, **other, logits.data()).code(),
            absl::StatusCode::kFailedPrecondition);
}

// want_logits = false rows skip the head; the rest keep batch order.
TEST(GriffinModelTest, LogitsOnlyForChunksThatWantThem) {
  std::unique_ptr<Model> model = Load({"griffin_tiny", "", ""});
  ASSERT_NE(model, nullptr);
  auto pool = StatePool::CreateWithCapacity(model->StateLayout(), 2);
  ASSERT_TRUE(pool.ok());
  const int a = (*pool)->Allocate(), b = (*pool)->Allocate();
  const std::vector<int32_t> pa = {2, 5, 6}, pb = {2, 9};
  std::vector<float> logits(512, -7.0f);
  ASSERT_TRUE(
      model->Forward({{a, pa, false}, {b, pb, true}}, **pool, logits.data())
          .ok());
  EXPECT_EQ((*pool)->position(a), 3);
  EXPECT_EQ((*pool)->position(b), 2);
  auto fresh = StatePool::CreateWithCapacity(model->StateLayout(), 1);
  ASSERT_TRUE(fresh.ok());
  std::vector<float> alone(512);
  ASSERT_TRUE(
      model->Prefill((*fresh)->Allocate(), pb, **fresh, alone.data()).ok());
  EXPECT_EQ(logits, alone);
}

// Forward reuses its buffers: after a large batch has left them full of
// other rows, a smaller batch still computes exactly what a fresh model does.
TEST(GriffinModelTest, ReusedWorkspaceMatchesFreshModelBitwise) {
  std::unique_ptr<Model> used = Load({"griffin_tiny", "", ""});
  std::unique_ptr<Model> fresh = Load({"griffin_tiny", "", ""});
  ASSERT_NE(used, nullptr);
  ASSERT_NE(fresh, nullptr);
  auto used_pool = StatePool::CreateWithCapacity(used->StateLayout(), 4);
  auto fresh_pool = StatePool::CreateWithCapacity(fresh->StateLayout(), 1);
  ASSERT_TRUE(used_pool.ok() && fresh_pool.ok());
  std::vector<int32_t> long_prompt(40);
  for (int i = 0; i < 40; ++i) long_prompt[i] = (i * 37 + 11) % 512;
  std::vector<float> logits(3 * 512);
  std::vector<SequenceChunk> crowd;
  for (int i = 0; i < 3; ++i) {
    crowd.push_back({(*used_pool)->Allocate(), long_prompt, true});
  }
  ASSERT_TRUE(used->Forward(crowd, **used_pool, logits.data()).ok());

  const int used_slot = (*used_pool)->Allocate();
  const int fresh_slot = (*fresh_pool)->Allocate();
  const std::vector<int32_t> prompt = {2, 40, 300, 7, 99};
  std::vector<float> a(512), b(512);
  ASSERT_TRUE(used->Prefill(used_slot, prompt, **used_pool, a.data()).ok());
  ASSERT_TRUE(fresh->Prefill(fresh_slot, prompt, **fresh_pool, b.data()).ok());
  EXPECT_EQ(a, b);
  for (int32_t token : {5, 17, 123}) {
    const int32_t one[] = {token};
    ASSERT_TRUE(used->Prefill(used_slot, one, **used_pool, a.data()).ok());
    ASSERT_TRUE(fresh->Prefill(fresh_slot, one, **fresh_pool, b.data()).ok());
    EXPECT_EQ(a, b) << "token " << token;
  }
}

}  // namespace
}  // namespace slabserve
