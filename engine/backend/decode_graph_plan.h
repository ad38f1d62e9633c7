// Host-side planning of the CUDA backend's decode graphs, kept free of CUDA
// so it is unit-tested on any machine: the batch-size buckets graphs are
// captured at, the bucket a decode step runs in, and the padded batch
// description a graph reads (real rows first, then padding rows that all
// point at a scratch slot no sequence is ever given, so they cannot touch a
// real sequence's state).
#ifndef SLABSERVE_ENGINE_BACKEND_DECODE_GRAPH_PLAN_H_
#define SLABSERVE_ENGINE_BACKEND_DECODE_GRAPH_PLAN_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "engine/backend/backend.h"
#include "engine/models/ragged_batch.h"

namespace slabserve {

// Powers of two below max_batch, then max_batch itself; none for
// max_batch <= 0 (graphs off).
std::vector<int> DecodeBuckets(int max_batch);

// The smallest bucket that holds `rows` rows (buckets ascending), or 0 when
// rows is 0 or more than the largest bucket.
int DecodeBucket(absl::Span<const int> buckets, int rows);

// True when every chunk feeds exactly one token (and there is at least one):
// the only steps that run as graphs. Prefill and mixed steps run eagerly.
bool IsDecodeStep(absl::Span<const PlannedChunk> chunks);

// Where each array of a batch description sits in one int array (the
// fields of cuda::DeviceBatch, then the rows that reach the LM head), in
// ints. The eager path and the graphs upload the same layout.
struct BatchIntsLayout {
  BatchIntsLayout(int tokens, int chunks, int heads);
  size_t token_chunk, token_position, token_id, chunk_begin, chunk_slot,
      chunk_start, head_rows, size;
};

// Fills `ints` (BatchIntsLayout(tokens, chunks, head rows).size ints) with
// `batch`: what an eager step uploads.
void FillBatchInts(const RaggedBatch& batch, int* ints);

// One decode row: the slot's next token at its position.
struct DecodeRow {
  int slot = -1;
  int position = 0;
  int32_t token = 0;
};

// Fills `ints` (BatchIntsLayout(bucket, bucket, bucket).size ints) with a
// decode batch of `bucket` rows: rows[i] is chunk and row i, and every row
// past rows.size() is padding: token 0 at position 0 of `scratch_slot`.
// Every row reaches the LM head, row i's logits in logits row i; padding
// rows' logits are never sampled. Needs rows.size() <= bucket.
void FillPaddedDecode(absl::Span<const DecodeRow> rows, int bucket,
                      int scratch_slot, int* ints);

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_BACKEND_DECODE_GRAPH_PLAN_H_
