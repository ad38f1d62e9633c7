#include "engine/models/griffin.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/models/griffin_blocks.h"
#include "engine/models/griffin_config.h"
#include "engine/models/ragged_batch.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vector_math.h"

namespace slabserve {
namespace {

using griffin::AttentionBlock;
using griffin::AttentionWeights;
using griffin::LayerWeights;
using griffin::Linear;
using griffin::MlpBlock;
using griffin::RecurrentBlock;
using griffin::RecurrentWeights;

#define GRIFFIN_RETURN_IF_ERROR(expr)  \
  do {                                 \
    absl::Status status_ = (expr);     \
    if (!status_.ok()) return status_; \
  } while (0)

#define GRIFFIN_ASSIGN(lhs, expr)               \
  do {                                          \
    auto result_ = (expr);                      \
    if (!result_.ok()) return result_.status(); \
    lhs = std::move(*result_);                  \
  } while (0)

class GriffinModel : public Model {
 public:
  GriffinModel(GriffinConfig config, std::unique_ptr<Checkpoint> checkpoint,
               cpu::WeightPrecision precision)
      : config_(std::move(config)),
        checkpoint_(std::move(checkpoint)),
        precision_(precision) {}

  absl::Status LoadWeights();

  const ModelInfo& info() const override { return info_; }
  std::vector<StateSlabSpec> StateLayout() const override { return layout_; }
  absl::Status Forward(absl::Span<const SequenceChunk> batch, StatePool& pool,
                       float* logits) override;
  ComputeProfile Profile() const override;

 private:
  absl::StatusOr<const float*> Tensor(const std::string& name,
                                      const std::vector<int64_t>& shape);
  absl::StatusOr<std::vector<float>> NormScale(const std::string& name);
  // One Linear of the projections `parts` (tensor prefix, rows) of the same
  // input, their weights (and biases) stacked in that order.
  absl::StatusOr<Linear> LoadStacked(
      const std::vector<std::pair<std::string, int>>& parts, int in, bool bias);
  absl::Status LoadRecurrent(const std::string& prefix, RecurrentWeights& w);
  absl::Status LoadAttention(const std::string& prefix, AttentionWeights& w);

