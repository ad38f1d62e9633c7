// Gives freed heap memory back to the operating system every few seconds.
// glibc's allocator keeps what bursts of short-lived objects (thousands of
// streams, or a flood of streams reset as they open) leave behind in its
// arenas, so without this the process's RSS ratchets up with every burst
// and never comes down, though nothing is in use.
#ifndef SLABSERVE_SERVER_MEMORY_RELEASER_H_
#define SLABSERVE_SERVER_MEMORY_RELEASER_H_

#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace slabserve::server {

class MemoryReleaser {
 public:
  explicit MemoryReleaser(absl::Duration interval);
  ~MemoryReleaser();  // stops the thread
  MemoryReleaser(const MemoryReleaser&) = delete;
  MemoryReleaser& operator=(const MemoryReleaser&) = delete;

 private:
  void Loop();

  const absl::Duration interval_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_MEMORY_RELEASER_H_
