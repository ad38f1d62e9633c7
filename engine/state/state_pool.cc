#include "engine/state/state_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace slabserve {
namespace {

size_t RowBytes(const std::vector<StateSlabSpec>& layout) {
  size_t total = sizeof(int32_t);  // the position
  for (const StateSlabSpec& spec : layout) total += spec.bytes_per_slot;
  return total;
}

absl::Status CheckLayout(const std::vector<StateSlabSpec>& layout) {
  for (const StateSlabSpec& spec : layout) {
    if (spec.bytes_per_slot == 0 || spec.bytes_per_slot % 4 != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("state slab '", spec.name, "' has ", spec.bytes_per_slot,
                       " bytes per slot; need a positive multiple of 4"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<StatePool>> StatePool::CreateWithBudget(
    std::vector<StateSlabSpec> layout, size_t budget_bytes) {
  if (absl::Status s = CheckLayout(layout); !s.ok()) return s;
  size_t per_slot = RowBytes(layout);
  size_t capacity = budget_bytes / per_slot;
  if (capacity == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "state memory budget of ", budget_bytes,
        " bytes holds no sequence (one needs ", per_slot, " bytes)"));
  }
  if (capacity > (1u << 30)) capacity = 1u << 30;
  return CreateWithCapacity(std::move(layout), static_cast<int>(capacity));
}

absl::StatusOr<std::unique_ptr<StatePool>> StatePool::CreateWithCapacity(
    std::vector<StateSlabSpec> layout, int capacity) {
  if (absl::Status s = CheckLayout(layout); !s.ok()) return s;
  if (capacity <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("state pool capacity must be positive, got ", capacity));
  }
  std::unique_ptr<StatePool> pool(new StatePool(std::move(layout), capacity));
  for (size_t i = 0; i < pool->layout_.size(); ++i) {
    size_t bytes = pool->layout_[i].bytes_per_slot * capacity;
    // Anonymous pages: zero, and committed only when a slot first uses them.
    void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot reserve ", bytes, " bytes for state slab '",
                       pool->layout_[i].name, "'"));
    }
    pool->slabs_[i] = static_cast<char*>(memory);
    pool->slab_bytes_[i] = bytes;
  }
  return pool;
}

StatePool::StatePool(std::vector<StateSlabSpec> layout, int capacity)
    : layout_(std::move(layout)),
      capacity_(capacity),
      bytes_per_slot_(RowBytes(layout_)),
      slabs_(layout_.size(), nullptr),
      slab_bytes_(layout_.size(), 0),
      positions_(capacity, 0),
      allocated_(capacity, false) {
  free_list_.reserve(capacity);
  // Lowest slot on top of the stack: slots are handed out in order.
  for (int slot = capacity - 1; slot >= 0; --slot) free_list_.push_back(slot);
}

StatePool::~StatePool() {
  for (size_t i = 0; i < slabs_.size(); ++i) {
    if (slabs_[i] != nullptr) munmap(slabs_[i], slab_bytes_[i]);
  }
}

int StatePool::Allocate() {
  if (free_list_.empty()) return -1;
  int slot = free_list_.back();
  free_list_.pop_back();
  allocated_[slot] = true;
  ++used_;
  Zero(slot);
  return slot;
}

void StatePool::Release(int slot) {
  if (slot < 0 || slot >= capacity_ || !allocated_[slot]) return;
  allocated_[slot] = false;
  --used_;
  free_list_.push_back(slot);
}

size_t StatePool::ReleaseUnusedMemory() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t released = 0;
  for (size_t i = 0; i < layout_.size(); ++i) {
    const size_t row = layout_[i].bytes_per_slot;
    // Each maximal run of free slots [first, last), page-aligned inward.
    for (int first = 0; first < capacity_;) {
      if (allocated_[first]) {
        ++first;
        continue;
      }
      int last = first;
      while (last < capacity_ && !allocated_[last]) ++last;
      const uintptr_t begin =
          reinterpret_cast<uintptr_t>(slabs_[i]) + row * first + page - 1;
      const uintptr_t end = reinterpret_cast<uintptr_t>(slabs_[i]) + row * last;
      const uintptr_t aligned_begin = begin / page * page;
      const uintptr_t aligned_end = end / page * page;
      if (aligned_end > aligned_begin &&
          madvise(reinterpret_cast<void*>(aligned_begin),
                  aligned_end - aligned_begin, MADV_DONTNEED) == 0) {
        released += aligned_end - aligned_begin;
      }
      first = last;
    }
  }
  return released;
}

bool StatePool::IsAllocated(int slot) const {
  return slot >= 0 && slot < capacity_ && allocated_[slot];
}

void StatePool::Zero(int slot) {
  for (size_t i = 0; i < layout_.size(); ++i) {
    std::memset(Row<char>(i, slot), 0, layout_[i].bytes_per_slot);
  }
  positions_[slot] = 0;
}

StateSnapshot StatePool::Save(int slot) const {
  StateSnapshot snapshot;
  snapshot.position = positions_[slot];
  snapshot.bytes.resize(bytes_per_slot_ - sizeof(int32_t));
  char* out = snapshot.bytes.data();
  for (size_t i = 0; i < layout_.size(); ++i) {
    std::memcpy(out, Row<char>(i, slot), layout_[i].bytes_per_slot);
    out += layout_[i].bytes_per_slot;
  }
  return snapshot;
}

void StatePool::Restore(int slot, const StateSnapshot& snapshot) {
  const char* in = snapshot.bytes.data();
  for (size_t i = 0; i < layout_.size(); ++i) {
    std::memcpy(Row<char>(i, slot), in, layout_[i].bytes_per_slot);
    in += layout_[i].bytes_per_slot;
  }
  positions_[slot] = snapshot.position;
}

void StatePool::Copy(int from, int to) {
  if (from == to) return;
  for (size_t i = 0; i < layout_.size(); ++i) {
    std::memcpy(Row<char>(i, to), Row<char>(i, from),
                layout_[i].bytes_per_slot);
  }
  positions_[to] = positions_[from];
}

}  // namespace slabserve
