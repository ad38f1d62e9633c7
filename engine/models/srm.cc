#include "engine/models/srm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm_act.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vector_math.h"

namespace slabserve {
namespace {

void AddInPlace(float* h, const float* x, int64_t rows, int dim) {
  cpu::ParallelFor(rows, TaskGrain(dim), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin * dim; i < end * dim; ++i) h[i] += x[i];
  });
}

absl::Status CheckSize(const std::vector<float>& tensor, size_t want,
                       const std::string& name) {
  if (tensor.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("SRM weights: '", name,
                                                   "' has ", tensor.size(),
                                                   " floats, expected ", want));
  }
  return absl::OkStatus();
}

// SplitMix64: a small seeded generator for reproducible random weights.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  // Uniform in [-scale, scale).
  float Uniform(float scale) {
    state_ += 0x9e3779b97f4a7c15ull;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float unit = static_cast<float>(z >> 40) * (1.0f / (1 << 24));
    return (2.0f * unit - 1.0f) * scale;
  }
  std::vector<float> Vector(size_t n, float scale, float offset = 0.0f) {
    std::vector<float> v(n);
    for (float& x : v) x = offset + Uniform(scale);
    return v;
  }

 private:
  uint64_t state_;
};

}  // namespace

SrmModel::SrmModel(const SrmConfig& config, SrmWeights weights,
                   const std::string& weights_dtype,
                   cpu::WeightPrecision precision)
    : config_(config), weights_(std::move(weights)) {
  const int L = config_.num_blocks, H = config_.heads;
  const int D = config_.hidden_dim, F = config_.expansion_factor * D;
  // Packs a [n, k] weight and frees the unpacked copy.
  auto pack = [precision](std::vector<float>& w, int n, int k) {
    cpu::Projection packed(w.data(), n, k, precision);
    std::vector<float>().swap(w);
    return packed;
  };
  for (SrmBlockWeights& b : weights_.blocks) {
    packed_.push_back({pack(b.mlp_in_weight, F, D),
                       pack(b.mlp_out_weight, D, F), pack(b.proj_weight, D, D),
                       pack(b.out_weight, D, D)});
  }
  output_ = pack(weights_.output, config_.vocab_size, D);
  decay_.assign(static_cast<size_t>(L) * H, 1.0f);
  if (config_.decay) {
    // Clip first, then the power; 1/c must be a floating division.
    for (int l = 0; l < L; ++l) {
      for (int k = 0; k < H; ++k) {
        const double d =
            std::clamp(static_cast<double>(weights_.blocks[l].decay_value[k]),
                       config_.decay_clip_low, config_.decay_clip_high);
        decay_[l * H + k] =
            static_cast<float>(std::pow(d, 1.0 / config_.decay_constant));
      }
    }
  }
  for (int l = 0; l < L; ++l) {
    layout_.push_back({absl::StrCat("block", l, ".srm_state"),
                       static_cast<size_t>(D) * sizeof(float)});
  }
  info_.architecture = "srm";
  info_.vocab_size = config_.vocab_size;
  info_.num_layers = L;
  info_.hidden_size = config_.hidden_dim;
  info_.attention_window = 0;
  info_.max_positions = config_.seq_len;
  info_.bos_id = config_.bos_id;
  info_.eos_id = config_.eos_id;
  info_.pad_id = config_.pad_id;
  info_.add_bos = config_.add_bos;
  info_.weights_dtype = weights_dtype;
}

absl::StatusOr<std::unique_ptr<SrmModel>> SrmModel::Create(
    const SrmConfig& config, SrmWeights weights,
    const std::string& weights_dtype, cpu::WeightPrecision precision) {
  if (absl::Status status = config.Validate(); !status.ok()) return status;
  const size_t V = config.vocab_size, D = config.hidden_dim,
               F = static_cast<size_t>(config.expansion_factor) * D,
               H = config.heads, N = config.seq_len;
  if (absl::Status s = CheckSize(weights.embedding, V * D, "input_layer");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckSize(weights.output, V * D, "output_layer");
      !s.ok()) {
    return s;
  }
  if (weights.blocks.size() != static_cast<size_t>(config.num_blocks)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SRM weights: ", weights.blocks.size(),
                     " blocks, expected ", config.num_blocks));
  }
  for (size_t l = 0; l < weights.blocks.size(); ++l) {
    const SrmBlockWeights& b = weights.blocks[l];
    const std::pair<const std::vector<float>*, std::pair<size_t, const char*>>
        checks[] = {
            {&b.channel_norm_weight, {D, "channel_norm.weight"}},
            {&b.channel_norm_bias, {D, "channel_norm.bias"}},
            {&b.mlp_in_weight, {F * D, "channel_mixing_layer.0.weight"}},
            {&b.mlp_in_bias, {F, "channel_mixing_layer.0.bias"}},
            {&b.mlp_out_weight, {D * F, "channel_mixing_layer.2.weight"}},
            {&b.mlp_out_bias, {D, "channel_mixing_layer.2.bias"}},
            {&b.token_norm_weight, {D, "token_norm.weight"}},
            {&b.token_norm_bias, {D, "token_norm.bias"}},
            {&b.proj_weight, {D * D, "proj_head weights"}},
            {&b.proj_bias, {D, "proj_head biases"}},
            {&b.out_weight, {D * D, "out_proj.weight"}},
            {&b.out_bias, {D, "out_proj.bias"}},
            {&b.mixer_weight, {H * N, "mixer_heads weights"}},
            {&b.mixer_bias, {H * N, "mixer_heads biases"}},
            {&b.decay_value, {config.decay ? H : 0, "decay_value"}},
        };
    for (const auto& [tensor, want] : checks) {
      absl::Status s = CheckSize(*tensor, want.first,
                                 absl::StrCat("block ", l, " ", want.second));
      if (!s.ok()) return s;
    }
  }
  return std::unique_ptr<SrmModel>(
      new SrmModel(config, std::move(weights), weights_dtype, precision));
}

