// The two ends of a request's event stream: the step loop pushes events into
// a bounded buffer, the server reads them. The step loop never waits on the
// reader; it asks whether the buffer is full and skips the request if so.
#ifndef SLABSERVE_ENGINE_SCHEDULER_REQUEST_STREAM_H_
#define SLABSERVE_ENGINE_SCHEDULER_REQUEST_STREAM_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/scheduler/scheduler.h"

namespace slabserve {

// Wakes the step loop when it sleeps for lack of work: new requests,
// cancellations, or a reader making room in a full buffer.
class Wakeup {
 public:
  void Notify();
  // Returns once notified (consuming the notification) or after `timeout`.
  void WaitFor(absl::Duration timeout);

 private:
  absl::Mutex mu_;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
};

class BufferedRequestStream : public RequestStream {
 public:
  // The step loop pauses the request once `buffer_tokens` tokens wait. The
  // reader sees events once `interval` pushes have gathered since its last
  // read (the first push, the last, a full buffer and a Release go at
  // once): fewer, larger reads cost less per token downstream.
  BufferedRequestStream(std::shared_ptr<Wakeup> wakeup, int buffer_tokens,
                        int interval = 1);

  bool Read(std::vector<StreamEvent>* out, absl::Duration timeout) override;
  void Cancel() override;
  void SetOnEvents(std::function<void()> on_events) override;

  // Step loop side.
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  // True while the reader has left `buffer_tokens` or more tokens unread.
  bool full() const;
  // Appends events; `last`: the request has ended and nothing follows.
  void Push(std::vector<StreamEvent> events, bool last);
  // Lets the reader take what the interval holds back now: the request
  // stops pushing for a while (it was preempted), and its tokens must not
  // wait for it to come back.
  void Release();

 private:
  const std::shared_ptr<Wakeup> wakeup_;
  // Whether the reader may take what is buffered now.
  bool Deliverable() const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const int buffer_tokens_;
  const int interval_;
  std::atomic<bool> cancelled_{false};
  mutable absl::Mutex mu_;
  std::deque<StreamEvent> events_ ABSL_GUARDED_BY(mu_);
  int buffered_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  int held_pushes_ ABSL_GUARDED_BY(mu_) = 0;  // since the last read
  bool read_any_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // Written once under mu_ and never again, so Push may call it unlocked.
  std::function<void()> on_events_;
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_SCHEDULER_REQUEST_STREAM_H_
