// The slab pool: every sequence's state lives in one row ("slot") of a set of
// preallocated slabs, one slab per layer and state kind. A sequence owns one
// slot index across all slabs; allocation and release are O(1).
//
// State that grows with the sequence (a full-attention layer's keys and
// values) lives in fixed-size blocks of `block_tokens` tokens from one shared
// block pool: each slot has a block table, takes blocks as it grows and
// returns them when released. Blocks are reference counted, so forks and
// cached prefixes share them; a write to a shared block copies it first.
#ifndef SLABSERVE_ENGINE_STATE_STATE_POOL_H_
#define SLABSERVE_ENGINE_STATE_STATE_POOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace slabserve {

// One slab: `bytes_per_slot` bytes for every slot (a multiple of 4).
struct StateSlabSpec {
  std::string name;  // e.g. "layer2.kv_ring"; for errors and reports
  size_t bytes_per_slot = 0;
};

// Per-token state of one kind: `bytes_per_token` bytes (a multiple of 4) for
// every token a sequence has consumed.
struct TokenStateSpec {
  std::string name;  // e.g. "layer0.kv"; for errors and reports
  size_t bytes_per_token = 0;
};

struct TokenStateLayout {
  std::vector<TokenStateSpec> kinds;  // empty: constant-size state only
  int block_tokens = 16;              // tokens per block
};

class StatePool;

// References to blocks held outside any slot (a snapshot for the prefix
// cache); returns them when destroyed. The pool must outlive it.
class SharedBlocks {
 public:
  SharedBlocks() = default;
  SharedBlocks(StatePool* pool, std::vector<int32_t> blocks)
      : pool_(pool), blocks_(std::move(blocks)) {}
  SharedBlocks(SharedBlocks&& other) noexcept { *this = std::move(other); }
  SharedBlocks& operator=(SharedBlocks&& other) noexcept;
  SharedBlocks(const SharedBlocks&) = delete;
  SharedBlocks& operator=(const SharedBlocks&) = delete;
  ~SharedBlocks() { Reset(); }

  const std::vector<int32_t>& blocks() const { return blocks_; }
  void Reset();

 private:
  StatePool* pool_ = nullptr;
  std::vector<int32_t> blocks_;
};

// A copy of one slot: every slab row plus the position, and its per-token
// state either copied (`token_bytes`, Save: the blocks can be freed, as
// when a sequence is swapped out) or shared (`shared`, Share: no copy).
struct StateSnapshot {
  int32_t position = 0;
  std::vector<char> bytes;
  std::vector<char> token_bytes;  // whole blocks, in block-table order
  SharedBlocks shared;
};

// A full copy of several slots (the forked completions of one sequence, as
// when they are swapped out together): the blocks they share are copied
// once and shared again when restored, so a copy of an n-way fork costs its
// common prefix once.
struct SlotGroupCopy {
  std::vector<int32_t> positions;  // by slot
  std::vector<char> bytes;         // every slot's slab rows, slot after slot
  // By slot, in block-table order: indices of `token_bytes`' blocks.
  std::vector<std::vector<int32_t>> tables;
  std::vector<char> token_bytes;  // the distinct blocks' contents
  int blocks = 0;                 // distinct blocks
};

class StatePool {
 public:
  // As many slots as `budget_bytes` holds (slab rows plus the position), or
  // an error naming the budget when not even one fits.
  // With per-token state, the budget is split so that every slot could
  // hold at least one block: capacity = budget / (slot + block bytes), the
  // rest in blocks.
  static absl::StatusOr<std::unique_ptr<StatePool>> CreateWithBudget(
      std::vector<StateSlabSpec> layout, size_t budget_bytes,
      TokenStateLayout tokens = {});
  // `blocks`: size of the block pool (used only with per-token state).
  static absl::StatusOr<std::unique_ptr<StatePool>> CreateWithCapacity(
      std::vector<StateSlabSpec> layout, int capacity,
      TokenStateLayout tokens = {}, int blocks = 0);

  ~StatePool();
  StatePool(const StatePool&) = delete;
  StatePool& operator=(const StatePool&) = delete;

  // A zeroed slot at position 0, or -1 when the pool is full.
  int Allocate();
  // Returns the slot to the free list with its blocks; it must be
  // allocated.
  void Release(int slot);
  bool IsAllocated(int slot) const;

  int capacity() const { return capacity_; }
  int used() const { return used_; }
  int free_slots() const { return capacity_ - used_; }
  // State bytes one sequence costs (every slab row plus the position).
  size_t bytes_per_slot() const { return bytes_per_slot_; }
  // Bytes reserved for all slots (pages are committed when first touched).
  size_t bytes_reserved() const {
    return bytes_per_slot_ * capacity_ + bytes_per_block_ * block_capacity_;
  }
  size_t bytes_in_use() const {
    return bytes_per_slot_ * used_ + bytes_per_block_ * blocks_in_use();
  }
  const std::vector<StateSlabSpec>& layout() const { return layout_; }
  const TokenStateLayout& token_layout() const { return token_layout_; }