absl::StatusOr<std::unique_ptr<SrmModel>> SrmModel::CreateRandom(
    const SrmConfig& config, uint64_t seed, cpu::WeightPrecision precision) {
  if (absl::Status status = config.Validate(); !status.ok()) return status;
  const size_t V = config.vocab_size, D = config.hidden_dim,
               F = static_cast<size_t>(config.expansion_factor) * D,
               H = config.heads, N = config.seq_len;
  Random random(seed);
  const float in_scale = 1.0f / std::sqrt(static_cast<float>(D));
  const float hidden_scale = 1.0f / std::sqrt(static_cast<float>(F));
  SrmWeights w;
  w.embedding = random.Vector(V * D, 1.0f);
  w.output = random.Vector(V * D, in_scale);
  w.blocks.resize(config.num_blocks);
  for (SrmBlockWeights& b : w.blocks) {
    b.channel_norm_weight = random.Vector(D, 0.2f, 1.0f);
    b.channel_norm_bias = random.Vector(D, 0.1f);
    b.mlp_in_weight = random.Vector(F * D, in_scale);
    b.mlp_in_bias = random.Vector(F, in_scale);
    b.mlp_out_weight = random.Vector(D * F, hidden_scale);
    b.mlp_out_bias = random.Vector(D, hidden_scale);
    b.token_norm_weight = random.Vector(D, 0.2f, 1.0f);
    b.token_norm_bias = random.Vector(D, 0.1f);
    b.proj_weight = random.Vector(D * D, in_scale);
    b.proj_bias = random.Vector(D, in_scale);
    b.out_weight = random.Vector(D * D, in_scale);
    b.out_bias = random.Vector(D, in_scale);
    b.mixer_weight = random.Vector(H * N, 0.5f, 0.5f);
    b.mixer_bias = random.Vector(H * N, 0.1f);
    if (config.decay) b.decay_value = random.Vector(H, 0.1f, 0.95f);
  }
  return Create(config, std::move(w), "f32", precision);
}

std::vector<StateSlabSpec> SrmModel::StateLayout() const { return layout_; }

absl::Status SrmModel::Forward(absl::Span<const SequenceChunk> batch,
                               StatePool& pool, float* logits) {
  if (absl::Status s = CheckPoolLayout(pool, layout_); !s.ok()) return s;
  // Validates everything first: an error must leave every slot unchanged.
  if (absl::Status s = plan_.Build(batch, pool, info_, logits); !s.ok()) {
    return s;
  }
  const int64_t total = plan_.tokens();
  if (total == 0) return absl::OkStatus();
  const int64_t tile = std::min<int64_t>(total, tile_rows_);
  const size_t D = config_.hidden_dim;
  Scratch& scratch = scratch_;
  GrowToAtLeast(scratch.h, tile * D);
  GrowToAtLeast(scratch.u, tile * D);
  GrowToAtLeast(scratch.p, tile * D);
  GrowToAtLeast(scratch.m, tile * D * config_.expansion_factor);
  const std::vector<int>& head_rows = plan_.head_rows();
  size_t next_head = 0;  // logits row of the next wanted row
  for (int64_t begin = 0; begin < total; begin += tile) {
    const int64_t end = std::min(total, begin + tile);
    RunTile(begin, end, pool, scratch);
    // Logits rows of a tile are consecutive in the output (batch order).
    const size_t first = next_head;
    for (; next_head < head_rows.size() && head_rows[next_head] < end;
         ++next_head) {
      std::memcpy(&scratch.u[(next_head - first) * D],
                  &scratch.h[(head_rows[next_head] - begin) * D],
                  D * sizeof(float));
    }
    if (next_head > first) {
      output_.Apply(scratch.u.data(), static_cast<int>(next_head - first),
                    nullptr, logits + first * config_.vocab_size);
    }
  }
  plan_.AdvancePositions(pool);
  return absl::OkStatus();
}

