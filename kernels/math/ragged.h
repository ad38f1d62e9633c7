// Index arithmetic of a ragged batch on the state rows: where a conv input,
// a new conv-tail row or an attention key comes from (the chunk's own rows
// or the slot's saved state), and which keys a query sees. Shared by the
// CUDA kernels and the CPU tests that replay chunked sequences against
// their full history.
#ifndef SLABSERVE_KERNELS_MATH_RAGGED_H_
#define SLABSERVE_KERNELS_MATH_RAGGED_H_

#include "kernels/math/host_device.h"

namespace slabserve::math {

// A row of the chunk's own activations (in_chunk) or of the slot's state.
struct RowSource {
  bool in_chunk;
  int row;
};

// The conv input `back` tokens before chunk row j: a chunk row, or row
// K−1+(j−back) of the slot's tail ([K−1] rows, oldest first).
SLAB_HD RowSource ConvInputSource(int j, int back, int K) {
  const int r = j - back;
  RowSource source;
  source.in_chunk = r >= 0;
  source.row = r >= 0 ? r : K - 1 + r;
  return source;
}

// New tail row r (oldest first) after a chunk of `length` tokens: the input
// K−1−r tokens before the chunk's end, from the chunk when it reaches that
// far back, else from old tail row r + length.
SLAB_HD RowSource NewTailSource(int r, int length, int K) {
  const int back = K - 1 - r;  // 1: the chunk's last token
  RowSource source;
  source.in_chunk = back <= length;
  source.row = source.in_chunk ? length - back : r + length;
  return source;
}

// The first position a query at position t attends to (W keys including
// itself once t >= W−1).
SLAB_HD int FirstKeyPosition(int t, int window) {
  return t - window + 1 > 0 ? t - window + 1 : 0;
}

// Where the key (or value) of position `pos` sits for a chunk starting at
// position t0: chunk row pos − t0, or ring slot pos mod W.
SLAB_HD RowSource KeySource(int pos, int t0, int window) {
  RowSource source;
  source.in_chunk = pos >= t0;
  source.row = pos >= t0 ? pos - t0 : pos % window;
  return source;
}

// The first position of a chunk [t0, t0 + length) written to the ring: its
// last W positions.
SLAB_HD int FirstRingWrite(int t0, int length, int window) {
  const int first = t0 + length - window;
  return first > t0 ? first : t0;
}

}  // namespace slabserve::math

#endif  // SLABSERVE_KERNELS_MATH_RAGGED_H_