  GriffinConfig config_;
  std::unique_ptr<Checkpoint> checkpoint_;
  cpu::WeightPrecision precision_;  // of the projections and the LM head
  std::deque<Weight> weights_;      // stable storage behind the raw pointers
  cpu::Projection embedding_;       // [V, D]
  std::vector<float> final_norm_;
  std::vector<LayerWeights> layers_;
  ModelInfo info_;
  std::vector<StateSlabSpec> layout_;
  // Reused by every Forward: the model is not reentrant (one Forward at a
  // time, as the scheduler's step loop calls it).
  RaggedBatch plan_;
  griffin::Workspace workspace_;
};

absl::StatusOr<const float*> GriffinModel::Tensor(
    const std::string& name, const std::vector<int64_t>& shape) {
  Weight weight;
  GRIFFIN_ASSIGN(weight, checkpoint_->Load(name, shape));
  weights_.push_back(std::move(weight));
  return weights_.back().data();
}

absl::StatusOr<std::vector<float>> GriffinModel::NormScale(
    const std::string& name) {
  const float* w;
  GRIFFIN_ASSIGN(w, Tensor(name, {config_.hidden_size}));
  // Folded in f32 and kept in f32: a bf16 1 + w loses the offset's digits.
  std::vector<float> scale(config_.hidden_size);
  for (int i = 0; i < config_.hidden_size; ++i) scale[i] = 1.0f + w[i];
  weights_.pop_back();
  return scale;
}

absl::StatusOr<Linear> GriffinModel::LoadStacked(
    const std::vector<std::pair<std::string, int>>& parts, int in, bool bias) {
  Linear linear;
  int stacked_rows = 0;
  for (const auto& [prefix, out] : parts) stacked_rows += out;
  std::vector<float> stacked(static_cast<size_t>(stacked_rows) * in);
  size_t row = 0;
  for (const auto& [prefix, out] : parts) {
    const float* weight;
    GRIFFIN_ASSIGN(weight, Tensor(prefix + ".weight", {out, in}));
    std::copy(weight, weight + static_cast<size_t>(out) * in,
              stacked.begin() + row * in);
    weights_.pop_back();  // the packed copy replaces it
    row += out;
    if (!bias) continue;
    const float* b;
    GRIFFIN_ASSIGN(b, Tensor(prefix + ".bias", {out}));
    linear.bias.insert(linear.bias.end(), b, b + out);
    weights_.pop_back();
  }
  linear.weight = cpu::Projection(stacked.data(), stacked_rows, in, precision_);
  return linear;
}

absl::Status GriffinModel::LoadRecurrent(const std::string& prefix,
                                         RecurrentWeights& w) {
  const int D = config_.hidden_size, R = config_.lru_width;
  const int H = config_.num_heads, bw = R / H, K = config_.conv_width;
  GRIFFIN_ASSIGN(
      w.x_y, LoadStacked({{prefix + "linear_x", R}, {prefix + "linear_y", R}},
                         D, true));
  GRIFFIN_ASSIGN(w.out, LoadStacked({{prefix + "linear_out", D}}, R, true));
  const float* conv;
  GRIFFIN_ASSIGN(conv, Tensor(prefix + "conv_1d.weight", {R, 1, K}));
  w.conv_taps.resize(static_cast<size_t>(K) * R);
  for (int ch = 0; ch < R; ++ch) {
    for (int k = 0; k < K; ++k) w.conv_taps[k * R + ch] = conv[ch * K + k];
  }
  weights_.pop_back();
  GRIFFIN_ASSIGN(w.conv_bias, Tensor(prefix + "conv_1d.bias", {R}));
  // Stored [H, in, out] and applied as x·G; each head's block is transposed
  // to [out, in] and packed.
  auto load_gate = [&](const std::string& name,
                       std::vector<cpu::Projection>& gate,
                       const float*& bias) -> absl::Status {
    const float* g;
    GRIFFIN_ASSIGN(g,
                   Tensor(prefix + "rg_lru." + name + "_weight", {H, bw, bw}));
    std::vector<float> block(static_cast<size_t>(bw) * bw);
    for (int h = 0; h < H; ++h) {
      const float* stored = g + static_cast<size_t>(h) * bw * bw;
      for (int i = 0; i < bw; ++i) {
        for (int j = 0; j < bw; ++j) block[j * bw + i] = stored[i * bw + j];
      }
      gate.emplace_back(block.data(), bw, bw, precision_);
    }
    weights_.pop_back();
    GRIFFIN_ASSIGN(bias, Tensor(prefix + "rg_lru." + name + "_bias", {H, bw}));
    return absl::OkStatus();
  };
  GRIFFIN_RETURN_IF_ERROR(
      load_gate("input_gate", w.input_gate, w.input_gate_bias));
  GRIFFIN_RETURN_IF_ERROR(
      load_gate("recurrent_gate", w.recurrence_gate, w.recurrence_gate_bias));
  const float* lambda;
  GRIFFIN_ASSIGN(lambda, Tensor(prefix + "rg_lru.recurrent_param", {R}));
  w.log_decay.resize(R);
  for (int ch = 0; ch < R; ++ch) {
    w.log_decay[ch] = static_cast<float>(-8.0 * cpu::Softplus(lambda[ch]));
  }
  weights_.pop_back();
  return absl::OkStatus();
}

absl::Status GriffinModel::LoadAttention(const std::string& prefix,
                                         AttentionWeights& w) {
  const int D = config_.hidden_size;
  const int q_width = config_.num_heads * config_.head_dim;
  const int kv_width = config_.num_kv_heads * config_.head_dim;
  const bool bias = config_.attention_bias;
  GRIFFIN_ASSIGN(w.qkv, LoadStacked({{prefix + "q_proj", q_width},
                                     {prefix + "k_proj", kv_width},
                                     {prefix + "v_proj", kv_width}},
                                    D, bias));
  GRIFFIN_ASSIGN(w.o, LoadStacked({{prefix + "o_proj", D}}, q_width, true));
  return absl::OkStatus();
}

absl::Status GriffinModel::LoadWeights() {
  const int V = config_.vocab_size, D = config_.hidden_size;
  const int R = config_.lru_width, F = config_.mlp_width;
  const int K = config_.conv_width, W = config_.attention_window;
  const int kv_width = config_.num_kv_heads * config_.head_dim;
  const float* embedding;
  GRIFFIN_ASSIGN(embedding, Tensor("model.embed_tokens.weight", {V, D}));
  if (checkpoint_->Has("lm_head.weight")) {
    const float* head;
    GRIFFIN_ASSIGN(head, Tensor("lm_head.weight", {V, D}));
    if (std::memcmp(head, embedding, sizeof(float) * V * D) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          checkpoint_->dir(),
          ": 'lm_head.weight' differs from "
          "'model.embed_tokens.weight'; the LM head must be tied"));
    }
    weights_.pop_back();
  }
  // Packed once for the tied LM head; token lookups read rows back from it.
  embedding_ = cpu::Projection(embedding, V, D, precision_);
  weights_.pop_back();
  GRIFFIN_ASSIGN(final_norm_, NormScale("model.final_norm.weight"));
  layers_.resize(config_.num_layers);
  for (int i = 0; i < config_.num_layers; ++i) {
    LayerWeights& layer = layers_[i];
    const std::string prefix = absl::StrCat("model.layers.", i, ".");
    layer.type = config_.layers[i];
    layer.first_slab = static_cast<int>(layout_.size());
    GRIFFIN_ASSIGN(layer.temporal_norm,
                   NormScale(prefix + "temporal_pre_norm.weight"));
    GRIFFIN_ASSIGN(layer.channel_norm,
                   NormScale(prefix + "channel_pre_norm.weight"));
    const std::string block = prefix + "temporal_block.";
    if (layer.type == GriffinBlock::kRecurrent) {
      GRIFFIN_RETURN_IF_ERROR(LoadRecurrent(block, layer.recurrent));
      layout_.push_back({absl::StrCat("layer", i, ".conv_tail"),
                         sizeof(float) * static_cast<size_t>(K - 1) * R});
      layout_.push_back(
          {absl::StrCat("layer", i, ".rg_lru_h"), sizeof(float) * R});
    } else {
      GRIFFIN_RETURN_IF_ERROR(LoadAttention(block, layer.attention));
      const size_t ring = sizeof(float) * static_cast<size_t>(W) * kv_width;
      layout_.push_back({absl::StrCat("layer", i, ".key_ring"), ring});
      layout_.push_back({absl::StrCat("layer", i, ".value_ring"), ring});
    }
    const std::string mlp = prefix + "mlp_block.";
    GRIFFIN_ASSIGN(
        layer.gate_up,
        LoadStacked({{mlp + "gate_proj", F}, {mlp + "up_proj", F}}, D, true));
    GRIFFIN_ASSIGN(layer.down, LoadStacked({{mlp + "down_proj", D}}, F, true));
  }
  GRIFFIN_RETURN_IF_ERROR(checkpoint_->CheckAllLoaded());