void SrmModel::RunTile(int64_t begin, int64_t end, StatePool& pool,
                       Scratch& scratch) const {
  const int rows = static_cast<int>(end - begin);
  const int D = config_.hidden_dim;
  const int F = config_.expansion_factor * D;
  const float eps = config_.layer_norm_eps;
  const RaggedBatch& plan = plan_;
  float* h = scratch.h.data();
  float* u = scratch.u.data();
  float* p = scratch.p.data();
  float* m = scratch.m.data();
  cpu::ParallelFor(rows, TaskGrain(D), [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) {
      std::memcpy(
          h + i * D,
          &weights_.embedding[static_cast<size_t>(plan.token(begin + i)) * D],
          D * sizeof(float));
    }
  });
  // Runs of rows that belong to one chunk: its recurrence is sequential.
  std::vector<int>& segment_start = scratch.segment_start;
  segment_start.clear();
  for (int i = 0; i < rows; ++i) {
    if (i == 0 || plan.chunk(begin + i) != plan.chunk(begin + i - 1)) {
      segment_start.push_back(i);
    }
  }
  segment_start.push_back(rows);

  cpu::Bf16Rows& prepared = scratch.prepared;
  const float* pending = nullptr;  // the last block's output, not yet in h
  for (int l = 0; l < config_.num_blocks; ++l) {
    const SrmBlockWeights& w = weights_.blocks[l];
    const PackedBlock& packed = packed_[l];
    // Channel mixing; the previous block's output joins h as the norm reads
    // it.
    AddThenLayerNorm(h, pending, rows, D, w.channel_norm_weight.data(),
                     w.channel_norm_bias.data(), eps, u,
                     {&packed.mlp_in, &prepared});
    packed.mlp_in.ApplyPrepared(u, rows, w.mlp_in_bias.data(), prepared, m);
    packed.mlp_out.Reserve(rows, prepared);
    cpu::ParallelFor(rows, TaskGrain(16 * F), [&](int64_t first, int64_t last) {
      for (int64_t r = first; r < last; ++r) {
        cpu::Silu(m + r * F, F, m + r * F);
        packed.mlp_out.Prepare(static_cast<int>(r), m + r * F, prepared);
      }
    });
    packed.mlp_out.ApplyPrepared(m, rows, w.mlp_out_bias.data(), prepared, u);
    // Token mixing: projections, per-head recurrences, out_proj.
    AddThenLayerNorm(h, u, rows, D, w.token_norm_weight.data(),
                     w.token_norm_bias.data(), eps, u,
                     {&packed.proj, &prepared});
    packed.proj.ApplyPrepared(u, rows, w.proj_bias.data(), prepared, p);
    packed.out.Reserve(rows, prepared);
    MixTokens(l, begin, pool, scratch);
    packed.out.ApplyPrepared(p, rows, w.out_bias.data(), prepared, u);
    pending = u;
  }
  AddInPlace(h, pending, rows, D);
}

void SrmModel::MixTokens(int l, int64_t begin, StatePool& pool,
                         Scratch& scratch) const {
  const int D = config_.hidden_dim, H = config_.heads, N = config_.seq_len;
  const int e = config_.head_dim();
  const SrmBlockWeights& w = weights_.blocks[l];
  const cpu::Projection& out = packed_[l].out;
  const std::vector<int>& segment_start = scratch.segment_start;
  const int segments = static_cast<int>(segment_start.size()) - 1;
  const float* a = &decay_[static_cast<size_t>(l) * H];
  float* p = scratch.p.data();
  cpu::ParallelFor(segments, TaskGrain(3 * D), [&](int64_t sb, int64_t se) {
    for (int64_t s = sb; s < se; ++s) {
      const int chunk = plan_.chunk(begin + segment_start[s]);
      float* state = pool.Row<float>(l, plan_.slot(chunk));
      for (int i = segment_start[s]; i < segment_start[s + 1]; ++i) {
        const int t = plan_.position(begin + i);
        float* y_row = p + static_cast<size_t>(i) * D;
        for (int k = 0; k < H; ++k) {
          const float wt = w.mixer_weight[static_cast<size_t>(k) * N + t];
          const float bt = w.mixer_bias[static_cast<size_t>(k) * N + t];
          const float ak = a[k];
          float* st = state + k * e;
          float* y = y_row + k * e;
          if (k < H / 2) {  // column-repeat: weight on the way out
            for (int c = 0; c < e; ++c) {
              st[c] = y[c] + ak * st[c];
              y[c] = wt * st[c] + bt;
            }
          } else {  // row-repeat: weight on the way in
            for (int c = 0; c < e; ++c) {
              st[c] = wt * y[c] + ak * st[c];
              y[c] = st[c] + bt;
            }
          }
        }
        out.Prepare(i, y_row, scratch.prepared);
      }
    }
  });
}

