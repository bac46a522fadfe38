// Writes the coordinator's decisions to disk in the order they were made, many at a time, with no
// lock held that a request waits on.
//
// A decision is made under the scheduling lock and ends with Enqueue (cheap: it only takes a
// ticket). The lock is released, then Wait(ticket) returns once that change and every earlier one
// are written. The first waiter to find no writer becomes the writer and writes everything queued
// (one fsync for the whole group, when any part asks for one); the others wait for it. Each change
// may carry actions (messages to workers) that must not happen before it is on disk: the writer runs
// them right after the write, in ticket order. A group the disk refuses (a full disk) is not dropped:
// it stays first in the queue, its actions not run, and is written again with the next group (or by
// the background writer, which tries again after a pause) until the disk takes it.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include <rocksdb/write_batch.h>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace assay {

class GroupCommit {
 public:
  struct Change {
    rocksdb::WriteBatch batch;
    bool sync = false;                        // must be on disk, not only in the page cache
    // Run once written, in ticket order, under this object's lock: they must not block or call back.
    std::vector<std::function<void()>> after;
    bool empty() const { return batch.Count() == 0 && after.empty(); }
  };
  // Writes one batch (sync: fsynced before returning).
  using Writer = std::function<absl::Status(rocksdb::WriteBatch* batch, bool sync)>;

  explicit GroupCommit(Writer writer) : writer_(std::move(writer)) {}
  ~GroupCommit();  // writes what is queued

  // How long a change nobody waits for may stay queued: the next waiter's write (a result, a
  // dispatch) usually carries it first, with no write or thread hand-off of its own.
  static constexpr absl::Duration kUnwaitedDelay = absl::Milliseconds(20);
  // Starts a thread that writes changes nobody waits for (Leave) within `unwaited_delay`, and kept
  // changes once the disk takes writes again.
  void StartBackgroundWriter(absl::Duration unwaited_delay = kUnwaitedDelay);

  // Orders `change` after every change enqueued before it; returns its ticket (0 for an empty one,
  // which needs no waiting). Never blocks on I/O.
  uint64_t Enqueue(Change change);
  // Returns once the change of `ticket` and all before it are written and their actions have run, or
  // once a write of them failed: then the status is that failure (the changes are kept and written
  // again later; written() stays below the ticket until they are).
  absl::Status Wait(uint64_t ticket);

  // Nobody waits for `ticket` (0: nothing): the background writer writes it within kUnwaitedDelay
  // unless a waiter's write takes it along first. Changes that are waited for never wake that thread.
  void Leave(uint64_t ticket);

  // Writes whatever is queued (for changes enqueued without a waiter).
  absl::Status Flush() { return Wait(last_ticket()); }
  uint64_t last_ticket() const {
    absl::MutexLock lock(&mu_);
    return last_ticket_;
  }
  // The last write failed (the disk refused it): what is queued waits for the disk.
  bool failing() const {
    absl::MutexLock lock(&mu_);
    return failures_in_a_row_ > 0;
  }
  // Bytes queued and not yet written.
  size_t queued_bytes() const { return queued_bytes_.load(); }

  // The highest ticket whose change is written.
  uint64_t written() const { return written_.load(std::memory_order_acquire); }
  // Figures: how many writes were made (and how many of them were fsynced), and how many changes
  // they carried.
  uint64_t groups() const { return groups_.load(); }
  uint64_t synced_groups() const { return synced_groups_.load(); }
  uint64_t changes() const { return changes_.load(); }

 private:
  const Writer writer_;
  mutable absl::Mutex mu_;
  std::deque<Change> queue_ ABSL_GUARDED_BY(mu_);  // changes last_ticket_-size+1 .. last_ticket_
  uint64_t last_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t left_ ABSL_GUARDED_BY(mu_) = 0;  // the last ticket nobody waits for (Leave)
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int failures_in_a_row_ ABSL_GUARDED_BY(mu_) = 0;  // writes the disk refused since the last one it took
  std::thread background_;
  std::atomic<uint64_t> written_{0};
  std::atomic<size_t> queued_bytes_{0};
  std::atomic<uint64_t> groups_{0}, synced_groups_{0}, changes_{0};
};

}  // namespace assay