  const int attention_layers = config_.num_attention_layers();
  info_.architecture = attention_layers > 0 ? "griffin" : "hawk";
  info_.vocab_size = V;
  info_.num_layers = config_.num_layers;
  info_.hidden_size = D;
  info_.attention_window = attention_layers > 0 ? W : 0;
  info_.max_positions = 0;
  info_.bos_id = config_.bos_id;
  info_.eos_id = config_.eos_id;
  info_.pad_id = config_.pad_id;
  info_.add_bos = true;
  info_.weights_dtype = checkpoint_->WeightsDType();
  return absl::OkStatus();
}

absl::Status GriffinModel::Forward(absl::Span<const SequenceChunk> batch,
                                   StatePool& pool, float* logits) {
  GRIFFIN_RETURN_IF_ERROR(CheckPoolLayout(pool, layout_));
  RaggedBatch& plan = plan_;
  GRIFFIN_RETURN_IF_ERROR(plan.Build(batch, pool, info_, logits));
  if (batch.empty()) return absl::OkStatus();
  const int D = config_.hidden_size, V = config_.vocab_size;
  const int T = plan.tokens();

  griffin::Workspace& ws = workspace_;
  ws.Reserve(config_, T);
  float* x = ws.x.data();
  float* n = ws.normed.data();
  float* out = ws.out.data();
  const float scale = config_.embedding_scale;
  ForEachItem(T, D, [&](int64_t i) {
    float* row = x + i * D;
    embedding_.Row(plan.token(i), row);
    for (int d = 0; d < D; ++d) row[d] *= scale;
  });

  // Each block's output joins the residual stream x as the next norm reads
  // it; after the last block, only the rows that reach the head.
  const float eps = config_.rms_norm_eps;
  const float* pending = nullptr;
  for (const LayerWeights& layer : layers_) {
    AddThenNorm(x, pending, T, D, layer.temporal_norm.data(), eps, n,
                layer.temporal_input().Next(ws.prepared));
    if (layer.type == GriffinBlock::kRecurrent) {
      RecurrentBlock(config_, layer, plan, n, pool, ws, out);
    } else {
      AttentionBlock(config_, layer, plan, n, pool, ws, out);
    }
    AddThenNorm(x, out, T, D, layer.channel_norm.data(), eps, n,
                layer.gate_up.Next(ws.prepared));
    MlpBlock(config_, layer, T, n, ws, out);
    pending = out;
  }

  // Only the last token of each chunk that wants logits reaches the head.
  const std::vector<int>& head_rows = plan.head_rows();
  if (!head_rows.empty()) {
    const int rows = static_cast<int>(head_rows.size());
    float* y = ws.head_in.data();
    AddThenNormRows(x, pending, head_rows, D, final_norm_.data(), eps, y,
                    {&embedding_, &ws.prepared});
    embedding_.ApplyPrepared(y, rows, nullptr, ws.prepared, logits);
    ForEachItem(rows, V * kTranscendental, [&](int64_t r) {
      cpu::SoftCap(logits + r * V, V, config_.logits_soft_cap, logits + r * V);
    });
  }
  plan.AdvancePositions(pool);
  return absl::OkStatus();
}

