#include "engine/models/srm.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/io/checkpoint.h"
#include "engine/state/state_pool.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace slabserve {
namespace {

constexpr char kDir[] = "tests/golden/srm_tiny";

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

const nlohmann::json& Golden() {
  static const nlohmann::json* golden =
      new nlohmann::json(ReadJson(std::string(kDir) + "/golden.json"));
  return *golden;
}

absl::StatusOr<std::unique_ptr<Model>> LoadFrom(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint =
      Checkpoint::Open(dir);
  if (!checkpoint.ok()) return checkpoint.status();
  return LoadSrm(**checkpoint);
}

std::unique_ptr<Model> LoadTiny() {
  absl::StatusOr<std::unique_ptr<Model>> model = LoadFrom(kDir);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

std::unique_ptr<StatePool> MakePool(const Model& model, int capacity) {
  absl::StatusOr<std::unique_ptr<StatePool>> pool =
      StatePool::CreateWithCapacity(model.StateLayout(), capacity);
  EXPECT_TRUE(pool.ok()) << pool.status();
  return std::move(*pool);
}

int ArgMax(const std::vector<float>& x) {
  return static_cast<int>(std::max_element(x.begin(), x.end()) - x.begin());
}

std::vector<int32_t> Ids(const nlohmann::json& list) {
  return list.get<std::vector<int32_t>>();
}

class SrmGoldenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = LoadTiny();
    ASSERT_NE(model_, nullptr);
    vocab_ = model_->info().vocab_size;
    pool_ = MakePool(*model_, 256);
  }

  // Prefills `prompt` in chunks of `chunk` tokens; returns the last logits.
  std::vector<float> Prefill(int slot, const std::vector<int32_t>& prompt,
                             size_t chunk) {
    std::vector<float> logits(vocab_);
    for (size_t i = 0; i < prompt.size(); i += chunk) {
      size_t n = std::min(chunk, prompt.size() - i);
      absl::Status s =
          model_->Prefill(slot, absl::MakeConstSpan(prompt).subspan(i, n),
                          *pool_, logits.data());
      EXPECT_TRUE(s.ok()) << s;
    }
    return logits;
  }

  std::vector<float> State(int slot) {
    absl::StatusOr<std::vector<float>> state =
        model_->RecurrentStateForEval(*pool_, slot);
    EXPECT_TRUE(state.ok()) << state.status();
    return *state;
  }

  std::unique_ptr<Model> model_;
  std::unique_ptr<StatePool> pool_;
  int vocab_ = 0;
};

TEST_F(SrmGoldenTest, InfoAndStateLayout) {
  const ModelInfo& info = model_->info();
  EXPECT_EQ(info.architecture, "srm");
  EXPECT_EQ(info.vocab_size, 512);
  EXPECT_EQ(info.num_layers, 4);
  EXPECT_EQ(info.hidden_size, 64);
  EXPECT_EQ(info.max_positions, 64);
  EXPECT_EQ(info.attention_window, 0);
  EXPECT_EQ(info.bos_id, -1);
  EXPECT_FALSE(info.add_bos);
  EXPECT_EQ(info.weights_dtype, "f32");
  ASSERT_EQ(model_->StateLayout().size(), 4u);
  for (const StateSlabSpec& slab : model_->StateLayout()) {
    EXPECT_EQ(slab.bytes_per_slot, 64u * sizeof(float));
  }
  EXPECT_EQ(pool_->bytes_per_slot(), 4u * 64u * 4u + 4u);
}

