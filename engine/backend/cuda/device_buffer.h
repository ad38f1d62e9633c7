// Device memory owned by RAII (cudaMalloc, never managed memory) and CUDA
// errors as absl::Status (UNAVAILABLE: the device, not the request, failed).
#ifndef SLABSERVE_ENGINE_BACKEND_CUDA_DEVICE_BUFFER_H_
#define SLABSERVE_ENGINE_BACKEND_CUDA_DEVICE_BUFFER_H_

#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace slabserve::cuda {

inline absl::Status CudaStatus(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("CUDA error in ", what, ": ",
                                             cudaGetErrorName(error), " (",
                                             cudaGetErrorString(error), ")"));
}

#define SLAB_RETURN_IF_ERROR(expr)     \
  do {                                 \
    absl::Status status_ = (expr);     \
    if (!status_.ok()) return status_; \
  } while (0)

// Checks a CUDA runtime call or kernel launch, naming the expression.
#define SLAB_CUDA_RETURN_IF_ERROR(expr) \
  SLAB_RETURN_IF_ERROR(::slabserve::cuda::CudaStatus((expr), #expr))

// Reallocations of device buffers that already held memory, process-wide.
// A CUDA graph bakes in the addresses it was captured with, so one captured
// before the count last changed may read freed memory and must be captured
// again. Grow-only buffers stop moving at their high-water mark.
inline std::atomic<uint64_t>& BufferMoves() {
  static std::atomic<uint64_t> moves{0};
  return moves;
}

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        bytes_(std::exchange(other.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(bytes_, other.bytes_);
    return *this;
  }

  // Holds at least `bytes` afterwards; contents are lost when it grows.
  absl::Status Reserve(size_t bytes) {
    if (bytes <= bytes_) return absl::OkStatus();
    if (data_ != nullptr) BufferMoves().fetch_add(1);
    cudaFree(data_);
    data_ = nullptr;
    bytes_ = 0;
    SLAB_CUDA_RETURN_IF_ERROR(cudaMalloc(&data_, bytes));
    bytes_ = bytes;
    return absl::OkStatus();
  }
  // A device copy of `bytes` host bytes (synchronous: load time only).
  absl::Status Upload(const void* host, size_t bytes) {
    SLAB_RETURN_IF_ERROR(Reserve(bytes));
    SLAB_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(data_, host, bytes, cudaMemcpyHostToDevice));
    return absl::OkStatus();
  }

  template <typename T = void>
  T* get() const {
    return static_cast<T*>(data_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Page-locked host memory, so copies from and to it are truly asynchronous.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { cudaFreeHost(data_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  // Holds at least `bytes` afterwards; contents are lost when it grows.
  absl::Status Reserve(size_t bytes) {
    if (bytes <= bytes_) return absl::OkStatus();
    cudaFreeHost(data_);
    data_ = nullptr;
    bytes_ = 0;
    SLAB_CUDA_RETURN_IF_ERROR(cudaMallocHost(&data_, bytes));
    bytes_ = bytes;
    return absl::OkStatus();
  }
  template <typename T = void>
  T* at(size_t offset_bytes) const {
    return reinterpret_cast<T*>(static_cast<char*>(data_) + offset_bytes);
  }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace slabserve::cuda

#endif  // SLABSERVE_ENGINE_BACKEND_CUDA_DEVICE_BUFFER_H_
