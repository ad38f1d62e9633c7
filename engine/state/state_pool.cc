#include "engine/state/state_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace slabserve {
namespace {

size_t RowBytes(const std::vector<StateSlabSpec>& layout) {
  size_t total = sizeof(int32_t);  // the position
  for (const StateSlabSpec& spec : layout) total += spec.bytes_per_slot;
  return total;
}

size_t TokenBytes(const TokenStateLayout& tokens) {
  size_t total = 0;
  for (const TokenStateSpec& spec : tokens.kinds) total += spec.bytes_per_token;
  return total;
}

absl::Status CheckLayout(const std::vector<StateSlabSpec>& layout,
                         const TokenStateLayout& tokens) {
  for (const StateSlabSpec& spec : layout) {
    if (spec.bytes_per_slot == 0 || spec.bytes_per_slot % 4 != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("state slab '", spec.name, "' has ", spec.bytes_per_slot,
                       " bytes per slot; need a positive multiple of 4"));
    }
  }
  for (const TokenStateSpec& spec : tokens.kinds) {
    if (spec.bytes_per_token == 0 || spec.bytes_per_token % 4 != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "per-token state '", spec.name, "' has ", spec.bytes_per_token,
          " bytes per token; need a positive multiple of 4"));
    }
  }
  if (!tokens.kinds.empty() && tokens.block_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block_tokens must be positive, got ", tokens.block_tokens));
  }
  return absl::OkStatus();
}

// Anonymous pages: zero, and committed only when first used.
char* MapZeroed(size_t bytes) {
  void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return memory == MAP_FAILED ? nullptr : static_cast<char*>(memory);
}

// Gives back the whole pages inside [begin, end); returns the bytes.
size_t DropPages(char* begin, char* end) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t first =
      (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
  const uintptr_t last = reinterpret_cast<uintptr_t>(end) / page * page;
  if (last <= first || madvise(reinterpret_cast<void*>(first), last - first,
                               MADV_DONTNEED) != 0) {
    return 0;
  }
  return last - first;
}

constexpr size_t kMaxCount = size_t{1} << 30;

}  // namespace

SharedBlocks& SharedBlocks::operator=(SharedBlocks&& other) noexcept {
  if (this != &other) {
    Reset();
    pool_ = other.pool_;
    blocks_ = std::move(other.blocks_);
    other.pool_ = nullptr;
    other.blocks_.clear();
  }
  return *this;
}

void SharedBlocks::Reset() {
  if (pool_ != nullptr) {
    for (int32_t block : blocks_) pool_->Unref(block);
  }
  pool_ = nullptr;
  blocks_.clear();
}

absl::StatusOr<std::unique_ptr<StatePool>> StatePool::CreateWithBudget(
    std::vector<StateSlabSpec> layout, size_t budget_bytes,
    TokenStateLayout tokens) {
  if (absl::Status s = CheckLayout(layout, tokens); !s.ok()) return s;
  const size_t per_slot = RowBytes(layout);
  const size_t per_block =
      tokens.kinds.empty() ? 0 : TokenBytes(tokens) * tokens.block_tokens;
  const size_t capacity =
      std::min(kMaxCount, budget_bytes / (per_slot + per_block));
  if (capacity == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("state memory budget of ", budget_bytes,
                     " bytes holds no sequence (one needs ",
                     per_slot + per_block, " bytes)"));
  }
  const size_t blocks =
      per_block == 0
          ? 0
          : std::min(kMaxCount,
                     (budget_bytes - capacity * per_slot) / per_block);
  return CreateWithCapacity(std::move(layout), static_cast<int>(capacity),
                            std::move(tokens), static_cast<int>(blocks));
}

absl::StatusOr<std::unique_ptr<StatePool>> StatePool::CreateWithCapacity(
    std::vector<StateSlabSpec> layout, int capacity, TokenStateLayout tokens,
    int blocks) {
  if (absl::Status s = CheckLayout(layout, tokens); !s.ok()) return s;
  if (capacity <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("state pool capacity must be positive, got ", capacity));
  }
  if (!tokens.kinds.empty() && blocks <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a model with per-token state needs blocks; got ", blocks));
  }
  if (tokens.kinds.empty()) blocks = 0;
  std::unique_ptr<StatePool> pool(
      new StatePool(std::move(layout), capacity, std::move(tokens), blocks));
  if (absl::Status s = pool->MapMemory(); !s.ok()) return s;
  return pool;
}