// Token by token: logits statistics at every prompt position, the last
// logits, the state after the prompt and 16 greedy tokens.
TEST_F(SrmGoldenTest, EveryCaseMatchesGolden) {
  const nlohmann::json& tol = Golden()["tolerance"];
  const double max_abs = tol["max_abs_logit"], sum_abs = tol["logit_sum_abs"];
  const double sumsq_rel = tol["logit_sumsq_rel"], state_rel = tol["state_rel"];
  for (const nlohmann::json& c : Golden()["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const std::vector<int32_t> prompt = Ids(c["prompt_ids"]);
    const int slot = pool_->Allocate();
    std::vector<float> logits(vocab_);
    for (size_t t = 0; t < prompt.size(); ++t) {
      ASSERT_TRUE(
          model_->Prefill(slot, {&prompt[t], 1}, *pool_, logits.data()).ok());
      double sum = 0, sumsq = 0;
      for (float x : logits) {
        sum += x;
        sumsq += static_cast<double>(x) * x;
      }
      const double want_sum = c["logit_sum"][t], want_sq = c["logit_sumsq"][t];
      EXPECT_NEAR(sum, want_sum, sum_abs) << "position " << t;
      EXPECT_NEAR(sumsq, want_sq, sumsq_rel * std::fabs(want_sq))
          << "position " << t;
    }
    double worst = 0;
    for (int v = 0; v < vocab_; ++v) {
      worst = std::max(
          worst, std::fabs(logits[v] - c["last_logits"][v].get<double>()));
    }
    EXPECT_LE(worst, max_abs);
    const std::vector<float> state = State(slot);
    const nlohmann::json& want_state = c["state_after_prompt"];
    for (int l = 0; l < 4; ++l) {
      for (int i = 0; i < 64; ++i) {
        const double ref = want_state[l][i];
        EXPECT_NEAR(state[l * 64 + i], ref,
                    state_rel * std::max(1.0, std::fabs(ref)))
            << "block " << l << " channel " << i;
      }
    }
    const std::vector<int32_t> greedy = Ids(c["greedy_ids"]);
    for (size_t k = 0; k < greedy.size(); ++k) {
      if (k > 0) {
        const int slots[] = {slot};
        ASSERT_TRUE(
            model_->Decode(slots, {&greedy[k - 1], 1}, *pool_, logits.data())
                .ok());
      }
      EXPECT_EQ(ArgMax(logits), greedy[k]) << "greedy step " << k;
    }
    pool_->Release(slot);
  }
}

TEST_F(SrmGoldenTest, ChunkedPrefillEqualsWholePrefill) {
  for (const nlohmann::json& c : Golden()["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const std::vector<int32_t> prompt = Ids(c["prompt_ids"]);
    const int whole_slot = pool_->Allocate();
    const std::vector<float> whole = Prefill(whole_slot, prompt, prompt.size());
    const std::vector<float> whole_state = State(whole_slot);
    for (size_t chunk : {1, 3, 7, 16}) {
      const int slot = pool_->Allocate();
      EXPECT_EQ(Prefill(slot, prompt, chunk), whole) << "chunk " << chunk;
      EXPECT_EQ(State(slot), whole_state) << "chunk " << chunk;
      EXPECT_EQ(pool_->position(slot), static_cast<int>(prompt.size()));
      pool_->Release(slot);
    }
    pool_->Release(whole_slot);
  }
}

TEST_F(SrmGoldenTest, BatchOfAllCasesEqualsOneByOne) {
  const nlohmann::json& cases = Golden()["cases"];
  const size_t n = cases.size();
  std::vector<std::vector<int32_t>> prompts, greedy;
  std::vector<std::vector<float>> alone;
  std::vector<int> alone_slots, batch_slots;
  for (const nlohmann::json& c : cases) {
    prompts.push_back(Ids(c["prompt_ids"]));
    greedy.push_back(Ids(c["greedy_ids"]));
    alone_slots.push_back(pool_->Allocate());
    alone.push_back(Prefill(alone_slots.back(), prompts.back(), 1000));
    batch_slots.push_back(pool_->Allocate());
  }
  std::vector<SequenceChunk> batch;
  for (size_t i = 0; i < n; ++i) batch.push_back({batch_slots[i], prompts[i]});
  std::vector<float> logits(n * vocab_);
  ASSERT_TRUE(model_->Forward(batch, *pool_, logits.data()).ok());
  for (size_t step = 0; step < greedy[0].size(); ++step) {
    std::vector<int32_t> next(n);
    for (size_t i = 0; i < n; ++i) {
      const std::vector<float> row(logits.begin() + i * vocab_,
                                   logits.begin() + (i + 1) * vocab_);
      EXPECT_EQ(row, alone[i]) << "case " << i << " step " << step;
      EXPECT_EQ(ArgMax(row), greedy[i][step]) << "case " << i;
      next[i] = greedy[i][step];
      const int slots[] = {alone_slots[i]};
      ASSERT_TRUE(
          model_->Decode(slots, {&next[i], 1}, *pool_, alone[i].data()).ok());
    }
    ASSERT_TRUE(model_->Decode(batch_slots, next, *pool_, logits.data()).ok());
  }
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(State(batch_slots[i]), State(alone_slots[i]));
  }
}

// One sequence stepped alone, then among many random sequences of other
// lengths (enough rows that the batch is split into tiles, one split falling
// inside the watched sequence's chunk): its logits must not change a bit.
TEST_F(SrmGoldenTest, BatchInvariance) {
  const std::vector<int32_t> prompt = Ids(Golden()["cases"][2]["prompt_ids"]);
  const std::vector<int32_t> decode = {5, 17, 300, 42, 511, 0, 9, 64};
  auto run = [&](bool crowded, std::vector<std::vector<float>>& out) {
    std::mt19937 rng(7);
    const int slot = pool_->Allocate();
    std::vector<int> others;
    for (size_t step = 0; step <= decode.size(); ++step) {
      std::vector<std::vector<int32_t>> other_tokens;
      std::vector<SequenceChunk> batch;
      int64_t rows = 0;
      while (crowded && rows < 3 * SrmModel::kDefaultTileRows - 10) {
        const int other = pool_->Allocate();
        ASSERT_GE(other, 0);
        others.push_back(other);
        const int len = std::min<int64_t>(
            1 + rng() % 60, 3 * SrmModel::kDefaultTileRows - 10 - rows);
        std::vector<int32_t> tokens(len);
        for (int32_t& t : tokens) t = rng() % vocab_;
        other_tokens.push_back(std::move(tokens));
        rows += len;
      }
      for (const auto& tokens : other_tokens) {
        batch.push_back({others[batch.size()], tokens, rng() % 2 == 0});
      }
      const std::vector<int32_t> mine =
          step == 0 ? prompt : std::vector<int32_t>{decode[step - 1]};
      batch.push_back({slot, mine, true});
      int wanted = 0;
      for (const SequenceChunk& c : batch) wanted += c.want_logits;
      std::vector<float> logits(static_cast<size_t>(wanted) * vocab_);
      ASSERT_TRUE(model_->Forward(batch, *pool_, logits.data()).ok());
      out.emplace_back(logits.end() - vocab_, logits.end());
      for (int other : others) pool_->Release(other);
      others.clear();
    }
    out.push_back(State(slot));
    pool_->Release(slot);
  };
  std::vector<std::vector<float>> alone, crowded;
  ASSERT_NO_FATAL_FAILURE(run(false, alone));
  std::unique_ptr<StatePool> small = std::move(pool_);
  pool_ = MakePool(*model_, 4096);
  ASSERT_NO_FATAL_FAILURE(run(true, crowded));
  ASSERT_EQ(alone.size(), crowded.size());
  for (size_t i = 0; i < alone.size(); ++i) {
    EXPECT_EQ(alone[i], crowded[i]) << "step " << i;
  }
}

TEST_F(SrmGoldenTest, FeedingPastMaxPositionsFailsAndKeepsState) {
  std::vector<int32_t> full(64);
  for (int t = 0; t < 64; ++t) full[t] = (t * 37) % vocab_;
  const int slot = pool_->Allocate();
  const int other = pool_->Allocate();
  std::vector<float> logits(2 * vocab_);
  ASSERT_TRUE(model_->Prefill(slot, full, *pool_, logits.data()).ok());
  ASSERT_TRUE(model_->Prefill(other, {full.data(), 10}, *pool_, nullptr).ok());
  const StateSnapshot before = pool_->Save(slot);
  const StateSnapshot other_before = pool_->Save(other);
  EXPECT_EQ(before.position, 64);

  const int32_t token = 3;
  const int slots[] = {other, slot};
  const int32_t tokens[] = {token, token};
  absl::Status status = model_->Decode(slots, tokens, *pool_, logits.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find("64 positions"), std::string::npos) << status;
  for (const auto& [s, snapshot] :
       {std::make_pair(slot, &before), std::make_pair(other, &other_before)}) {
    const StateSnapshot after = pool_->Save(s);
    EXPECT_EQ(after.position, snapshot->position);
    EXPECT_EQ(after.bytes, snapshot->bytes);
  }
  // A fresh sequence cannot take more than 64 tokens at once either.
  const int fresh = pool_->Allocate();
  full.push_back(1);
  EXPECT_EQ(model_->Prefill(fresh, full, *pool_, logits.data()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pool_->position(fresh), 0);
}

TEST_F(SrmGoldenTest, BadBatchesAreRejectedWithoutSideEffects) {
  const int slot = pool_->Allocate();
  const int32_t good[] = {1, 2};
  ASSERT_TRUE(model_->Prefill(slot, good, *pool_, nullptr).ok());
  const StateSnapshot before = pool_->Save(slot);
  std::vector<float> logits(2 * vocab_);
  const int32_t bad_token[] = {512};
  const std::vector<std::vector<SequenceChunk>> bad = {
      {{slot, good}, {slot, good}},       // a slot twice
      {{slot, good}, {slot + 1, good}},   // an unallocated slot
      {{slot, {}}},                       // no tokens
      {{slot, good}, {slot, bad_token}},  // token outside the vocabulary
  };
  for (const auto& batch : bad) {
    EXPECT_EQ(model_->Forward(batch, *pool_, logits.data()).code(),
              absl::StatusCode::kInvalidArgument);
    const StateSnapshot after = pool_->Save(slot);
    EXPECT_EQ(after.position, before.position);
    EXPECT_EQ(after.bytes, before.bytes);
  }
  const SequenceChunk wants_logits{slot, good, true};
  EXPECT_EQ(model_->Forward({&wants_logits, 1}, *pool_, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
}

// A config.json with one key changed (or removed, for a null value) beside a
// copy of the tiny weights.
std::string WriteVariant(const std::string& name, const std::string& key,
                         const nlohmann::json& value) {
  const std::filesystem::path dir =
      std::filesystem::path(std::getenv("TEST_TMPDIR")) / name;
  std::filesystem::create_directories(dir);
  nlohmann::json config = ReadJson(std::string(kDir) + "/config.json");
  if (value.is_null()) {
    config.erase(key);
  } else {
    config[key] = value;
  }
  std::ofstream(dir / "config.json") << config.dump(2);
  std::filesystem::copy_file(std::string(kDir) + "/model.safetensors",
                             dir / "model.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  return dir.string();
}

TEST(SrmConfigTest, UnsupportedOrInvalidConfigsAreRejected) {
  const std::vector<std::pair<std::string, nlohmann::json>> bad = {
      {"parallel_heads", true},
      {"use_projections", false},
      {"mixed_heads", false},
      {"kernel", 2},
      {"expanded_convs", true},
      {"combined_heads", true},
      {"heads", 3},
      {"heads", 6},
      {"decay_constant", 0},
      {"decay_constant", nullptr},  // absent: seq_len // 512 = 0 for 64
      {"decay_clip", {1.0, 0.9}},
      {"decay_clip", {0.9}},
      {"decay_clip", {0.5, 1.5}},
      {"layer_norm_eps", -1.0},
      {"model_type", "mamba"},
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    const auto& [key, value] = bad[i];
    SCOPED_TRACE(key + " = " + value.dump());
    absl::StatusOr<std::unique_ptr<Model>> model =
        LoadFrom(WriteVariant("bad" + std::to_string(i), key, value));
    ASSERT_FALSE(model.ok());
    EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(model.status().message().find("config.json"), std::string::npos)
        << model.status();
    EXPECT_NE(model.status().message().find(key), std::string::npos)
        << model.status();
  }
}

TEST(SrmConfigTest, CopySwitchIsIgnored) {
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadFrom(WriteVariant("copy", "copy", true));
  EXPECT_TRUE(model.ok()) << model.status();
}

// A one-block model whose token-mixing input is constant (token_norm weight
// 0, bias 1, identity projections, w = 1, b = 0): after t tokens a column
// head holds Σ a^s for s < t, with a = clip(d)^(1/c) and c = 2.
TEST(SrmDecayTest, ClipThenFractionalPower) {
  SrmConfig config;
  config.vocab_size = 2;
  config.hidden_dim = 6;
  config.num_blocks = 1;
  config.heads = 6;
  config.seq_len = 8;
  config.decay_constant = 2;
  const size_t D = 6, F = 24, N = 8;
  SrmWeights w;
  w.embedding.assign(2 * D, 0.25f);
  w.output.assign(2 * D, 0.0f);
  SrmBlockWeights b;
  b.channel_norm_weight.assign(D, 1.0f);
  b.channel_norm_bias.assign(D, 0.0f);
  b.mlp_in_weight.assign(F * D, 0.0f);
  b.mlp_in_bias.assign(F, 0.0f);
  b.mlp_out_weight.assign(D * F, 0.0f);
  b.mlp_out_bias.assign(D, 0.0f);
  b.token_norm_weight.assign(D, 0.0f);
  b.token_norm_bias.assign(D, 1.0f);
  b.proj_weight.assign(D * D, 0.0f);
  for (size_t i = 0; i < D; ++i) b.proj_weight[i * D + i] = 1.0f;
  b.proj_bias.assign(D, 0.0f);
  b.out_weight.assign(D * D, 0.0f);
  b.out_bias.assign(D, 0.0f);
  b.mixer_weight.assign(6 * N, 1.0f);
  b.mixer_bias.assign(6 * N, 0.0f);
  // Heads 0-2 column-repeat, 3-5 row-repeat (w = 1: the same sums).
  b.decay_value = {0.9025f, 0.5f, 1.2f, 0.9025f, 0.5f, 1.2f};
  w.blocks.push_back(b);
  absl::StatusOr<std::unique_ptr<SrmModel>> model =
      SrmModel::Create(config, std::move(w));
  ASSERT_TRUE(model.ok()) << model.status();
  std::unique_ptr<StatePool> pool = MakePool(**model, 1);
  const int slot = pool->Allocate();
  const int32_t tokens[] = {0, 1, 0};
  ASSERT_TRUE((*model)->Prefill(slot, tokens, *pool, nullptr).ok());
  absl::StatusOr<std::vector<float>> state =
      (*model)->RecurrentStateForEval(*pool, slot);
  ASSERT_TRUE(state.ok());
  const double decays[] = {0.95, std::sqrt(0.9), 1.0};
  for (int k = 0; k < 6; ++k) {
    const double a = decays[k % 3];
    EXPECT_NEAR((*state)[k], 1 + a + a * a, 1e-6) << "head " << k;
  }
}

TEST(SrmRandomTest, SeededModelsAreReproducibleAndFinite) {
  SrmConfig config;
  config.vocab_size = 100;
  config.hidden_dim = 32;
  config.num_blocks = 2;
  config.heads = 4;
  config.seq_len = 16;
  config.decay = false;
  std::vector<std::vector<float>> runs;
  for (int run = 0; run < 2; ++run) {
    absl::StatusOr<std::unique_ptr<SrmModel>> model =
        SrmModel::CreateRandom(config, 11);
    ASSERT_TRUE(model.ok()) << model.status();
    std::unique_ptr<StatePool> pool = MakePool(**model, 1);
    const int32_t tokens[] = {1, 50, 99, 7};
    std::vector<float> logits(100);
    ASSERT_TRUE(
        (*model)->Prefill(pool->Allocate(), tokens, *pool, logits.data()).ok());
    for (float x : logits) ASSERT_TRUE(std::isfinite(x));
    runs.push_back(logits);
  }
  EXPECT_EQ(runs[0], runs[1]);
  config.heads = 3;
  EXPECT_EQ(SrmModel::CreateRandom(config, 11).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace slabserve
