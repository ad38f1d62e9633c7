// The slab pool: every sequence's state lives in one row ("slot") of a set of
// preallocated slabs, one slab per layer and state kind. A sequence owns one
// slot index across all slabs; allocation and release are O(1).
#ifndef SLABSERVE_ENGINE_STATE_STATE_POOL_H_
#define SLABSERVE_ENGINE_STATE_STATE_POOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace slabserve {

// One slab: `bytes_per_slot` bytes for every slot (a multiple of 4).
struct StateSlabSpec {
  std::string name;  // e.g. "layer2.kv_ring"; for errors and reports
  size_t bytes_per_slot = 0;
};

// A host copy of one slot: every slab row plus the position.
struct StateSnapshot {
  int32_t position = 0;
  std::vector<char> bytes;
};

class StatePool {
 public:
  // As many slots as `budget_bytes` holds (slab rows plus the position), or
  // an error naming the budget when not even one fits.
  static absl::StatusOr<std::unique_ptr<StatePool>> CreateWithBudget(
      std::vector<StateSlabSpec> layout, size_t budget_bytes);
  static absl::StatusOr<std::unique_ptr<StatePool>> CreateWithCapacity(
      std::vector<StateSlabSpec> layout, int capacity);

  ~StatePool();
  StatePool(const StatePool&) = delete;
  StatePool& operator=(const StatePool&) = delete;

  // A zeroed slot at position 0, or -1 when the pool is full.
  int Allocate();
  // Returns the slot to the free list; it must be allocated.
  void Release(int slot);
  bool IsAllocated(int slot) const;

  int capacity() const { return capacity_; }
  int used() const { return used_; }
  int free_slots() const { return capacity_ - used_; }
  // State bytes one sequence costs (every slab row plus the position).
  size_t bytes_per_slot() const { return bytes_per_slot_; }
  // Bytes reserved for all slots (pages are committed when first touched).
  size_t bytes_reserved() const { return bytes_per_slot_ * capacity_; }
  size_t bytes_in_use() const { return bytes_per_slot_ * used_; }
  const std::vector<StateSlabSpec>& layout() const { return layout_; }

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

  StateSnapshot Save(int slot) const;
  void Restore(int slot, const StateSnapshot& snapshot);
  // Makes `to` an exact copy of `from` (fork).
  void Copy(int from, int to);

 private:
  StatePool(std::vector<StateSlabSpec> layout, int capacity);
  void Zero(int slot);

  std::vector<StateSlabSpec> layout_;
  int capacity_;
  size_t bytes_per_slot_;
  std::vector<char*> slabs_;
  std::vector<size_t> slab_bytes_;
  std::vector<int32_t> positions_;
  std::vector<int> free_list_;  // stack of free slot indices
  std::vector<bool> allocated_;
  int used_ = 0;
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_STATE_STATE_POOL_H_