absl::Status StatePool::MapMemory() {
  for (size_t i = 0; i < layout_.size(); ++i) {
    const size_t bytes = layout_[i].bytes_per_slot * capacity_;
    slabs_[i] = MapZeroed(bytes);
    if (slabs_[i] == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot reserve ", bytes, " bytes for state slab '",
                       layout_[i].name, "'"));
    }
    slab_bytes_[i] = bytes;
  }
  if (block_capacity_ > 0) {
    blocks_ = MapZeroed(bytes_per_block_ * block_capacity_);
    if (blocks_ == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot reserve ", bytes_per_block_ * block_capacity_,
                       " bytes for ", block_capacity_, " state blocks"));
    }
  }
  return absl::OkStatus();
}

StatePool::StatePool(std::vector<StateSlabSpec> layout, int capacity,
                     TokenStateLayout tokens, int blocks)
    : layout_(std::move(layout)),
      capacity_(capacity),
      bytes_per_slot_(RowBytes(layout_)),
      slabs_(layout_.size(), nullptr),
      slab_bytes_(layout_.size(), 0),
      positions_(capacity, 0),
      allocated_(capacity, false),
      token_layout_(std::move(tokens)),
      bytes_per_token_(TokenBytes(token_layout_)),
      bytes_per_block_(bytes_per_token_ * token_layout_.block_tokens),
      block_capacity_(blocks),
      block_refs_(blocks, 0),
      block_tables_(capacity) {
  free_list_.reserve(capacity);
  // Lowest slot on top of the stack: slots are handed out in order.
  for (int slot = capacity - 1; slot >= 0; --slot) free_list_.push_back(slot);
  free_blocks_.reserve(blocks);
  for (int block = blocks - 1; block >= 0; --block) {
    free_blocks_.push_back(block);
  }
  size_t offset = 0;
  for (const TokenStateSpec& spec : token_layout_.kinds) {
    kind_offsets_.push_back(offset);
    offset += spec.bytes_per_token * token_layout_.block_tokens;
  }
}

StatePool::~StatePool() {
  for (size_t i = 0; i < slabs_.size(); ++i) {
    if (slabs_[i] != nullptr) munmap(slabs_[i], slab_bytes_[i]);
  }
  if (blocks_ != nullptr) munmap(blocks_, bytes_per_block_ * block_capacity_);
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
  ReleaseBlocks(slot);
  allocated_[slot] = false;
  --used_;
  free_list_.push_back(slot);
}

size_t StatePool::ReleaseUnusedMemory() {
  size_t released = 0;
  for (size_t i = 0; i < layout_.size(); ++i) {
    const size_t row = layout_[i].bytes_per_slot;
    // Each maximal run of free slots [first, last).
    for (int first = 0; first < capacity_;) {
      if (allocated_[first]) {
        ++first;
        continue;
      }
      int last = first;
      while (last < capacity_ && !allocated_[last]) ++last;
      released += DropPages(slabs_[i] + row * first, slabs_[i] + row * last);
      first = last;
    }
  }
  return released + ReleaseUnusedBlocks();
}

