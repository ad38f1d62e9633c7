#include "engine/models/bmojo.h"

#include <cmath>
#include <cstring>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/models/bmojo_eidetic.h"
#include "engine/models/bmojo_layers.h"
#include "engine/models/ragged_batch.h"
#include "kernels/cpu/ops.h"

namespace slabserve {
namespace {

using bmojo::LayerWeights;
using bmojo::Linear;

#define BMOJO_RETURN_IF_ERROR(expr)    \
  do {                                 \
    absl::Status status_ = (expr);     \
    if (!status_.ok()) return status_; \
  } while (0)

#define BMOJO_ASSIGN(lhs, expr)                 \
  do {                                          \
    auto result_ = (expr);                      \
    if (!result_.ok()) return result_.status(); \
    lhs = std::move(*result_);                  \
  } while (0)

class BmojoModel : public Model {
 public:
  BmojoModel(BmojoConfig config, cpu::WeightPrecision precision)
      : config_(std::move(config)), precision_(precision) {}

  // Copies and packs every tensor; the checkpoint is not kept.
  absl::Status LoadWeights(Checkpoint& checkpoint);

  const ModelInfo& info() const override { return info_; }
  std::vector<StateSlabSpec> StateLayout() const override { return layout_; }
  TokenStateLayout TokenLayout() const override { return token_layout_; }
  absl::Status Forward(absl::Span<const SequenceChunk> batch, StatePool& pool,
                       float* logits) override;
  // Per B'MOJO-F layer in layer order: the SSM state [H][P][N], then the
  // conv rows [K−1][C].
  absl::StatusOr<std::vector<float>> RecurrentStateForEval(
      const StatePool& pool, int slot) const override;
  ComputeProfile Profile() const override;