ComputeProfile GriffinModel::Profile() const {
  ComputeProfile profile;
  auto add = [&](const Linear& linear) {
    profile.per_token.push_back({linear.weight.n(), linear.weight.k()});
  };
  const int R = config_.lru_width, bw = R / config_.num_heads;
  for (const LayerWeights& layer : layers_) {
    if (layer.type == GriffinBlock::kRecurrent) {
      add(layer.recurrent.x_y);
      add(layer.recurrent.out);
      profile.other_flops_per_token += 2 * 2 * int64_t{R} * bw;  // two gates
    } else {
      add(layer.attention.qkv);
      add(layer.attention.o);
      ++profile.attention_layers;
    }
    add(layer.gate_up);
    add(layer.down);
  }
  profile.lm_head = {config_.vocab_size, config_.hidden_size};
  profile.precision = precision_;
  profile.attention_width = config_.num_heads * config_.head_dim;
  profile.attention_window = config_.attention_window;
  return profile;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> LoadGriffin(
    std::unique_ptr<Checkpoint> checkpoint, cpu::WeightPrecision precision) {
  if (checkpoint == nullptr) {
    return absl::InvalidArgumentError("LoadGriffin: no checkpoint");
  }
  GriffinConfig config;
  GRIFFIN_ASSIGN(config, ParseGriffinConfig(checkpoint->config()));
  auto model = std::make_unique<GriffinModel>(std::move(config),
                                              std::move(checkpoint), precision);
  GRIFFIN_RETURN_IF_ERROR(model->LoadWeights());
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace slabserve