size_t StatePool::ReleaseUnusedBlocks() {
  size_t released = 0;
  for (int first = 0; first < block_capacity_;) {
    if (block_refs_[first] > 0) {
      ++first;
      continue;
    }
    int last = first;
    while (last < block_capacity_ && block_refs_[last] == 0) ++last;
    released += DropPages(Block(first), Block(last));
    first = last;
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
  ReleaseBlocks(slot);
}

int StatePool::BlocksFor(int64_t tokens) const {
  if (!has_token_state() || tokens <= 0) return 0;
  return static_cast<int>((tokens + block_tokens() - 1) / block_tokens());
}

int StatePool::BlocksToGrow(int slot, int64_t end_position) const {
  const std::vector<int32_t>& table = block_tables_[slot];
  const int64_t begin = positions_[slot];
  if (!has_token_state() || end_position <= begin) return 0;
  const int needed = BlocksFor(end_position);
  int blocks = std::max(0, needed - static_cast<int>(table.size()));
  const int first_written = static_cast<int>(begin / block_tokens());
  for (int b = first_written; b < std::min<int>(needed, table.size()); ++b) {
    if (block_refs_[table[b]] > 1) ++blocks;
  }
  return blocks;
}

absl::Status StatePool::ReserveTokens(int slot, int64_t end_position) {
  const int wanted = BlocksToGrow(slot, end_position);
  if (wanted == 0) return absl::OkStatus();
  if (wanted > free_blocks()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("slot ", slot, " needs ", wanted,
                     " state blocks to reach position ", end_position, "; ",
                     free_blocks(), " of ", block_capacity_, " are free"));
  }
  std::vector<int32_t>& table = block_tables_[slot];
  const int first_written = positions_[slot] / block_tokens();
  for (int b = first_written; b < static_cast<int>(table.size()); ++b) {
    if (block_refs_[table[b]] <= 1) continue;
    const int32_t copy = TakeBlock();  // copy on write
    std::memcpy(Block(copy), Block(table[b]), bytes_per_block_);
    Unref(table[b]);
    table[b] = copy;
  }
  while (static_cast<int>(table.size()) < BlocksFor(end_position)) {
    table.push_back(TakeBlock());
  }
  return absl::OkStatus();
}

char* StatePool::TokenAddress(int kind, int slot, int64_t position) {
  const int32_t block = block_tables_[slot][position / block_tokens()];
  return Block(block) + kind_offsets_[kind] +
         token_layout_.kinds[kind].bytes_per_token *
             (position % block_tokens());
}

int32_t StatePool::TakeBlock() {
  if (free_blocks_.empty()) return -1;
  const int32_t block = free_blocks_.back();
  free_blocks_.pop_back();
  block_refs_[block] = 1;
  return block;
}

void StatePool::Unref(int32_t block) {
  if (--block_refs_[block] == 0) free_blocks_.push_back(block);
}

void StatePool::ReleaseBlocks(int slot) {
  for (int32_t block : block_tables_[slot]) Unref(block);
  block_tables_[slot].clear();
}

char* StatePool::CopyRowsOut(int slot, char* out) const {
  for (size_t i = 0; i < layout_.size(); ++i) {
    std::memcpy(out, Row<char>(i, slot), layout_[i].bytes_per_slot);
    out += layout_[i].bytes_per_slot;
  }
  return out;
}

const char* StatePool::CopyRowsIn(const char* in, int slot) {
  for (size_t i = 0; i < layout_.size(); ++i) {
    std::memcpy(Row<char>(i, slot), in, layout_[i].bytes_per_slot);
    in += layout_[i].bytes_per_slot;
  }
  return in;
}

StateSnapshot StatePool::Save(int slot) const {
  StateSnapshot snapshot;
  snapshot.position = positions_[slot];
  snapshot.bytes.resize(bytes_per_slot_ - sizeof(int32_t));
  CopyRowsOut(slot, snapshot.bytes.data());
  const std::vector<int32_t>& table = block_tables_[slot];
  snapshot.token_bytes.resize(bytes_per_block_ * table.size());
  for (size_t b = 0; b < table.size(); ++b) {
    std::memcpy(&snapshot.token_bytes[bytes_per_block_ * b],
                blocks_ + bytes_per_block_ * table[b], bytes_per_block_);
  }
  return snapshot;
}

StateSnapshot StatePool::Share(int slot) {
  StateSnapshot snapshot;
  snapshot.position = positions_[slot];
  snapshot.bytes.resize(bytes_per_slot_ - sizeof(int32_t));
  CopyRowsOut(slot, snapshot.bytes.data());
  for (int32_t block : block_tables_[slot]) Ref(block);
  snapshot.shared = SharedBlocks(this, block_tables_[slot]);
  return snapshot;
}

