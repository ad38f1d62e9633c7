// Griffin and Hawk on the device: the CPU engine's forward pass
// (engine/models/griffin*.cc) with cuBLAS products and the kernels of
// kernels/cuda; same checkpoint tensors, same state layout.
#include "engine/backend/cuda/griffin_device.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/backend/cuda/device_linear.h"
#include "engine/backend/cuda/weight_source.h"
#include "engine/models/griffin_config.h"
#include "kernels/math/elementwise.h"

namespace slabserve::cuda {
namespace {

#define SLAB_ASSIGN_OR_RETURN(lhs, expr)        \
  do {                                          \
    auto result_ = (expr);                      \
    if (!result_.ok()) return result_.status(); \
    lhs = std::move(*result_);                  \
  } while (0)

struct RecurrentLayer {
  DeviceLinear x, y, out;
  DeviceBuffer conv_taps, conv_bias;         // [K, R], [R]
  DeviceBuffer input_gate, recurrence_gate;  // [H, bw, bw] as stored
  DeviceBuffer input_gate_bias, recurrence_gate_bias, log_decay;  // [R]
};

struct AttentionLayer {
  DeviceLinear q, k, v, o;
};

struct Layer {
  GriffinBlock type = GriffinBlock::kRecurrent;
  int first_slab = 0;
  DeviceBuffer temporal_norm, channel_norm;  // 1 + w
  RecurrentLayer recurrent;
  AttentionLayer attention;
  DeviceLinear gate_up, down;  // gate‖up fused: [2F, D]
};

// Grow-only activations.
struct Activations {
  DeviceBuffer x, normed, out, y, u, conv, gate_r, gate_i, scanned, q, k, v,
      attended, mlp, mlp_out, head_in;

  absl::Status Reserve(const GriffinConfig& c, int tokens, int heads_rows) {
    const size_t T = tokens, f = sizeof(float);
    const size_t D = c.hidden_size, R = c.lru_width;
    const size_t qw = static_cast<size_t>(c.num_heads) * c.head_dim;
    const size_t kvw = static_cast<size_t>(c.num_kv_heads) * c.head_dim;
    for (DeviceBuffer* b : {&x, &normed, &out}) {
      SLAB_RETURN_IF_ERROR(b->Reserve(f * T * D));
    }
    for (DeviceBuffer* b : {&y, &u, &conv, &gate_r, &gate_i, &scanned}) {
      SLAB_RETURN_IF_ERROR(b->Reserve(f * T * R));
    }
    SLAB_RETURN_IF_ERROR(q.Reserve(f * T * qw));
    SLAB_RETURN_IF_ERROR(attended.Reserve(f * T * qw));
    SLAB_RETURN_IF_ERROR(k.Reserve(f * T * kvw));
    SLAB_RETURN_IF_ERROR(v.Reserve(f * T * kvw));
    SLAB_RETURN_IF_ERROR(mlp.Reserve(f * T * 2 * c.mlp_width));
    SLAB_RETURN_IF_ERROR(mlp_out.Reserve(f * T * c.mlp_width));
    SLAB_RETURN_IF_ERROR(head_in.Reserve(f * (heads_rows + 1) * D));
    return absl::OkStatus();
  }
};

class DeviceGriffin : public DeviceModel {
 public:
  DeviceGriffin(GriffinConfig config, std::unique_ptr<Gemm> gemm,
                cudaStream_t stream)
      : config_(std::move(config)),
        gemm_(std::move(gemm)),
        stream_(stream),
        linear_(gemm_.get(), stream) {}

  absl::Status Load(WeightSource& source, GemmType type);
  const DeviceModelShape& shape() const override { return shape_; }
  absl::Status Forward(const DeviceBatch& batch, const int* head_rows,
                       int head_count, DeviceSlabs& state,
                       float* logits) override;

