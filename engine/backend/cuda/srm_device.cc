// SRM on the device: the CPU engine's forward pass (engine/models/srm.cc)
// with cuBLAS products and the kernels of kernels/cuda; same checkpoint
// tensors, same state layout (one [D] f32 slab per block).
#include "engine/backend/cuda/srm_device.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/backend/cuda/device_linear.h"
#include "engine/models/srm_config.h"
#include "kernels/cuda/slot_kernels.h"

namespace slabserve::cuda {
namespace {

struct Block {
  DeviceBuffer channel_norm_weight, channel_norm_bias;
  DeviceBuffer token_norm_weight, token_norm_bias;
  DeviceLinear mlp_in, mlp_out, proj, out;
  DeviceBuffer mixer_weight, mixer_bias, decay;  // [H, N], [H, N], [H]
};

class DeviceSrm : public DeviceModel {
 public:
  DeviceSrm(SrmConfig config, std::unique_ptr<Gemm> gemm, cudaStream_t stream)
      : config_(std::move(config)),
        gemm_(std::move(gemm)),
        stream_(stream),
        linear_(gemm_.get(), stream) {}

  absl::Status Load(Checkpoint& ck, GemmType type);
  const DeviceModelShape& shape() const override { return shape_; }
  absl::Status Forward(const DeviceBatch& batch, const int* head_rows,
                       int head_count, DeviceSlabs& state,
                       float* logits) override;

 private:
  absl::Status LoadBlock(Checkpoint& ck, int l, GemmType type, Block& b);
  absl::Status RunBlock(const Block& b, const DeviceBatch& batch, float* state);