absl::StatusOr<std::vector<float>> SrmModel::RecurrentStateForEval(
    const StatePool& pool, int slot) const {
  if (absl::Status s = CheckPoolLayout(pool, layout_); !s.ok()) return s;
  if (!pool.IsAllocated(slot)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SRM: slot ", slot, " is not allocated"));
  }
  const size_t D = config_.hidden_dim;
  std::vector<float> state(config_.num_blocks * D);
  for (int l = 0; l < config_.num_blocks; ++l) {
    std::memcpy(&state[l * D], pool.Row<float>(l, slot), D * sizeof(float));
  }
  return state;
}

absl::StatusOr<std::unique_ptr<Model>> LoadSrm(Checkpoint& checkpoint,
                                               cpu::WeightPrecision precision) {
  absl::StatusOr<SrmConfig> config = ParseSrmConfig(checkpoint.config());
  if (!config.ok()) return config.status();
  const int64_t V = config->vocab_size, D = config->hidden_dim,
                F = config->expansion_factor * D, H = config->heads,
                N = config->seq_len, e = config->head_dim();
  // Copies into owned arrays: the model outlives the checkpoint's mapping.
  auto append = [&](const std::string& name, const std::vector<int64_t>& shape,
                    std::vector<float>& out) -> absl::Status {
    absl::StatusOr<Weight> weight = checkpoint.Load(name, shape);
    if (!weight.ok()) return weight.status();
    out.insert(out.end(), weight->data(), weight->data() + weight->size());
    return absl::OkStatus();
  };
  SrmWeights w;
  if (absl::Status s = append("input_layer.weight", {V, D}, w.embedding);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = append("output_layer.weight", {V, D}, w.output);
      !s.ok()) {
    return s;
  }
  w.blocks.resize(config->num_blocks);
  for (int l = 0; l < config->num_blocks; ++l) {
    SrmBlockWeights& b = w.blocks[l];
    const std::string block = absl::StrCat("mixer_blocks.", l, ".");
    const std::string mix = block + "token_mixing_layer.";
    std::vector<std::pair<std::string,
                          std::pair<std::vector<int64_t>, std::vector<float>*>>>
        tensors = {
            {block + "channel_norm.weight", {{D}, &b.channel_norm_weight}},
            {block + "channel_norm.bias", {{D}, &b.channel_norm_bias}},
            {block + "channel_mixing_layer.0.weight",
             {{F, D}, &b.mlp_in_weight}},
            {block + "channel_mixing_layer.0.bias", {{F}, &b.mlp_in_bias}},
            {block + "channel_mixing_layer.2.weight",
             {{D, F}, &b.mlp_out_weight}},
            {block + "channel_mixing_layer.2.bias", {{D}, &b.mlp_out_bias}},
            {block + "token_norm.weight", {{D}, &b.token_norm_weight}},
            {block + "token_norm.bias", {{D}, &b.token_norm_bias}},
            {mix + "out_proj.weight", {{D, D}, &b.out_weight}},
            {mix + "out_proj.bias", {{D}, &b.out_bias}},
        };
    for (int k = 0; k < H; ++k) {
      const std::string proj = absl::StrCat(mix, "proj_head.", k, ".");
      const std::string head = absl::StrCat(mix, "mixer_heads.", k, ".");
      tensors.push_back({proj + "weight", {{e, D}, &b.proj_weight}});
      tensors.push_back({proj + "bias", {{e}, &b.proj_bias}});
      tensors.push_back({head + "weight", {{1, N}, &b.mixer_weight}});
      tensors.push_back({head + "bias", {{N}, &b.mixer_bias}});
      if (config->decay) {
        tensors.push_back({head + "decay_value", {{1}, &b.decay_value}});
      }
    }
    for (auto& [name, shape_and_out] : tensors) {
      absl::Status s = append(name, shape_and_out.first, *shape_and_out.second);
      if (!s.ok()) return s;
    }
  }
  if (absl::Status s = checkpoint.CheckAllLoaded(); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<SrmModel>> model = SrmModel::Create(
      *config, std::move(w), checkpoint.WeightsDType(), precision);
  if (!model.ok()) return model.status();
  return std::unique_ptr<Model>(std::move(*model));
}

}  // namespace slabserve