absl::Status StatePool::Restore(int slot, const StateSnapshot& snapshot) {
  const int copied =
      bytes_per_block_ == 0
          ? 0
          : static_cast<int>(snapshot.token_bytes.size() / bytes_per_block_);
  // The slot's own blocks come back first, so count them as free.
  int returning = 0;
  for (int32_t block : block_tables_[slot])
    returning += block_refs_[block] == 1;
  if (copied > free_blocks() + returning) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "restoring slot ", slot, " needs ", copied, " state blocks; ",
        free_blocks() + returning, " of ", block_capacity_, " are free"));
  }
  for (int32_t block : snapshot.shared.blocks()) Ref(block);
  ReleaseBlocks(slot);
  std::vector<int32_t>& table = block_tables_[slot];
  table = snapshot.shared.blocks();
  for (int b = 0; b < copied; ++b) {
    table.push_back(TakeBlock());
    std::memcpy(Block(table.back()),
                &snapshot.token_bytes[bytes_per_block_ * b], bytes_per_block_);
  }
  CopyRowsIn(snapshot.bytes.data(), slot);
  positions_[slot] = snapshot.position;
  return absl::OkStatus();
}

SlotGroupCopy StatePool::SaveGroup(const std::vector<int>& slots) const {
  SlotGroupCopy copy;
  const size_t row_bytes = bytes_per_slot_ - sizeof(int32_t);
  copy.bytes.resize(row_bytes * slots.size());
  absl::flat_hash_map<int32_t, int32_t> index;  // pool block → copied
  char* out = copy.bytes.data();
  for (int slot : slots) {
    copy.positions.push_back(positions_[slot]);
    out = CopyRowsOut(slot, out);
    std::vector<int32_t>& table = copy.tables.emplace_back();
    for (int32_t block : block_tables_[slot]) {
      auto [it, fresh] = index.emplace(block, copy.blocks);
      if (fresh) {
        ++copy.blocks;
        const char* begin = blocks_ + bytes_per_block_ * block;
        copy.token_bytes.insert(copy.token_bytes.end(), begin,
                                begin + bytes_per_block_);
      }
      table.push_back(it->second);
    }
  }
  return copy;
}

int StatePool::BlocksFreeAfterReleasing(const std::vector<int>& slots) const {
  absl::flat_hash_map<int32_t, int32_t> dropped;  // block → references
  for (int slot : slots) {
    for (int32_t block : block_tables_[slot]) ++dropped[block];
  }
  int free = free_blocks();
  for (const auto& [block, references] : dropped) {
    free += block_refs_[block] == references;
  }
  return free;
}

absl::Status StatePool::RestoreGroup(const std::vector<int>& slots,
                                     const SlotGroupCopy& copy) {
  const int free = BlocksFreeAfterReleasing(slots);
  if (copy.blocks > free) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "restoring ", slots.size(), " slots needs ", copy.blocks,
        " state blocks; ", free, " of ", block_capacity_, " are free"));
  }
  for (int slot : slots) ReleaseBlocks(slot);
  std::vector<int32_t> taken(copy.blocks);
  for (int b = 0; b < copy.blocks; ++b) {
    taken[b] = TakeBlock();
    std::memcpy(Block(taken[b]), &copy.token_bytes[bytes_per_block_ * b],
                bytes_per_block_);
  }
  const char* in = copy.bytes.data();
  for (size_t k = 0; k < slots.size(); ++k) {
    const int slot = slots[k];
    in = CopyRowsIn(in, slot);
    positions_[slot] = copy.positions[k];
    for (int32_t b : copy.tables[k]) {
      Ref(taken[b]);
      block_tables_[slot].push_back(taken[b]);
    }
  }
  // Every taken block is in some table; drop the reference taking it gave.
  for (int32_t block : taken) Unref(block);
  return absl::OkStatus();
}

void StatePool::Copy(int from, int to) {
  if (from == to) return;
  for (size_t i = 0; i < layout_.size(); ++i) {
    std::memcpy(Row<char>(i, to), Row<char>(i, from),
                layout_[i].bytes_per_slot);
  }
  positions_[to] = positions_[from];
  for (int32_t block : block_tables_[from]) Ref(block);
  ReleaseBlocks(to);
  block_tables_[to] = block_tables_[from];
}

}  // namespace slabserve