 private:
  absl::StatusOr<std::vector<float>> Tensor(const std::string& name,
                                            const std::vector<int64_t>& shape);
  absl::StatusOr<Linear> LoadLinear(const std::string& name, int out, int in);
  absl::Status CheckNoBiases() const;
  absl::Status LoadAttention(const std::string& prefix,
                             bmojo::AttentionWeights& w);
  absl::Status LoadMamba(const std::string& prefix, bmojo::MambaWeights& w);
  absl::Status LoadLayer(int l, LayerWeights& layer);
  absl::Status LoadTensors();
  void SetInfo();
  BmojoConfig config_;
  cpu::WeightPrecision precision_;    // of the projections and the LM head
  Checkpoint* checkpoint_ = nullptr;  // during LoadWeights only
  std::vector<float> embedding_;      // [V, d]
  std::vector<float> final_norm_;
  Linear lm_head_;
  std::vector<LayerWeights> layers_;
  ModelInfo info_;
  std::vector<StateSlabSpec> layout_;
  TokenStateLayout token_layout_;
  // Reused by every Forward: one Forward at a time.
  RaggedBatch plan_;
  bmojo::Workspace workspace_;
};

// Slabs per B'MOJO-F layer (bmojo::BmfSlab).
int BmfSlabs(const BmojoConfig& c) {
  return c.eidetic.enabled() ? bmojo::kContextScores + 1
                             : bmojo::kFadingRing + 1;
}

absl::StatusOr<std::vector<float>> BmojoModel::Tensor(
    const std::string& name, const std::vector<int64_t>& shape) {
  Weight weight;
  BMOJO_ASSIGN(weight, checkpoint_->Load(name, shape));
  return std::vector<float>(weight.data(), weight.data() + weight.size());
}

absl::StatusOr<Linear> BmojoModel::LoadLinear(const std::string& name, int out,
                                              int in) {
  Weight weight;
  BMOJO_ASSIGN(weight, checkpoint_->Load(name, {out, in}));
  return Linear{cpu::Projection(weight.data(), out, in, precision_)};
}

absl::Status BmojoModel::CheckNoBiases() const {
  for (const std::string& name : checkpoint_->TensorNames()) {
    if (absl::EndsWith(name, ".bias") &&
        !absl::EndsWith(name, ".mamba.conv1d.bias")) {
      return absl::InvalidArgumentError(
          absl::StrCat(checkpoint_->dir(), ": tensor '", name,
                       "': projection biases are not supported (the "
                       "hybrid_qwen3 layers here are bias-free)"));
    }
  }
  return absl::OkStatus();
}

absl::Status BmojoModel::LoadAttention(const std::string& prefix,
                                       bmojo::AttentionWeights& w) {
  const int d = config_.hidden_size, D = config_.head_dim;
  const int q_width = config_.d_inner(), kv_width = config_.d_xb();
  BMOJO_ASSIGN(w.q, LoadLinear(prefix + "q_proj.weight", q_width, d));
  BMOJO_ASSIGN(w.k, LoadLinear(prefix + "k_proj.weight", kv_width, d));
  BMOJO_ASSIGN(w.v, LoadLinear(prefix + "v_proj.weight", kv_width, d));
  BMOJO_ASSIGN(w.o, LoadLinear(prefix + "o_proj.weight", d, q_width));
  BMOJO_ASSIGN(w.q_norm, Tensor(prefix + "q_norm.weight", {D}));
  BMOJO_ASSIGN(w.k_norm, Tensor(prefix + "k_norm.weight", {D}));
  return absl::OkStatus();
}

absl::Status BmojoModel::LoadMamba(const std::string& prefix,
                                   bmojo::MambaWeights& w) {
  const int d = config_.hidden_size, H = config_.num_heads;
  const int D = config_.head_dim, d_in = config_.d_inner();
  const int C = config_.conv_channels(), K = config_.conv_width;
  BMOJO_ASSIGN(w.in_proj, LoadLinear(prefix + "in_proj.weight",
                                     config_.in_proj_rows(), d));
  BMOJO_ASSIGN(w.out_proj, LoadLinear(prefix + "out_proj.weight", d, d_in));
  const std::string conv_name = prefix + "conv1d.weight";
  std::vector<int64_t> shape;
  BMOJO_ASSIGN(shape, checkpoint_->Shape(conv_name));
  if (shape.size() == 3 && shape[2] != K) {
    return absl::InvalidArgumentError(absl::StrCat(
        checkpoint_->dir(), ": tensor '", conv_name, "' has conv width ",
        shape[2], " but mamba2_config.d_conv is ", K, " (default 4)"));
  }
  std::vector<float> conv;
  BMOJO_ASSIGN(conv, Tensor(conv_name, {C, 1, K}));
  w.conv_taps.resize(static_cast<size_t>(K) * C);
  for (int ch = 0; ch < C; ++ch) {
    for (int k = 0; k < K; ++k) w.conv_taps[k * C + ch] = conv[ch * K + k];
  }
  BMOJO_ASSIGN(w.conv_bias, Tensor(prefix + "conv1d.bias", {C}));
  BMOJO_ASSIGN(w.dt_bias, Tensor(prefix + "dt_bias", {H}));
  BMOJO_ASSIGN(w.a, Tensor(prefix + "A_log", {H}));
  for (float& a : w.a) a = static_cast<float>(-std::exp(double{a}));
  BMOJO_ASSIGN(w.d_skip, Tensor(prefix + "D", {H}));
  if (config_.bc_norm) {
    BMOJO_ASSIGN(w.b_norm, Tensor(prefix + "B_norm.weight", {D}));
    BMOJO_ASSIGN(w.c_norm, Tensor(prefix + "C_norm.weight", {D}));
  }
  BMOJO_ASSIGN(w.gate_norm, Tensor(prefix + "norm.weight", {d_in}));
  return absl::OkStatus();
}

absl::Status BmojoModel::LoadLayer(int l, LayerWeights& layer) {
  const int d = config_.hidden_size, I = config_.intermediate_size;
  const std::string prefix = absl::StrCat("model.layers.", l, ".");
  layer.type = config_.layers[l];
  BMOJO_ASSIGN(layer.input_norm,
               Tensor(prefix + "input_layernorm.weight", {d}));
  BMOJO_ASSIGN(layer.post_norm,
               Tensor(prefix + "post_attention_layernorm.weight", {d}));
  if (layer.type == BmojoLayerType::kAttention) {
    BMOJO_RETURN_IF_ERROR(
        LoadAttention(prefix + "self_attn.", layer.attention));
  } else {
    BMOJO_RETURN_IF_ERROR(
        LoadAttention(prefix + "bmojo_f.bmojo_attn.", layer.attention));
    BMOJO_RETURN_IF_ERROR(LoadMamba(prefix + "bmojo_f.mamba.", layer.mamba));
  }
  const std::string mlp = prefix + "mlp.";
  BMOJO_ASSIGN(layer.gate, LoadLinear(mlp + "gate_proj.weight", I, d));
  BMOJO_ASSIGN(layer.up, LoadLinear(mlp + "up_proj.weight", I, d));
  BMOJO_ASSIGN(layer.down, LoadLinear(mlp + "down_proj.weight", d, I));
  return absl::OkStatus();
}

absl::Status BmojoModel::LoadWeights(Checkpoint& checkpoint) {
  checkpoint_ = &checkpoint;
  absl::Status status = LoadTensors();
  checkpoint_ = nullptr;
  return status;
}

absl::Status BmojoModel::LoadTensors() {
  const int V = config_.vocab_size, d = config_.hidden_size;
  BMOJO_RETURN_IF_ERROR(CheckNoBiases());
  BMOJO_ASSIGN(embedding_, Tensor("model.embed_tokens.weight", {V, d}));
  BMOJO_ASSIGN(final_norm_, Tensor("model.norm.weight", {d}));
  std::set<std::string> ignored;
  if (config_.tie_word_embeddings) {
    lm_head_ = Linear{cpu::Projection(embedding_.data(), V, d, precision_)};
    ignored.insert("lm_head.weight");
  } else {
    BMOJO_ASSIGN(lm_head_, LoadLinear("lm_head.weight", V, d));
  }
  layout_ = BmojoStateLayout(config_);
  token_layout_ = BmojoTokenLayout(config_);
  layers_.resize(config_.num_layers);
  int slabs = 0, kinds = 0;
  for (int l = 0; l < config_.num_layers; ++l) {
    BMOJO_RETURN_IF_ERROR(LoadLayer(l, layers_[l]));
    if (layers_[l].type == BmojoLayerType::kAttention) {
      layers_[l].token_kind = kinds++;
    } else {
      layers_[l].first_slab = slabs;
      slabs += BmfSlabs(config_);
    }
  }
  BMOJO_RETURN_IF_ERROR(checkpoint_->CheckAllLoaded(ignored));
  SetInfo();
  return absl::OkStatus();
}

void BmojoModel::SetInfo() {
  info_.architecture = "bmojo";
  info_.vocab_size = config_.vocab_size;
  info_.num_layers = config_.num_layers;
  info_.hidden_size = config_.hidden_size;
  info_.attention_window = config_.window;
  info_.max_positions = config_.max_positions;
  info_.bos_id = config_.bos_id;
  info_.eos_id = config_.eos_id;
  info_.pad_id = config_.pad_id;
  info_.add_bos = false;
  info_.weights_dtype = checkpoint_->WeightsDType();
}

absl::Status BmojoModel::Forward(absl::Span<const SequenceChunk> batch,
                                 StatePool& pool, float* logits) {
  BMOJO_RETURN_IF_ERROR(CheckPoolLayout(pool, layout_, token_layout_));
  RaggedBatch& plan = plan_;
  BMOJO_RETURN_IF_ERROR(plan.Build(batch, pool, info_, logits));
  if (batch.empty()) return absl::OkStatus();
  BMOJO_RETURN_IF_ERROR(plan.ReserveTokens(pool));
  const int d = config_.hidden_size, T = plan.tokens();
  bmojo::Workspace& ws = workspace_;
  ws.Reserve(config_, T);
  float* x = ws.x.data();
  float* n = ws.normed.data();
  float* out = ws.out.data();
  ForEachItem(T, d, [&](int64_t i) {
    std::memcpy(x + i * d, &embedding_[static_cast<size_t>(plan.token(i)) * d],
                sizeof(float) * d);
  });
  // Each layer's output joins the residual stream x as the next norm reads
  // it; after the last layer, only the rows that reach the head.
  const float eps = config_.rms_norm_eps;
  const float* pending = nullptr;
  for (const LayerWeights& layer : layers_) {
    AddThenNorm(x, pending, T, d, layer.input_norm.data(), eps, n,
                layer.attention.q.Next(ws.prepared));
    if (layer.type == BmojoLayerType::kAttention) {
      bmojo::FullAttentionLayer(config_, layer, plan, n, pool, ws, out);
    } else {
      bmojo::BmojoFLayer(config_, layer, plan, n, pool, ws, out);
    }
    AddThenNorm(x, out, T, d, layer.post_norm.data(), eps, n,
                layer.gate.Next(ws.prepared));
    bmojo::MlpLayer(config_, layer, T, n, ws, out);
    pending = out;
  }
  // Only the last token of each chunk that wants logits reaches the head.
  const std::vector<int>& head_rows = plan.head_rows();
  if (!head_rows.empty()) {
    const int rows = static_cast<int>(head_rows.size());
    float* y = ws.head_in.data();
    AddThenNormRows(x, pending, head_rows, d, final_norm_.data(), eps, y,
                    lm_head_.Next(ws.prepared));
    lm_head_.ApplyPrepared(y, rows, ws.prepared, logits);
  }
  plan.AdvancePositions(pool);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> BmojoModel::RecurrentStateForEval(
    const StatePool& pool, int slot) const {
  BMOJO_RETURN_IF_ERROR(CheckPoolLayout(pool, layout_, token_layout_));
  if (slot < 0 || slot >= pool.capacity() || !pool.IsAllocated(slot)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bmojo: slot ", slot, " is not allocated"));
  }
  std::vector<float> state;
  for (const LayerWeights& layer : layers_) {
    if (layer.type != BmojoLayerType::kBmojoF) continue;
    for (int slab : {layer.first_slab + bmojo::kSsmState,
                     layer.first_slab + bmojo::kConvRows}) {
      const float* row = pool.Row<float>(slab, slot);
      state.insert(state.end(), row,
                   row + layout_[slab].bytes_per_slot / sizeof(float));
    }
  }
  return state;
}

ComputeProfile BmojoModel::Profile() const {
  ComputeProfile profile;
  auto add = [&](const Linear& linear) {
    profile.per_token.push_back({linear.weight.n(), linear.weight.k()});
  };
  const int64_t D = config_.head_dim, H = config_.num_heads;
  for (const LayerWeights& layer : layers_) {
    add(layer.attention.q);
    add(layer.attention.k);
    add(layer.attention.v);
    add(layer.attention.o);
    if (layer.type == BmojoLayerType::kBmojoF) {
      add(layer.mamba.in_proj);
      add(layer.mamba.out_proj);
      add(layer.attention.k);  // fading keys and values
      add(layer.attention.v);
      // Scan: state update and read-out, 4 FLOPs per state entry; two
      // windows of attention over W keys each.
      profile.other_flops_per_token +=
          4 * H * D * D + 2 * 4 * H * D * config_.window;
    } else {
      ++profile.attention_layers;
    }
    add(layer.gate);
    add(layer.up);
    add(layer.down);
  }
  profile.lm_head = {config_.vocab_size, config_.hidden_size};
  profile.attention_width = config_.d_inner();
  profile.attention_window = 0;  // full causal context
  profile.precision = precision_;
  return profile;
}

}  // namespace

std::vector<StateSlabSpec> BmojoStateLayout(const BmojoConfig& c) {
  const size_t W = c.window, K = c.conv_width, H = c.num_heads, D = c.head_dim;
  const size_t kv_bytes = sizeof(float) * 2 * c.d_xb();
  std::vector<StateSlabSpec> layout;
  for (int l = 0; l < c.num_layers; ++l) {
    if (c.layers[l] != BmojoLayerType::kBmojoF) continue;
    const std::string name = absl::StrCat("layer", l, ".");
    layout.push_back(
        {name + "conv_rows", sizeof(float) * (K - 1) * c.conv_channels()});
    layout.push_back({name + "ssm_state", sizeof(float) * H * D * D});
    layout.push_back({name + "context_ring", (W - 1) * kv_bytes});
    layout.push_back({name + "fading_ring", (2 * W - 1) * kv_bytes});
    if (c.eidetic.enabled()) {
      layout.push_back(
          {name + "eidetic_memory",
           bmojo::EideticStore::RowBytes(c.eidetic.capacity, c.d_xb())});
      layout.push_back({name + "context_scores", sizeof(float) * (W - 1)});
    }
  }
  return layout;
}

TokenStateLayout BmojoTokenLayout(const BmojoConfig& c) {
  TokenStateLayout tokens;
  for (int l = 0; l < c.num_layers; ++l) {
    if (c.layers[l] != BmojoLayerType::kAttention) continue;
    tokens.kinds.push_back(
        {absl::StrCat("layer", l, ".kv"), sizeof(float) * 2 * c.d_xb()});
  }
  return tokens;
}

absl::StatusOr<std::unique_ptr<Model>> LoadBmojo(
    Checkpoint& checkpoint, const EideticConfig& eidetic,
    cpu::WeightPrecision precision) {
  BmojoConfig config;
  BMOJO_ASSIGN(config, ParseBmojoConfig(checkpoint.config()));
  BMOJO_RETURN_IF_ERROR(eidetic.Validate());
  config.eidetic = eidetic;
  auto model = std::make_unique<BmojoModel>(std::move(config), precision);
  BMOJO_RETURN_IF_ERROR(model->LoadWeights(checkpoint));
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace slabserve
