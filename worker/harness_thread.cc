#include "worker/harness_thread.h"

#include <deque>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"

namespace assay {

struct HarnessThread::State {
  State(FeedFn f, std::function<void()> s, size_t max) : feed(std::move(f)), stop(std::move(s)), max_pending(max) {}
  const FeedFn feed;
  const std::function<void()> stop;
  const size_t max_pending;

  absl::Mutex mu;
  std::deque<std::pair<std::string, int>> queue ABSL_GUARDED_BY(mu);
  size_t pending ABSL_GUARDED_BY(mu) = 0;
  bool feeding ABSL_GUARDED_BY(mu) = false;   // the thread holds a chunk the harness is reading
  bool closed ABSL_GUARDED_BY(mu) = false;    // no more chunks: the thread ends when the queue is empty
  bool abandoned ABSL_GUARDED_BY(mu) = false; // feed nothing more
  bool finished ABSL_GUARDED_BY(mu) = false;  // the thread has returned from Run
  bool stop_called ABSL_GUARDED_BY(mu) = false;
  bool overflowed ABSL_GUARDED_BY(mu) = false;

  // Calls `stop` once, and never after the owner has gone (abandoned): under the lock, so that the
  // destructor cannot return in between.
  void StopLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (stop_called || abandoned) return;
    stop_called = true;
    stop();
  }
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return !queue.empty() || closed || abandoned; }
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return queue.empty() && !feeding; }

  void Run() {
    while (true) {
      std::pair<std::string, int> chunk;
      {
        absl::MutexLock lock(&mu);
        mu.Await(absl::Condition(this, &State::HasWork));
        if (abandoned || queue.empty()) {
          finished = true;
          return;
        }
        chunk = std::move(queue.front());
        queue.pop_front();
        pending -= chunk.first.size();
        feeding = true;
      }
      const bool stop_now = feed(chunk.first, chunk.second);
      absl::MutexLock lock(&mu);
      feeding = false;
      if (stop_now) StopLocked();
    }
  }
};

HarnessThread::HarnessThread(FeedFn feed, std::function<void()> stop, size_t max_pending_bytes)
    : state_(std::make_shared<State>(std::move(feed), std::move(stop), max_pending_bytes)) {
  thread_ = std::thread([state = state_] { state->Run(); });
}

HarnessThread::~HarnessThread() {
  State& s = *state_;
  bool done = false;
  {
    absl::MutexLock lock(&s.mu);
    s.closed = true;
    s.abandoned = true;  // whatever is still queued is not fed any more
    done = s.mu.AwaitWithTimeout(absl::Condition(&s.finished), absl::Seconds(1));
  }
  // A harness stuck in one chunk is not waited for: its thread owns what it uses (state_).
  if (done) {
    thread_.join();
  } else {
    thread_.detach();
  }
}

void HarnessThread::Feed(absl::string_view data, int stream) {
  if (data.empty()) return;
  State& s = *state_;
  absl::MutexLock lock(&s.mu);
  if (s.closed || s.overflowed) return;
  if (s.pending + data.size() > s.max_pending) {
    s.overflowed = true;
    s.StopLocked();
    return;
  }
  s.pending += data.size();
  s.queue.emplace_back(std::string(data), stream);
}

bool HarnessThread::Drain(absl::Duration wait) {
  State& s = *state_;
  absl::MutexLock lock(&s.mu);
  s.closed = true;
  const bool drained = s.mu.AwaitWithTimeout(absl::Condition(&s, &State::Idle), wait);
  if (!drained) s.abandoned = true;
  return drained;
}

bool HarnessThread::stopped() const {
  absl::MutexLock lock(&state_->mu);
  return state_->stop_called;
}

bool HarnessThread::overflowed() const {
  absl::MutexLock lock(&state_->mu);
  return state_->overflowed;
}

}  // namespace assay
