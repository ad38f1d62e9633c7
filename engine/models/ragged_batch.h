// The ragged-batch plumbing every architecture shares: validating a batch
// before any state changes, flattening its chunks into per-token rows
// (chunk, slot, position, token id), choosing the rows that reach the LM
// head, advancing positions, reused buffers, and the grain policy for
// row-parallel loops.
#ifndef SLABSERVE_ENGINE_MODELS_RAGGED_BATCH_H_
#define SLABSERVE_ENGINE_MODELS_RAGGED_BATCH_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/models/model.h"
#include "engine/state/state_pool.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/projection.h"

namespace slabserve {

// Rough scalar operations worth a parallel task of their own; smaller loops
// stay on fewer threads, where waking workers would cost more than the work.
constexpr int64_t kTaskWork = int64_t{1} << 15;
// A transcendental function (tanh, exp) in those units.
constexpr int64_t kTranscendental = 20;

// Items per task for items of `work_per_item` operations each.
inline int64_t TaskGrain(int64_t work_per_item) {
  return std::max<int64_t>(1, kTaskWork / std::max<int64_t>(1, work_per_item));
}

// Runs fn(i) for i in [0, n) on the worker pool; each item costs about
// `work_per_item` scalar operations. Items are independent, so results do
// not depend on the thread count.
template <typename Fn>
void ForEachItem(int64_t n, int64_t work_per_item, const Fn& fn) {
  cpu::ParallelFor(n, TaskGrain(work_per_item),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t i = begin; i < end; ++i) fn(i);
                   });
}

// Grows `buffer` to at least `size` elements and never shrinks it: buffers
// reused across Forward calls reach the largest batch once, and steady-state
// steps neither allocate nor zero them.
template <typename T>
void GrowToAtLeast(std::vector<T>& buffer, size_t size) {
  if (buffer.size() < size) buffer.resize(size);
}

// A grow-only scratch buffer of at least `count` T for the calling thread
// (e.g. one worker task's attention scores): reused by every later call on
// that thread for the same T, so steady-state tasks allocate nothing.
template <typename T = float>
T* ThreadScratch(size_t count) {
  thread_local std::vector<T> buffer;
  GrowToAtLeast(buffer, count);
  return buffer.data();
}

// The projection that reads a norm's output, and where its input rows are
// prepared (cpu::Projection::Prepare) as the norm writes them.
struct NextProduct {
  const cpu::Projection* projection = nullptr;  // null: nothing prepared
  cpu::Bf16Rows* prepared = nullptr;
};

// The residual stream between blocks: x[r] += delta[r] (delta null: nothing
// added), then n[r] = RmsNorm(x[r]) ⊙ scale, one pass per row of `width`, on
// the worker pool, each row then prepared for `next`. A block's output is
// thus added while the next norm reads the row anyway.
void AddThenNorm(float* x, const float* delta, int64_t rows, int width,
                 const float* scale, float eps, float* n,
                 NextProduct next = {});
// The same for the rows that reach the LM head only: for r < rows.size(),
// x[rows[r]] += delta[rows[r]] (delta null: nothing added), then
// n[r] = RmsNorm(x[rows[r]]) ⊙ scale (n packed).
void AddThenNormRows(float* x, const float* delta, const std::vector<int>& rows,
                     int width, const float* scale, float eps, float* n,
                     NextProduct next = {});
// AddThenNorm with a LayerNorm (weight, bias) instead of the RMSNorm. n may
// be delta itself: each row is added before its norm is written.
void AddThenLayerNorm(float* x, const float* delta, int64_t rows, int width,
                      const float* weight, const float* bias, float eps,
                      float* n, NextProduct next = {});

// FailedPrecondition unless `pool` was created with `layout`.
absl::Status CheckPoolLayout(const StatePool& pool,
                             const std::vector<StateSlabSpec>& layout);

// FailedPrecondition unless `pool` was created with `layout` and the
// per-token `tokens` layout.
absl::Status CheckPoolLayout(const StatePool& pool,
                             const std::vector<StateSlabSpec>& layout,
                             const TokenStateLayout& tokens);

// A validated batch flattened into rows: chunk s owns rows
// [begin(s), end(s)), row i holds token(i) at absolute position(i) of
// slot(chunk(i)). Its buffers are reused by the next Build, so a steady
// stream of batches allocates nothing.
class RaggedBatch {
 public:
  // Checks `batch` against `info` (vocabulary, max_positions) and `pool`
  // (slot range, allocated, each slot once), every chunk non-empty, and a
  // logits buffer when a chunk wants logits; errors name the model, chunk,
  // slot and token. On success, flattens it; on error nothing is kept.
  absl::Status Build(absl::Span<const SequenceChunk> batch,
                     const StatePool& pool, const ModelInfo& info,
                     const float* logits);

  int tokens() const { return static_cast<int>(token_chunk_.size()); }
  int chunks() const { return static_cast<int>(slot_.size()); }
  int begin(int s) const { return begin_[s]; }
  int end(int s) const { return begin_[s + 1]; }
  int length(int s) const { return begin_[s + 1] - begin_[s]; }
  int slot(int s) const { return slot_[s]; }
  int start(int s) const { return start_[s]; }  // position of row begin(s)
  int chunk(int i) const { return token_chunk_[i]; }
  int position(int i) const { return token_position_[i]; }
  int32_t token(int i) const { return token_id_[i]; }
  // Rows whose logits are wanted (each the last of its chunk), in batch
  // order: logits row r belongs to row head_rows()[r].
  const std::vector<int>& head_rows() const { return head_rows_; }

  // Makes every chunk's new positions writable in the pool's per-token
  // state (blocks taken, shared blocks copied) before any state changes.
  // RESOURCE_EXHAUSTED, naming the chunk or the batch, with no block taken,
  // when the batch needs more blocks than are free; the need is counted per
  // chunk, so two forks of one block in a batch count a copy each. No-op
  // without per-token state.
  absl::Status ReserveTokens(StatePool& pool) const;

  // Moves every chunk's slot past its tokens.
  void AdvancePositions(StatePool& pool) const;

 private:
  absl::Status Validate(absl::Span<const SequenceChunk> batch,
                        const StatePool& pool, const ModelInfo& info,
                        const float* logits);

  std::vector<int> begin_, slot_, start_;
  std::vector<int> token_chunk_, token_position_, head_rows_;
  std::vector<int32_t> token_id_;
  std::vector<uint8_t> slot_seen_;  // by slot; all zero between calls
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_MODELS_RAGGED_BATCH_H_
