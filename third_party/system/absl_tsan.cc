// ThreadSanitizer annotations for Debian's Abseil synchronization library.
//
// Debian builds libabsl_synchronization without -fsanitize=thread, so its
// own TSan annotations are compiled out: the happens-before edges of
// absl::Mutex, absl::CondVar and absl::Notification (futexes and atomics in
// uninstrumented code) are invisible, and every access guarded by an
// absl::Mutex would look like a race. This library, linked into every
// binary of the tsan configuration only, interposes the out-of-line entry
// points of those classes: each definition here wraps the library's own
// (found with dlsym(RTLD_NEXT)) in the annotations of TSan's mutex API
// (sanitizer/tsan_interface.h), the ones Abseil itself uses when it is built
// with TSan. Calls from gRPC's copies of Abseil's inline code go through the
// same entry points, so gRPC's locks are seen too.
//
// Accesses inside a mutex operation are ignored by TSan; that covers the
// Condition callbacks Abseil evaluates while locking, waiting or unlocking
// (possibly on another thread), which this wrapping cannot annotate one by
// one. Notification::HasBeenNotified() is inline and reads an atomic flag
// that an uninstrumented Notify() sets, so it gives no happens-before edge
// under TSan; WaitForNotification*() do.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

// The library's definition of the symbol `name`, which this file overrides.
template <typename Fn>
Fn Next(const char* name) {
  void* fn = dlsym(RTLD_NEXT, name);
  if (fn == nullptr) {
    std::fprintf(stderr, "absl_tsan: %s not found: %s\n", name, dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

// Mangled names in Debian's Abseil (inline namespace debian3).
#define SLABSERVE_ABSL_ENTRY(ns, rest) "_ZN4absl7debian3" ns rest
#define SLABSERVE_ABSL_CONST_ENTRY(ns, rest) "_ZNK4absl7debian3" ns rest

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

// Interposed calls in progress on this thread. Abseil's entry points call
// one another through the same interposable symbols (AwaitWithTimeout calls
// AwaitWithDeadline, Notification calls Mutex::LockWhen): only the outermost
// call is annotated.
thread_local int depth = 0;

// Runs `op` (returning a value) as a nested call.
template <typename Op>
auto Nested(Op op) {
  ++depth;
  auto result = op();
  --depth;
  return result;
}

// Annotates an operation that releases `mu` (held with `flags`), waits, and
// holds it again when `wait` returns.
template <typename Wait>
auto Rewait(Mutex* mu, unsigned flags, Wait wait) {
  if (depth > 0) return wait();
  __tsan_mutex_pre_unlock(mu, flags);
  auto result = Nested(wait);
  __tsan_mutex_post_unlock(mu, flags);
  __tsan_mutex_pre_lock(mu, flags);
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

// Annotates an operation that acquires `mu` with `flags`.
template <typename Acquire>
auto Acquiring(Mutex* mu, unsigned flags, Acquire acquire) {
  if (depth > 0) return acquire();
  __tsan_mutex_pre_lock(mu, flags);
  auto result = Nested(acquire);
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

bool TryAcquiring(Mutex* mu, unsigned flags, bool (*try_lock)(Mutex*)) {
  if (depth > 0) return try_lock(mu);
  flags |= __tsan_mutex_try_lock;
  __tsan_mutex_pre_lock(mu, flags);
  const bool locked = Nested([&] { return try_lock(mu); });
  __tsan_mutex_post_lock(
      mu, locked ? flags : flags | __tsan_mutex_try_lock_failed, 0);
  return locked;
}

void Releasing(Mutex* mu, unsigned flags, void (*unlock)(Mutex*)) {
  if (depth > 0) return unlock(mu);
  __tsan_mutex_pre_unlock(mu, flags);
  Nested([&] {
    unlock(mu);
    return 0;
  });
  __tsan_mutex_post_unlock(mu, flags);
}

constexpr unsigned kRead = __tsan_mutex_read_lock;

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

Mutex::~Mutex() {
  static const auto next =
      Next<void (*)(Mutex*)>(SLABSERVE_ABSL_ENTRY("5Mutex", "D2Ev"));
  // As for a linker-initialised mutex, destruction is not modelled as a
  // write: gRPC destroys objects holding a Mutex on whichever thread drops
  // the last reference, ordered by reference counts in its uninstrumented
  // core, which TSan cannot see, so every such destroy would be reported
  // against the last lock on another thread. Freeing the memory still
  // resets TSan's state for the mutex, and our own objects' frees are still
  // checked against their last use.
  __tsan_mutex_destroy(this, __tsan_mutex_linker_init);
  next(this);
}

void Mutex::Lock() {
  static const auto next =
      Next<void (*)(Mutex*)>(SLABSERVE_ABSL_ENTRY("5Mutex", "4LockEv"));
  Acquiring(this, 0, [&] {
    next(this);
    return 0;
  });
}

void Mutex::ReaderLock() {
  static const auto next =
      Next<void (*)(Mutex*)>(SLABSERVE_ABSL_ENTRY("5Mutex", "10ReaderLockEv"));
  Acquiring(this, kRead, [&] {
    next(this);
    return 0;
  });
}

bool Mutex::TryLock() {
  static const auto next =
      Next<bool (*)(Mutex*)>(SLABSERVE_ABSL_ENTRY("5Mutex", "7TryLockEv"));
  return TryAcquiring(this, 0, next);
}

bool Mutex::ReaderTryLock() {
  static const auto next = Next<bool (*)(Mutex*)>(
      SLABSERVE_ABSL_ENTRY("5Mutex", "13ReaderTryLockEv"));
  return TryAcquiring(this, kRead, next);
}

void Mutex::Unlock() {
  static const auto next =
      Next<void (*)(Mutex*)>(SLABSERVE_ABSL_ENTRY("5Mutex", "6UnlockEv"));
  Releasing(this, 0, next);
}

void Mutex::ReaderUnlock() {
  static const auto next = Next<void (*)(Mutex*)>(
      SLABSERVE_ABSL_ENTRY("5Mutex", "12ReaderUnlockEv"));
  Releasing(this, kRead, next);
}

void Mutex::LockWhen(const Condition& cond) {
  static const auto next = Next<void (*)(Mutex*, const Condition&)>(
      SLABSERVE_ABSL_ENTRY("5Mutex", "8LockWhenERKNS0_9ConditionE"));
  Acquiring(this, 0, [&] {
    next(this, cond);
    return 0;
  });
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static const auto next = Next<void (*)(Mutex*, const Condition&)>(
      SLABSERVE_ABSL_ENTRY("5Mutex", "14ReaderLockWhenERKNS0_9ConditionE"));
  Acquiring(this, kRead, [&] {
    next(this, cond);
    return 0;
  });
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto next =
      Next<bool (*)(Mutex*, const Condition&, Duration)>(SLABSERVE_ABSL_ENTRY(
          "5Mutex", "19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE"));
  return Acquiring(this, 0, [&] { return next(this, cond, timeout); });
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto next =
      Next<bool (*)(Mutex*, const Condition&, Duration)>(SLABSERVE_ABSL_ENTRY(
          "5Mutex",
          "25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE"));
  return Acquiring(this, kRead, [&] { return next(this, cond, timeout); });
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto next =
      Next<bool (*)(Mutex*, const Condition&, Time)>(SLABSERVE_ABSL_ENTRY(
          "5Mutex", "20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE"));
  return Acquiring(this, 0, [&] { return next(this, cond, deadline); });
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto next =
      Next<bool (*)(Mutex*, const Condition&, Time)>(SLABSERVE_ABSL_ENTRY(
          "5Mutex",
          "26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE"));
  return Acquiring(this, kRead, [&] { return next(this, cond, deadline); });
}

// Await* may be called holding the mutex in either mode; TSan only needs
// the release and the acquire, so they are annotated as exclusive.
void Mutex::Await(const Condition& cond) {
  static const auto next = Next<void (*)(Mutex*, const Condition&)>(
      SLABSERVE_ABSL_ENTRY("5Mutex", "5AwaitERKNS0_9ConditionE"));
  Rewait(this, 0, [&] {
    next(this, cond);
    return 0;
  });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  static const auto next =
      Next<bool (*)(Mutex*, const Condition&, Duration)>(SLABSERVE_ABSL_ENTRY(
          "5Mutex", "16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE"));
  return Rewait(this, 0, [&] { return next(this, cond, timeout); });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  static const auto next =
      Next<bool (*)(Mutex*, const Condition&, Time)>(SLABSERVE_ABSL_ENTRY(
          "5Mutex", "17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE"));
  return Rewait(this, 0, [&] { return next(this, cond, deadline); });
}

void CondVar::Wait(Mutex* mu) {
  static const auto next = Next<void (*)(CondVar*, Mutex*)>(
      SLABSERVE_ABSL_ENTRY("7CondVar", "4WaitEPNS0_5MutexE"));
  Rewait(mu, 0, [&] {
    next(this, mu);
    return 0;
  });
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static const auto next =
      Next<bool (*)(CondVar*, Mutex*, Duration)>(SLABSERVE_ABSL_ENTRY(
          "7CondVar", "15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE"));
  return Rewait(mu, 0, [&] { return next(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static const auto next =
      Next<bool (*)(CondVar*, Mutex*, Time)>(SLABSERVE_ABSL_ENTRY(
          "7CondVar", "16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE"));
  return Rewait(mu, 0, [&] { return next(this, mu, deadline); });
}

void Notification::Notify() {
  static const auto next = Next<void (*)(Notification*)>(
      SLABSERVE_ABSL_ENTRY("12Notification", "6NotifyEv"));
  __tsan_release(this);
  next(this);
}

void Notification::WaitForNotification() const {
  static const auto next = Next<void (*)(const Notification*)>(
      SLABSERVE_ABSL_CONST_ENTRY("12Notification", "19WaitForNotificationEv"));
  next(this);
  __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  static const auto next =
      Next<bool (*)(const Notification*, Duration)>(SLABSERVE_ABSL_CONST_ENTRY(
          "12Notification", "30WaitForNotificationWithTimeoutENS0_8DurationE"));
  const bool notified = next(this, timeout);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  static const auto next =
      Next<bool (*)(const Notification*, Time)>(SLABSERVE_ABSL_CONST_ENTRY(
          "12Notification", "31WaitForNotificationWithDeadlineENS0_4TimeE"));
  const bool notified = next(this, deadline);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
