#include "engine/scheduler/request_stream.h"

#include <algorithm>
#include <utility>

namespace slabserve {

void Wakeup::Notify() {
  absl::MutexLock lock(&mu_);
  pending_ = true;
}

void Wakeup::WaitFor(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&pending_), timeout);
  pending_ = false;
}

BufferedRequestStream::BufferedRequestStream(std::shared_ptr<Wakeup> wakeup,
                                             int buffer_tokens, int interval)
    : wakeup_(std::move(wakeup)),
      buffer_tokens_(buffer_tokens),
      interval_(interval) {}

bool BufferedRequestStream::Deliverable() const {
  if (finished_) return true;
  if (events_.empty()) return false;
  return !read_any_ || held_pushes_ >= interval_ ||
         buffered_tokens_ >= buffer_tokens_;
}

bool BufferedRequestStream::Read(std::vector<StreamEvent>* out,
                                 absl::Duration timeout) {
  bool was_full;
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(
        absl::Condition(this, &BufferedRequestStream::Deliverable), timeout);
    if (!Deliverable()) return true;
    if (events_.empty()) return false;  // finished, everything read
    for (StreamEvent& event : events_) out->push_back(std::move(event));
    events_.clear();
    was_full = buffered_tokens_ >= buffer_tokens_;
    buffered_tokens_ = 0;
    held_pushes_ = 0;
    read_any_ = true;
  }
  // The step loop may be idle because this request was the only work left.
  if (was_full) wakeup_->Notify();
  return true;
}

void BufferedRequestStream::Cancel() {
  cancelled_.store(true, std::memory_order_relaxed);
  wakeup_->Notify();
}

bool BufferedRequestStream::full() const {
  absl::MutexLock lock(&mu_);
  return buffered_tokens_ >= buffer_tokens_;
}

void BufferedRequestStream::SetOnEvents(std::function<void()> on_events) {
  bool pending;
  {
    absl::MutexLock lock(&mu_);
    if (on_events_) return;  // set at most once: Push calls it unlocked
    on_events_ = std::move(on_events);
    pending = Deliverable();
  }
  if (pending) on_events_();
}

void BufferedRequestStream::Push(std::vector<StreamEvent> events, bool last) {
  bool notify;
  {
    absl::MutexLock lock(&mu_);
    if (!events.empty()) ++held_pushes_;
    for (StreamEvent& event : events) {
      buffered_tokens_ += static_cast<int>(event.tokens.size());
      events_.push_back(std::move(event));
    }
    if (last) finished_ = true;
    notify = on_events_ && Deliverable();
  }
  if (notify) on_events_();
}

void BufferedRequestStream::Release() {
  bool notify;
  {
    absl::MutexLock lock(&mu_);
    if (events_.empty()) return;
    held_pushes_ = std::max(held_pushes_, interval_);
    notify = on_events_ && Deliverable();
  }
  if (notify) on_events_();
}

}  // namespace slabserve
