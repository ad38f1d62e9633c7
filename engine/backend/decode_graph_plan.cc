#include "engine/backend/decode_graph_plan.h"

#include <algorithm>

namespace slabserve {

std::vector<int> DecodeBuckets(int max_batch) {
  std::vector<int> buckets;
  for (int size = 1; size < max_batch; size *= 2) buckets.push_back(size);
  if (max_batch > 0) buckets.push_back(max_batch);
  return buckets;
}

int DecodeBucket(absl::Span<const int> buckets, int rows) {
  if (rows <= 0) return 0;
  const auto it = std::lower_bound(buckets.begin(), buckets.end(), rows);
  return it == buckets.end() ? 0 : *it;
}

bool IsDecodeStep(absl::Span<const PlannedChunk> chunks) {
  return !chunks.empty() &&
         std::all_of(chunks.begin(), chunks.end(), [](const PlannedChunk& c) {
           return c.tokens.size() == 1;
         });
}

BatchIntsLayout::BatchIntsLayout(int tokens, int chunks, int heads) {
  const size_t T = tokens, C = chunks;
  token_chunk = 0;
  token_position = T;
  token_id = 2 * T;
  chunk_begin = 3 * T;
  chunk_slot = chunk_begin + C + 1;
  chunk_start = chunk_slot + C;
  head_rows = chunk_start + C;
  size = head_rows + heads;
}

void FillBatchInts(const RaggedBatch& batch, int* ints) {
  const int T = batch.tokens(), C = batch.chunks();
  const std::vector<int>& heads = batch.head_rows();
  const BatchIntsLayout layout(T, C, static_cast<int>(heads.size()));
  for (int i = 0; i < T; ++i) {
    ints[layout.token_chunk + i] = batch.chunk(i);
    ints[layout.token_position + i] = batch.position(i);
    ints[layout.token_id + i] = batch.token(i);
  }
  for (int s = 0; s <= C; ++s) {
    ints[layout.chunk_begin + s] = s < C ? batch.begin(s) : T;
  }
  for (int s = 0; s < C; ++s) {
    ints[layout.chunk_slot + s] = batch.slot(s);
    ints[layout.chunk_start + s] = batch.start(s);
  }
  std::copy(heads.begin(), heads.end(), ints + layout.head_rows);
}

void FillPaddedDecode(absl::Span<const DecodeRow> rows, int bucket,
                      int scratch_slot, int* ints) {
  const BatchIntsLayout layout(bucket, bucket, bucket);
  const int real = static_cast<int>(rows.size());
  for (int i = 0; i < bucket; ++i) {
    const DecodeRow row = i < real ? rows[i] : DecodeRow{scratch_slot, 0, 0};
    ints[layout.token_chunk + i] = i;
    ints[layout.token_position + i] = row.position;
    ints[layout.token_id + i] = row.token;
    ints[layout.chunk_begin + i] = i;
    ints[layout.chunk_slot + i] = row.slot;
    ints[layout.chunk_start + i] = row.position;
    ints[layout.head_rows + i] = i;
  }
  ints[layout.chunk_begin + bucket] = bucket;
}

}  // namespace slabserve
