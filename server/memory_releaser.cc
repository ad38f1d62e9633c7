#include "server/memory_releaser.h"

#include <malloc.h>

namespace slabserve::server {

MemoryReleaser::MemoryReleaser(absl::Duration interval)
    : interval_(interval), thread_([this] { Loop(); }) {}

MemoryReleaser::~MemoryReleaser() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void MemoryReleaser::Loop() {
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval_)) {
    mu_.Unlock();
    malloc_trim(0);  // every arena, not just the top of the main heap
    mu_.Lock();
  }
}

}  // namespace slabserve::server