  // Per-token state; all zero without it.
  bool has_token_state() const { return !token_layout_.kinds.empty(); }
  int block_tokens() const { return token_layout_.block_tokens; }
  int block_capacity() const { return block_capacity_; }
  int free_blocks() const { return static_cast<int>(free_blocks_.size()); }
  int blocks_in_use() const { return block_capacity_ - free_blocks(); }
  size_t bytes_per_block() const { return bytes_per_block_; }
  size_t bytes_per_token() const { return bytes_per_token_; }
  // Blocks that hold `tokens` tokens.
  int BlocksFor(int64_t tokens) const;
  // Blocks the slot's table holds (shared ones included).
  int BlocksHeld(int slot) const {
    return static_cast<int>(block_tables_[slot].size());
  }
  // Free blocks that ReserveTokens(slot, end_position) would take: new ones
  // past the table, and copies of shared blocks it would write into.
  int BlocksToGrow(int slot, int64_t end_position) const;
  // Makes positions [position(slot), end_position) of the slot writable:
  // takes blocks past the table and copies shared blocks in that range.
  // All or nothing: RESOURCE_EXHAUSTED (naming the counts) when too few
  // blocks are free.
  absl::Status ReserveTokens(int slot, int64_t end_position);

  // The per-token state of kind `kind` at `position` of `slot`; the position
  // must be covered by the slot's table (reserved before writing).
  template <typename T>
  T* TokenRow(int kind, int slot, int64_t position) {
    return reinterpret_cast<T*>(TokenAddress(kind, slot, position));
  }
  template <typename T>
  const T* TokenRow(int kind, int slot, int64_t position) const {
    return reinterpret_cast<const T*>(
        const_cast<StatePool*>(this)->TokenAddress(kind, slot, position));
  }

  // Row `slot` of slab `slab`, typed; rows are contiguous within a slab, so
  // a batch of slots is a strided view of one array.
  template <typename T>
  T* Row(int slab, int slot) {
    return reinterpret_cast<T*>(slabs_[slab] +
                                layout_[slab].bytes_per_slot * slot);
  }
  template <typename T>
  const T* Row(int slab, int slot) const {
    return reinterpret_cast<const T*>(slabs_[slab] +
                                      layout_[slab].bytes_per_slot * slot);
  }

  // Tokens the slot's sequence has consumed (the next token's position).
  int32_t position(int slot) const { return positions_[slot]; }
  void set_position(int slot, int32_t position) { positions_[slot] = position; }

  // Gives the pages that hold only free slots' rows back to the operating
  // system (they read as zeros when touched again, as a fresh slot must be
  // anyway). Allocated slots are untouched. Returns the bytes released.
  size_t ReleaseUnusedMemory();

  // A full copy (slab rows and the blocks' contents).
  StateSnapshot Save(int slot) const;
  // Slab rows copied, blocks shared by reference (no per-token copy).
  StateSnapshot Share(int slot);
  // Makes an allocated slot the snapshot's state; its old blocks are
  // returned. A copied snapshot takes fresh blocks: RESOURCE_EXHAUSTED, with
  // the slot unchanged, when too few are free. A shared one takes none.
  absl::Status Restore(int slot, const StateSnapshot& snapshot);
  // A full copy of `slots`, shared blocks once.
  SlotGroupCopy SaveGroup(const std::vector<int>& slots) const;
  // Makes allocated slots, one for each saved one and in the same order,
  // the copy's state; their old blocks are returned. All or nothing:
  // RESOURCE_EXHAUSTED, with the slots unchanged, when too few blocks are
  // free.
  absl::Status RestoreGroup(const std::vector<int>& slots,
                            const SlotGroupCopy& copy);
  // Makes `to` an exact copy of `from` (fork); blocks are shared.
  void Copy(int from, int to);

 private:
  friend class SharedBlocks;

  StatePool(std::vector<StateSlabSpec> layout, int capacity,
            TokenStateLayout tokens, int blocks);
  absl::Status MapMemory();
  void Zero(int slot);
  // Every slab row of `slot` to or from consecutive bytes; returns the end.
  char* CopyRowsOut(int slot, char* out) const;
  const char* CopyRowsIn(const char* in, int slot);
  char* TokenAddress(int kind, int slot, int64_t position);
  char* Block(int32_t block) { return blocks_ + bytes_per_block_ * block; }
  // A free block with one reference, or -1.
  int32_t TakeBlock();
  void Ref(int32_t block) { ++block_refs_[block]; }
  void Unref(int32_t block);
  void ReleaseBlocks(int slot);
  // Free blocks plus those that releasing `slots`' tables would free.
  int BlocksFreeAfterReleasing(const std::vector<int>& slots) const;
  size_t ReleaseUnusedBlocks();

  std::vector<StateSlabSpec> layout_;
  int capacity_;
  size_t bytes_per_slot_;
  std::vector<char*> slabs_;
  std::vector<size_t> slab_bytes_;
  std::vector<int32_t> positions_;
  std::vector<int> free_list_;  // stack of free slot indices
  std::vector<bool> allocated_;
  int used_ = 0;

  TokenStateLayout token_layout_;
  size_t bytes_per_token_ = 0;
  size_t bytes_per_block_ = 0;
  std::vector<size_t> kind_offsets_;  // within a block
  int block_capacity_ = 0;
  char* blocks_ = nullptr;
  std::vector<int32_t> block_refs_;
  std::vector<int32_t> free_blocks_;                // stack
  std::vector<std::vector<int32_t>> block_tables_;  // by slot
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_STATE_STATE_POOL_H_