 private:
  absl::Status LoadRecurrent(WeightSource& source, const std::string& prefix,
                             GemmType type, RecurrentLayer& w);
  absl::Status LoadAttention(WeightSource& source, const std::string& prefix,
                             GemmType type, AttentionLayer& w);
  absl::Status Recurrent(const Layer& layer, const DeviceBatch& batch,
                         DeviceSlabs& state);
  absl::Status Attention(const Layer& layer, const DeviceBatch& batch,
                         DeviceSlabs& state);
  absl::Status Mlp(const Layer& layer, int tokens);
  void ComputeShape();

  GriffinConfig config_;
  std::unique_ptr<Gemm> gemm_;
  cudaStream_t stream_;
  LinearRunner linear_;
  DeviceLinear embedding_;  // [V, D]: token rows and the tied LM head
  DeviceBuffer final_norm_;
  std::vector<Layer> layers_;
  Activations act_;
  DeviceModelShape shape_;
};

absl::Status DeviceGriffin::LoadRecurrent(WeightSource& source,
                                          const std::string& prefix,
                                          GemmType type, RecurrentLayer& w) {
  const int D = config_.hidden_size, R = config_.lru_width;
  const int H = config_.num_heads, bw = R / H, K = config_.conv_width;
  SLAB_ASSIGN_OR_RETURN(
      w.x, source.Linear({prefix + "linear_x"}, {R}, D, true, type));
  SLAB_ASSIGN_OR_RETURN(
      w.y, source.Linear({prefix + "linear_y"}, {R}, D, true, type));
  SLAB_ASSIGN_OR_RETURN(
      w.out, source.Linear({prefix + "linear_out"}, {D}, R, true, type));
  SLAB_ASSIGN_OR_RETURN(w.conv_taps,
                        source.Vector(prefix + "conv_1d.weight", {R, 1, K},
                                      VectorKind::kConvTaps));
  SLAB_ASSIGN_OR_RETURN(w.conv_bias, source.Vector(prefix + "conv_1d.bias", {R},
                                                   VectorKind::kPlain));
  const std::string lru = prefix + "rg_lru.";
  // Gate blocks stay as stored, [H, in, out]: BlockDiagonal's layout.
  SLAB_ASSIGN_OR_RETURN(w.input_gate,
                        source.Vector(lru + "input_gate_weight", {H, bw, bw},
                                      VectorKind::kPlain));
  SLAB_ASSIGN_OR_RETURN(
      w.input_gate_bias,
      source.Vector(lru + "input_gate_bias", {H, bw}, VectorKind::kPlain));
  SLAB_ASSIGN_OR_RETURN(w.recurrence_gate,
                        source.Vector(lru + "recurrent_gate_weight",
                                      {H, bw, bw}, VectorKind::kPlain));
  SLAB_ASSIGN_OR_RETURN(
      w.recurrence_gate_bias,
      source.Vector(lru + "recurrent_gate_bias", {H, bw}, VectorKind::kPlain));
  SLAB_ASSIGN_OR_RETURN(w.log_decay, source.Vector(lru + "recurrent_param", {R},
                                                   VectorKind::kLogDecay));
  return absl::OkStatus();
}

absl::Status DeviceGriffin::LoadAttention(WeightSource& source,
                                          const std::string& prefix,
                                          GemmType type, AttentionLayer& w) {
  const int D = config_.hidden_size;
  const int qw = config_.num_heads * config_.head_dim;
  const int kvw = config_.num_kv_heads * config_.head_dim;
  const bool bias = config_.attention_bias;
  SLAB_ASSIGN_OR_RETURN(
      w.q, source.Linear({prefix + "q_proj"}, {qw}, D, bias, type));
  SLAB_ASSIGN_OR_RETURN(
      w.k, source.Linear({prefix + "k_proj"}, {kvw}, D, bias, type));
  SLAB_ASSIGN_OR_RETURN(
      w.v, source.Linear({prefix + "v_proj"}, {kvw}, D, bias, type));
  SLAB_ASSIGN_OR_RETURN(
      w.o, source.Linear({prefix + "o_proj"}, {D}, qw, true, type));
  return absl::OkStatus();
}

absl::Status DeviceGriffin::Load(WeightSource& source, GemmType type) {
  const int V = config_.vocab_size, D = config_.hidden_size;
  const int F = config_.mlp_width;
  SLAB_ASSIGN_OR_RETURN(
      embedding_, source.Linear({"model.embed_tokens"}, {V}, D, false, type));
  SLAB_ASSIGN_OR_RETURN(
      final_norm_,
      source.Vector("model.final_norm.weight", {D}, VectorKind::kNormOffset));
  layers_.resize(config_.num_layers);
  for (int i = 0; i < config_.num_layers; ++i) {
    Layer& layer = layers_[i];
    const std::string prefix = absl::StrCat("model.layers.", i, ".");
    layer.type = config_.layers[i];
    layer.first_slab = 2 * i;
    SLAB_ASSIGN_OR_RETURN(layer.temporal_norm,
                          source.Vector(prefix + "temporal_pre_norm.weight",
                                        {D}, VectorKind::kNormOffset));
    SLAB_ASSIGN_OR_RETURN(layer.channel_norm,
                          source.Vector(prefix + "channel_pre_norm.weight", {D},
                                        VectorKind::kNormOffset));
    const std::string block = prefix + "temporal_block.";
    if (layer.type == GriffinBlock::kRecurrent) {
      SLAB_RETURN_IF_ERROR(LoadRecurrent(source, block, type, layer.recurrent));
    } else {
      SLAB_RETURN_IF_ERROR(LoadAttention(source, block, type, layer.attention));
    }
    const std::string mlp = prefix + "mlp_block.";
    // gate‖up as one [2F, D] product.
    SLAB_ASSIGN_OR_RETURN(layer.gate_up,
                          source.Linear({mlp + "gate_proj", mlp + "up_proj"},
                                        {F, F}, D, true, type));
    SLAB_ASSIGN_OR_RETURN(
        layer.down, source.Linear({mlp + "down_proj"}, {D}, F, true, type));
  }
  ComputeShape();
  return source.Finish();
}

void DeviceGriffin::ComputeShape() {
  const int64_t D = config_.hidden_size, R = config_.lru_width;
  const int64_t F = config_.mlp_width, H = config_.num_heads;
  const int64_t qw = H * config_.head_dim;
  const int64_t kvw = int64_t{config_.num_kv_heads} * config_.head_dim;
  const int64_t bw = R / H, K = config_.conv_width;
  const int64_t W = config_.attention_window;
  shape_.vocab_size = config_.vocab_size;
  shape_.head_params = int64_t{config_.vocab_size} * D;
  shape_.attention_width = static_cast<int>(qw);
  shape_.kv_width = kvw;
  shape_.window = static_cast<int>(W);
  for (const Layer& layer : layers_) {
    shape_.matmul_params += 3 * D * F;
    if (layer.type == GriffinBlock::kRecurrent) {
      shape_.matmul_params += 3 * D * R + 2 * H * bw * bw;
      shape_.slab_row_bytes.push_back(sizeof(float) * (K - 1) * R);
      shape_.slab_row_bytes.push_back(sizeof(float) * R);
    } else {
      shape_.matmul_params += 2 * D * qw + 2 * D * kvw;
      ++shape_.attention_layers;
      shape_.slab_row_bytes.push_back(sizeof(float) * W * kvw);
      shape_.slab_row_bytes.push_back(sizeof(float) * W * kvw);
    }
  }
}

absl::Status DeviceGriffin::Recurrent(const Layer& layer,
                                      const DeviceBatch& batch,
                                      DeviceSlabs& state) {
  const RecurrentLayer& w = layer.recurrent;
  const int T = batch.tokens, R = config_.lru_width;
  const int bw = R / config_.num_heads;
  const float* n = act_.normed.get<float>();
  float* y = act_.y.get<float>();
  float* u = act_.u.get<float>();
  float* c = act_.conv.get<float>();
  SLAB_RETURN_IF_ERROR(linear_.Apply(w.y, n, T, y));
  SLAB_CUDA_RETURN_IF_ERROR(GeluTanh(y, static_cast<int64_t>(T) * R, stream_));
  SLAB_RETURN_IF_ERROR(linear_.Apply(w.x, n, T, u));
  float* tail = state.slabs[layer.first_slab];
  float* h = state.slabs[layer.first_slab + 1];
  SLAB_CUDA_RETURN_IF_ERROR(CausalConv(batch, u, R, w.conv_taps.get<float>(),
                                       w.conv_bias.get<float>(), R,
                                       config_.conv_width, tail, c, stream_));
  SLAB_CUDA_RETURN_IF_ERROR(
      UpdateConvTail(batch, u, R, R, config_.conv_width, tail, stream_));
  float* gate_r = act_.gate_r.get<float>();
  float* gate_i = act_.gate_i.get<float>();
  SLAB_RETURN_IF_ERROR(gemm_->BlockDiagonal(
      c, T, R, w.recurrence_gate.get<float>(), config_.num_heads, bw, gate_r));
  SLAB_CUDA_RETURN_IF_ERROR(
      AddBias(gate_r, T, R, w.recurrence_gate_bias.get<float>(), stream_));
  SLAB_RETURN_IF_ERROR(gemm_->BlockDiagonal(c, T, R, w.input_gate.get<float>(),
                                            config_.num_heads, bw, gate_i));
  SLAB_CUDA_RETURN_IF_ERROR(
      AddBias(gate_i, T, R, w.input_gate_bias.get<float>(), stream_));
  float* scanned = act_.scanned.get<float>();
  SLAB_CUDA_RETURN_IF_ERROR(RgLruScan(batch, w.log_decay.get<float>(), gate_r,
                                      gate_i, c, y, R, R, h, scanned, stream_));
  return linear_.Apply(w.out, scanned, T, act_.out.get<float>());
}

absl::Status DeviceGriffin::Attention(const Layer& layer,
                                      const DeviceBatch& batch,
                                      DeviceSlabs& state) {
  const AttentionLayer& w = layer.attention;
  const int T = batch.tokens, H = config_.num_heads, hd = config_.head_dim;
  const int KVH = config_.num_kv_heads, W = config_.attention_window;
  const float* n = act_.normed.get<float>();
  float* q = act_.q.get<float>();
  float* k = act_.k.get<float>();
  float* v = act_.v.get<float>();
  SLAB_RETURN_IF_ERROR(linear_.Apply(w.q, n, T, q));
  SLAB_RETURN_IF_ERROR(linear_.Apply(w.k, n, T, k));
  SLAB_RETURN_IF_ERROR(linear_.Apply(w.v, n, T, v));
  SLAB_CUDA_RETURN_IF_ERROR(ApplyRotary(batch, q, H, hd, config_.rotary_dims,
                                        config_.rope_theta, stream_));
  SLAB_CUDA_RETURN_IF_ERROR(ApplyRotary(batch, k, KVH, hd, config_.rotary_dims,
                                        config_.rope_theta, stream_));
  float* keys = state.slabs[layer.first_slab];
  float* values = state.slabs[layer.first_slab + 1];
  float* attended = act_.attended.get<float>();
  SLAB_CUDA_RETURN_IF_ERROR(LocalAttention(batch, q, k, v, keys, values, H, KVH,
                                           hd, W, attended, stream_));
  SLAB_CUDA_RETURN_IF_ERROR(
      WriteRing(batch, k, v, KVH * hd, W, keys, values, stream_));
  return linear_.Apply(w.o, attended, T, act_.out.get<float>());
}

absl::Status DeviceGriffin::Mlp(const Layer& layer, int tokens) {
  const int F = config_.mlp_width;
  float* mlp = act_.mlp.get<float>();
  float* activated = act_.mlp_out.get<float>();
  SLAB_RETURN_IF_ERROR(
      linear_.Apply(layer.gate_up, act_.normed.get<float>(), tokens, mlp));
  SLAB_CUDA_RETURN_IF_ERROR(
      GeGluRows(mlp, tokens, F, 2 * F, F, activated, stream_));
  return linear_.Apply(layer.down, activated, tokens, act_.out.get<float>());
}

absl::Status DeviceGriffin::Forward(const DeviceBatch& batch,
                                    const int* head_rows, int head_count,
                                    DeviceSlabs& state, float* logits) {
  const int T = batch.tokens, D = config_.hidden_size;
  if (T == 0) return absl::OkStatus();
  SLAB_RETURN_IF_ERROR(act_.Reserve(config_, T, head_count));
  float* x = act_.x.get<float>();
  float* n = act_.normed.get<float>();
  float* out = act_.out.get<float>();
  if (embedding_.weight.type == GemmType::kBf16) {
    SLAB_CUDA_RETURN_IF_ERROR(
        EmbedTokensBf16(batch, embedding_.weight_storage.get<uint16_t>(), D,
                        config_.embedding_scale, x, stream_));
  } else {
    SLAB_CUDA_RETURN_IF_ERROR(
        EmbedTokens(batch, embedding_.weight_storage.get<float>(), D,
                    config_.embedding_scale, x, stream_));
  }
  const float eps = config_.rms_norm_eps;
  const int64_t size = static_cast<int64_t>(T) * D;
  for (const Layer& layer : layers_) {
    SLAB_CUDA_RETURN_IF_ERROR(RmsNormRows(
        x, nullptr, T, D, layer.temporal_norm.get<float>(), eps, n, stream_));
    SLAB_RETURN_IF_ERROR(layer.type == GriffinBlock::kRecurrent
                             ? Recurrent(layer, batch, state)
                             : Attention(layer, batch, state));
    SLAB_CUDA_RETURN_IF_ERROR(AddInPlace(x, out, size, stream_));
    SLAB_CUDA_RETURN_IF_ERROR(RmsNormRows(
        x, nullptr, T, D, layer.channel_norm.get<float>(), eps, n, stream_));
    SLAB_RETURN_IF_ERROR(Mlp(layer, T));
    SLAB_CUDA_RETURN_IF_ERROR(AddInPlace(x, out, size, stream_));
  }
  if (head_count == 0) return absl::OkStatus();
  float* head_in = act_.head_in.get<float>();
  SLAB_CUDA_RETURN_IF_ERROR(RmsNormRows(x, head_rows, head_count, D,
                                        final_norm_.get<float>(), eps, head_in,
                                        stream_));
  SLAB_RETURN_IF_ERROR(linear_.Apply(embedding_, head_in, head_count, logits));
  return CudaStatus(
      SoftCap(logits, static_cast<int64_t>(head_count) * config_.vocab_size,
              config_.logits_soft_cap, stream_),
      "SoftCap");
}

}  // namespace

absl::StatusOr<std::unique_ptr<DeviceModel>> CreateDeviceGriffin(
    const GriffinConfig& config, WeightSource& source, GemmType type,
    cudaStream_t stream) {
  std::unique_ptr<Gemm> gemm;
  SLAB_ASSIGN_OR_RETURN(gemm, Gemm::Create(stream));
  auto model = std::make_unique<DeviceGriffin>(config, std::move(gemm), stream);
  SLAB_RETURN_IF_ERROR(model->Load(source, type));
  return std::unique_ptr<DeviceModel>(std::move(model));
}

absl::StatusOr<std::unique_ptr<DeviceModel>> LoadDeviceGriffin(
    Checkpoint& checkpoint, GemmType type, cudaStream_t stream) {
  GriffinConfig config;
  SLAB_ASSIGN_OR_RETURN(config, ParseGriffinConfig(checkpoint.config()));
  // A re-saved tied head is checked by the CPU loader; not needed here.
  std::unique_ptr<WeightSource> source =
      CheckpointWeights(checkpoint, {"lm_head.weight"});
  return CreateDeviceGriffin(config, *source, type, stream);
}

}  // namespace slabserve::cuda