  SrmConfig config_;
  std::unique_ptr<Gemm> gemm_;
  cudaStream_t stream_;
  LinearRunner linear_;
  DeviceBuffer embedding_;  // [V, D] f32 (rows gathered)
  DeviceLinear output_;     // [V, D]
  std::vector<Block> blocks_;
  DeviceBuffer h_, u_, p_, m_, head_in_;
  DeviceModelShape shape_;
};

absl::StatusOr<std::vector<float>> Floats(Checkpoint& ck,
                                          const std::string& name,
                                          const std::vector<int64_t>& shape) {
  absl::StatusOr<Weight> w = ck.Load(name, shape);
  if (!w.ok()) return w.status();
  return std::vector<float>(w->data(), w->data() + w->size());
}

// Concatenates tensors (the per-head projections and mixer rows).
absl::StatusOr<std::vector<float>> Concat(Checkpoint& ck,
                                          const std::vector<std::string>& names,
                                          const std::vector<int64_t>& shape) {
  std::vector<float> all;
  for (const std::string& name : names) {
    absl::StatusOr<std::vector<float>> part = Floats(ck, name, shape);
    if (!part.ok()) return part.status();
    all.insert(all.end(), part->begin(), part->end());
  }
  return all;
}

absl::Status DeviceSrm::LoadBlock(Checkpoint& ck, int l, GemmType type,
                                  Block& b) {
  const int D = config_.hidden_dim, H = config_.heads, N = config_.seq_len;
  const int F = config_.expansion_factor * D, e = config_.head_dim();
  const std::string block = absl::StrCat("mixer_blocks.", l, ".");
  const std::string mix = block + "token_mixing_layer.";
  auto upload = [&](const std::string& name, std::vector<int64_t> shape,
                    DeviceBuffer& out) -> absl::Status {
    absl::StatusOr<std::vector<float>> w = Floats(ck, name, shape);
    if (!w.ok()) return w.status();
    absl::StatusOr<DeviceBuffer> d = UploadFloats(w->data(), w->size());
    if (!d.ok()) return d.status();
    out = *std::move(d);
    return absl::OkStatus();
  };
  auto linear = [&](const std::string& prefix, int out, int in,
                    DeviceLinear& to) -> absl::Status {
    absl::StatusOr<std::vector<float>> w =
        Floats(ck, prefix + "weight", {out, in});
    if (!w.ok()) return w.status();
    absl::StatusOr<std::vector<float>> bias =
        Floats(ck, prefix + "bias", {out});
    if (!bias.ok()) return bias.status();
    absl::StatusOr<DeviceLinear> d =
        UploadLinear(w->data(), out, in, bias->data(), type);
    if (!d.ok()) return d.status();
    to = *std::move(d);
    return absl::OkStatus();
  };
  SLAB_RETURN_IF_ERROR(
      upload(block + "channel_norm.weight", {D}, b.channel_norm_weight));
  SLAB_RETURN_IF_ERROR(
      upload(block + "channel_norm.bias", {D}, b.channel_norm_bias));
  SLAB_RETURN_IF_ERROR(
      upload(block + "token_norm.weight", {D}, b.token_norm_weight));
  SLAB_RETURN_IF_ERROR(
      upload(block + "token_norm.bias", {D}, b.token_norm_bias));
  SLAB_RETURN_IF_ERROR(
      linear(block + "channel_mixing_layer.0.", F, D, b.mlp_in));
  SLAB_RETURN_IF_ERROR(
      linear(block + "channel_mixing_layer.2.", D, F, b.mlp_out));
  SLAB_RETURN_IF_ERROR(linear(mix + "out_proj.", D, D, b.out));
  std::vector<std::string> proj_w, proj_b, mixer_w, mixer_b, decay;
  for (int k = 0; k < H; ++k) {
    proj_w.push_back(absl::StrCat(mix, "proj_head.", k, ".weight"));
    proj_b.push_back(absl::StrCat(mix, "proj_head.", k, ".bias"));
    mixer_w.push_back(absl::StrCat(mix, "mixer_heads.", k, ".weight"));
    mixer_b.push_back(absl::StrCat(mix, "mixer_heads.", k, ".bias"));
    decay.push_back(absl::StrCat(mix, "mixer_heads.", k, ".decay_value"));
  }
  absl::StatusOr<std::vector<float>> pw = Concat(ck, proj_w, {e, D});
  absl::StatusOr<std::vector<float>> pb = Concat(ck, proj_b, {e});
  absl::StatusOr<std::vector<float>> mw = Concat(ck, mixer_w, {1, N});
  absl::StatusOr<std::vector<float>> mb = Concat(ck, mixer_b, {N});
  for (const auto* s : {&pw, &pb, &mw, &mb}) {
    if (!s->ok()) return s->status();
  }
  absl::StatusOr<DeviceLinear> proj =
      UploadLinear(pw->data(), D, D, pb->data(), type);
  if (!proj.ok()) return proj.status();
  b.proj = *std::move(proj);
  std::vector<float> a(H, 1.0f);
  if (config_.decay) {
    absl::StatusOr<std::vector<float>> raw = Concat(ck, decay, {1});
    if (!raw.ok()) return raw.status();
    for (int k = 0; k < H; ++k) {
      const double d =
          std::clamp(static_cast<double>((*raw)[k]), config_.decay_clip_low,
                     config_.decay_clip_high);
      a[k] = static_cast<float>(std::pow(d, 1.0 / config_.decay_constant));
    }
  }
  for (auto [host, device] :
       {std::pair{&*mw, &b.mixer_weight}, std::pair{&*mb, &b.mixer_bias},
        std::pair{&a, &b.decay}}) {
    absl::StatusOr<DeviceBuffer> d = UploadFloats(host->data(), host->size());
    if (!d.ok()) return d.status();
    *device = *std::move(d);
  }
  return absl::OkStatus();
}

absl::Status DeviceSrm::Load(Checkpoint& ck, GemmType type) {
  const int V = config_.vocab_size, D = config_.hidden_dim;
  absl::StatusOr<std::vector<float>> embedding =
      Floats(ck, "input_layer.weight", {V, D});
  if (!embedding.ok()) return embedding.status();
  absl::StatusOr<DeviceBuffer> e =
      UploadFloats(embedding->data(), embedding->size());
  if (!e.ok()) return e.status();
  embedding_ = *std::move(e);
  absl::StatusOr<std::vector<float>> output =
      Floats(ck, "output_layer.weight", {V, D});
  if (!output.ok()) return output.status();
  absl::StatusOr<DeviceLinear> head =
      UploadLinear(output->data(), V, D, nullptr, type);
  if (!head.ok()) return head.status();
  output_ = *std::move(head);
  blocks_.resize(config_.num_blocks);
  for (int l = 0; l < config_.num_blocks; ++l) {
    SLAB_RETURN_IF_ERROR(LoadBlock(ck, l, type, blocks_[l]));
  }
  shape_.vocab_size = V;
  shape_.head_params = int64_t{V} * D;
  // Per block: MLP (2·F·D), projections and out_proj (2·D²).
  shape_.matmul_params =
      int64_t{config_.num_blocks} *
      (2 * int64_t{config_.expansion_factor} * D * D + 2 * int64_t{D} * D);
  shape_.slab_row_bytes.assign(config_.num_blocks, sizeof(float) * D);
  return ck.CheckAllLoaded();
}

absl::Status DeviceSrm::RunBlock(const Block& b, const DeviceBatch& batch,
                                 float* state) {
  const int T = batch.tokens, D = config_.hidden_dim;
  const int F = config_.expansion_factor * D;
  const float eps = config_.layer_norm_eps;
  float* h = h_.get<float>();
  float* u = u_.get<float>();
  float* p = p_.get<float>();
  float* m = m_.get<float>();
  SLAB_CUDA_RETURN_IF_ERROR(
      LayerNormRows(h, T, D, b.channel_norm_weight.get<float>(),
                    b.channel_norm_bias.get<float>(), eps, u, stream_));
  SLAB_RETURN_IF_ERROR(linear_.Apply(b.mlp_in, u, T, m));
  SLAB_CUDA_RETURN_IF_ERROR(Silu(m, static_cast<int64_t>(T) * F, stream_));
  SLAB_RETURN_IF_ERROR(linear_.Apply(b.mlp_out, m, T, u));
  SLAB_CUDA_RETURN_IF_ERROR(
      AddInPlace(h, u, static_cast<int64_t>(T) * D, stream_));
  SLAB_CUDA_RETURN_IF_ERROR(
      LayerNormRows(h, T, D, b.token_norm_weight.get<float>(),
                    b.token_norm_bias.get<float>(), eps, u, stream_));
  SLAB_RETURN_IF_ERROR(linear_.Apply(b.proj, u, T, p));
  SLAB_CUDA_RETURN_IF_ERROR(SrmMix(
      batch, p, D, config_.heads, config_.seq_len, b.mixer_weight.get<float>(),
      b.mixer_bias.get<float>(), b.decay.get<float>(), state, stream_));
  SLAB_RETURN_IF_ERROR(linear_.Apply(b.out, p, T, u));
  return CudaStatus(AddInPlace(h, u, static_cast<int64_t>(T) * D, stream_),
                    "AddInPlace");
}

absl::Status DeviceSrm::Forward(const DeviceBatch& batch, const int* head_rows,
                                int head_count, DeviceSlabs& state,
                                float* logits) {
  const int T = batch.tokens, D = config_.hidden_dim;
  if (T == 0) return absl::OkStatus();
  const size_t row = sizeof(float) * D;
  for (DeviceBuffer* b : {&h_, &u_, &p_}) {
    SLAB_RETURN_IF_ERROR(b->Reserve(row * T));
  }
  SLAB_RETURN_IF_ERROR(m_.Reserve(row * T * config_.expansion_factor));
  SLAB_RETURN_IF_ERROR(head_in_.Reserve(row * (head_count + 1)));
  SLAB_CUDA_RETURN_IF_ERROR(EmbedTokens(batch, embedding_.get<float>(), D, 1.0f,
                                        h_.get<float>(), stream_));
  for (int l = 0; l < config_.num_blocks; ++l) {
    SLAB_RETURN_IF_ERROR(RunBlock(blocks_[l], batch, state.slabs[l]));
  }
  if (head_count == 0) return absl::OkStatus();
  SLAB_CUDA_RETURN_IF_ERROR(GatherRows(h_.get(), row, head_rows, head_count,
                                       head_in_.get(), stream_));
  return linear_.Apply(output_, head_in_.get<float>(), head_count, logits);
}

}  // namespace

absl::StatusOr<std::unique_ptr<DeviceModel>> LoadDeviceSrm(
    Checkpoint& checkpoint, GemmType type, cudaStream_t stream) {
  absl::StatusOr<SrmConfig> config = ParseSrmConfig(checkpoint.config());
  if (!config.ok()) return config.status();
  absl::StatusOr<std::unique_ptr<Gemm>> gemm = Gemm::Create(stream);
  if (!gemm.ok()) return gemm.status();
  auto model =
      std::make_unique<DeviceSrm>(*std::move(config), *std::move(gemm), stream);
  SLAB_RETURN_IF_ERROR(model->Load(checkpoint, type));
  return std::unique_ptr<DeviceModel>(std::move(model));
}

}  // namespace slabserve::cuda
