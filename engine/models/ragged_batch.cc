#include "engine/models/ragged_batch.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/norm_act.h"
#include "kernels/cpu/ops.h"

namespace slabserve {

namespace {

// Row `r` of n = norm(row x (+ delta)), then prepared for `next`.
template <typename Norm>
void AddThenNormRow(float* x, const float* delta, int width, const Norm& norm,
                    int64_t r, float* n, const NextProduct& next) {
  if (delta != nullptr) {
    for (int i = 0; i < width; ++i) x[i] += delta[i];
  }
  float* n_row = n + r * width;
  norm(x, n_row);
  if (next.projection != nullptr) {
    next.projection->Prepare(static_cast<int>(r), n_row, *next.prepared);
  }
}

// Rows [0, rows) of n from x's rows at row_of(r).
template <typename Norm, typename RowOf>
void AddThenNormEach(float* x, const float* delta, int64_t rows, int width,
                     const Norm& norm, float* n, const NextProduct& next,
                     const RowOf& row_of) {
  if (next.projection != nullptr) {
    next.projection->Reserve(static_cast<int>(rows), *next.prepared);
  }
  ForEachItem(rows, 4 * width, [&](int64_t r) {
    const size_t row = static_cast<size_t>(row_of(r)) * width;
    AddThenNormRow(x + row, delta == nullptr ? nullptr : delta + row, width,
                   norm, r, n, next);
  });
}

// n_row = RmsNorm(row) ⊙ scale, for AddThenNormEach.
auto RmsRow(int width, const float* scale, float eps) {
  return [=](const float* in, float* out) {
    cpu::RmsNorm(in, 1, width, scale, eps, out);
  };
}

}  // namespace

void AddThenNorm(float* x, const float* delta, int64_t rows, int width,
                 const float* scale, float eps, float* n, NextProduct next) {
  AddThenNormEach(x, delta, rows, width, RmsRow(width, scale, eps), n, next,
                  [](int64_t r) { return r; });
}

void AddThenNormRows(float* x, const float* delta, const std::vector<int>& rows,
                     int width, const float* scale, float eps, float* n,
                     NextProduct next) {
  AddThenNormEach(x, delta, static_cast<int64_t>(rows.size()), width,
                  RmsRow(width, scale, eps), n, next,
                  [&rows](int64_t r) { return rows[r]; });
}

void AddThenLayerNorm(float* x, const float* delta, int64_t rows, int width,
                      const float* weight, const float* bias, float eps,
                      float* n, NextProduct next) {
  auto layer_norm = [&](const float* in, float* out) {
    cpu::LayerNorm(in, 1, width, weight, bias, eps, out);
  };
  AddThenNormEach(x, delta, rows, width, layer_norm, n, next,
                  [](int64_t r) { return r; });
}

absl::Status CheckPoolLayout(const StatePool& pool,
                             const std::vector<StateSlabSpec>& layout) {
  bool same = pool.layout().size() == layout.size();
  for (size_t i = 0; same && i < layout.size(); ++i) {
    same = pool.layout()[i].bytes_per_slot == layout[i].bytes_per_slot;
  }
  if (!same) {
    return absl::FailedPreconditionError(
        "state pool was not created with this model's StateLayout()");
  }
  return absl::OkStatus();
}

absl::Status CheckPoolLayout(const StatePool& pool,
                             const std::vector<StateSlabSpec>& layout,
                             const TokenStateLayout& tokens) {
  if (absl::Status s = CheckPoolLayout(pool, layout); !s.ok()) return s;
  const TokenStateLayout& have = pool.token_layout();
  bool same =
      have.kinds.size() == tokens.kinds.size() &&
      (tokens.kinds.empty() || have.block_tokens == tokens.block_tokens);
  for (size_t i = 0; same && i < tokens.kinds.size(); ++i) {
    same = have.kinds[i].bytes_per_token == tokens.kinds[i].bytes_per_token;
  }
  if (!same) {
    return absl::FailedPreconditionError(
        "state pool was not created with this model's TokenLayout()");
  }
  return absl::OkStatus();
}

absl::Status RaggedBatch::Validate(absl::Span<const SequenceChunk> batch,
                                   const StatePool& pool, const ModelInfo& info,
                                   const float* logits) {
  const int64_t max_positions = info.max_positions > 0
                                    ? info.max_positions
                                    : std::numeric_limits<int32_t>::max();
  if (slot_seen_.size() < static_cast<size_t>(pool.capacity())) {
    slot_seen_.resize(pool.capacity(), 0);
  }
  for (size_t b = 0; b < batch.size(); ++b) {
    const SequenceChunk& chunk = batch[b];
    // The message is built only on error: valid batches allocate nothing.
    auto error = [&](auto&&... parts) {
      return absl::InvalidArgumentError(
          absl::StrCat(info.architecture, ": chunk ", b, " (slot ", chunk.slot,
                       "): ", parts...));
    };
    if (chunk.slot < 0 || chunk.slot >= pool.capacity()) {
      return error("slot outside [0, ", pool.capacity(), ")");
    }
    if (!pool.IsAllocated(chunk.slot)) return error("slot is not allocated");
    if (slot_seen_[chunk.slot]) return error("slot appears twice in the batch");
    slot_seen_[chunk.slot] = 1;
    if (chunk.tokens.empty()) return error("no tokens");
    for (size_t j = 0; j < chunk.tokens.size(); ++j) {
      const int32_t token = chunk.tokens[j];
      if (token < 0 || token >= info.vocab_size) {
        return error("token id ", token, " at index ", j,
                     " is outside the vocabulary [0, ", info.vocab_size, ")");
      }
    }
    const int64_t position = pool.position(chunk.slot);
    if (position + static_cast<int64_t>(chunk.tokens.size()) > max_positions) {
      return error("at position ", position, ", ", chunk.tokens.size(),
                   " more tokens would pass the model's ", max_positions,
                   " positions");
    }
    if (chunk.want_logits && logits == nullptr) {
      return error("wants logits but no logits buffer was given");
    }
  }
  return absl::OkStatus();
}

absl::Status RaggedBatch::Build(absl::Span<const SequenceChunk> batch,
                                const StatePool& pool, const ModelInfo& info,
                                const float* logits) {
  const absl::Status status = Validate(batch, pool, info, logits);
  // Clears the marks of every slot Validate may have set.
  for (const SequenceChunk& chunk : batch) {
    if (chunk.slot >= 0 && chunk.slot < static_cast<int>(slot_seen_.size())) {
      slot_seen_[chunk.slot] = 0;
    }
  }
  begin_.clear();
  slot_.clear();
  start_.clear();
  token_chunk_.clear();
  token_position_.clear();
  token_id_.clear();
  head_rows_.clear();
  if (!status.ok()) return status;
  for (size_t s = 0; s < batch.size(); ++s) {
    const SequenceChunk& chunk = batch[s];
    const int start = pool.position(chunk.slot);
    begin_.push_back(tokens());
    slot_.push_back(chunk.slot);
    start_.push_back(start);
    for (size_t j = 0; j < chunk.tokens.size(); ++j) {
      token_chunk_.push_back(static_cast<int>(s));
      token_position_.push_back(start + static_cast<int>(j));
      token_id_.push_back(chunk.tokens[j]);
    }
    if (chunk.want_logits) head_rows_.push_back(tokens() - 1);
  }
  begin_.push_back(tokens());
  return absl::OkStatus();
}

absl::Status RaggedBatch::ReserveTokens(StatePool& pool) const {
  if (!pool.has_token_state()) return absl::OkStatus();
  int64_t needed = 0;
  for (int s = 0; s < chunks(); ++s) {
    const int blocks = pool.BlocksToGrow(slot_[s], start_[s] + length(s));
    if (blocks > pool.free_blocks()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "chunk ", s, " (slot ", slot_[s], ") needs ", blocks,
          " state blocks to reach position ", start_[s] + length(s), "; ",
          pool.free_blocks(), " of ", pool.block_capacity(), " are free"));
    }
    needed += blocks;
  }
  if (needed > pool.free_blocks()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the batch needs ", needed, " state blocks; ", pool.free_blocks(),
        " of ", pool.block_capacity(), " are free"));
  }
  for (int s = 0; s < chunks(); ++s) {
    absl::Status status = pool.ReserveTokens(slot_[s], start_[s] + length(s));
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

void RaggedBatch::AdvancePositions(StatePool& pool) const {
  for (int s = 0; s < chunks(); ++s) {
    pool.set_position(slot_[s], start_[s] + length(s));
  }
}

}  // namespace slabserve
