// Cache-line aligned arrays for packed weights: one step of a 16-wide panel
// of 32-bit values is exactly one 64-byte line.
#ifndef SLABSERVE_KERNELS_CPU_ALIGNED_ARRAY_H_
#define SLABSERVE_KERNELS_CPU_ALIGNED_ARRAY_H_

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace slabserve::cpu {

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

template <typename T>
using AlignedArray = std::unique_ptr<T[], AlignedFree>;

// `count` uninitialised elements, 64-byte aligned; throws std::bad_alloc
// when out of memory, as std::vector would.
template <typename T>
AlignedArray<T> AllocateAligned(size_t count) {
  const size_t bytes = (count * sizeof(T) + 63) / 64 * 64;
  AlignedArray<T> array(static_cast<T*>(std::aligned_alloc(64, bytes)));
  if (array == nullptr) throw std::bad_alloc();
  return array;
}

}  // namespace slabserve::cpu

#endif  // SLABSERVE_KERNELS_CPU_ALIGNED_ARRAY_H_
