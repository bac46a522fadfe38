// A qemu step's console harness, fed on a thread of its own. The executor's loop reads the
// emulator's output and enforces the step's timeout and cancel; if it also ran the harness, a slow
// judgement (a pattern, a huge line) would hold that loop and with it the timeout, the cancel and
// the worker's slot. Here the loop only queues what it read (Feed never waits for the harness);
// this thread feeds it on, in order, and ends the run through `stop` when the harness says so.
//
// Memory is bounded: output queued beyond `max_pending_bytes` (a harness that cannot keep up) ends
// the run as well (overflowed()). After the run, Drain waits a bounded time for the harness to read
// the rest; a harness that does not finish is abandoned (fed nothing more; the thread ends at its
// next chunk and is never waited for beyond a second), so the task still ends and frees its slot.
#pragma once

#include <functional>
#include <memory>
#include <thread>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace assay {

class HarnessThread {
 public:
  // Feeds one chunk of output to the harness; true once the run should end now.
  using FeedFn = std::function<bool(absl::string_view data, int stream)>;
  static constexpr size_t kMaxPendingBytes = 8 << 20;

  // `feed` runs on this object's thread only (it may own the harness). `stop` is called at most once,
  // never after this object is destroyed, with an internal lock held: it must be quick and must not
  // call back into this object (CancelToken::Cancel).
  HarnessThread(FeedFn feed, std::function<void()> stop, size_t max_pending_bytes = kMaxPendingBytes);
  ~HarnessThread();
  HarnessThread(const HarnessThread&) = delete;
  HarnessThread& operator=(const HarnessThread&) = delete;

  // Queues a chunk (`stream` 0 is stdout, 1 stderr) and returns at once.
  void Feed(absl::string_view data, int stream);

  // Once the run has ended: waits until every queued chunk was fed, at most `wait`. True when they
  // were; false when the harness did not finish (it is then abandoned; do not use it afterwards).
  bool Drain(absl::Duration wait);

  // The harness asked to end the run (or the queue overflowed).
  bool stopped() const;
  // More than `max_pending_bytes` waited for the harness: the run was ended for it.
  bool overflowed() const;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the thread, which may outlive this object if abandoned
  std::thread thread_;
};

}  // namespace assay
