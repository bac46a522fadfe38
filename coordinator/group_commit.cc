#include "coordinator/group_commit.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace assay {

GroupCommit::~GroupCommit() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (background_.joinable()) background_.join();
  Flush().IgnoreError();
}

void GroupCommit::StartBackgroundWriter(absl::Duration unwaited_delay) {
  background_ = std::thread([this, unwaited_delay] {
    while (true) {
      uint64_t ticket = 0;
      {
        absl::MutexLock lock(&mu_);
        // Work: a change left unwaited, or changes a failed write kept (nobody may come to write them).
        auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || left_ > written() || (failures_in_a_row_ > 0 && !queue_.empty());
        };
        auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
        mu_.Await(absl::Condition(&work));
        if (stopping_) return;
        if (failures_in_a_row_ > 0) {
          // The disk refused the last write: try again after a pause (100 ms, doubling to 2 s), sooner
          // if a waiter writes first, so that kept changes reach the disk once it takes writes again.
          const absl::Duration pause = std::min(absl::Milliseconds(100) * (1 << std::min(failures_in_a_row_ - 1, 5)), absl::Seconds(2));
          if (mu_.AwaitWithTimeout(absl::Condition(&stopping), pause)) return;
        } else {
          // Give a waiter's write the chance to carry what was left, then write it.
          const uint64_t left = left_;
          auto carried = [this, left]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || written() >= left; };
          mu_.AwaitWithTimeout(absl::Condition(&carried), unwaited_delay);
          if (stopping_) return;
          if (written() >= left) continue;
        }
        ticket = last_ticket_;
      }
      Wait(ticket).IgnoreError();
    }
  });
}

void GroupCommit::Leave(uint64_t ticket) {
  if (ticket == 0) return;
  absl::MutexLock lock(&mu_);
  left_ = std::max(left_, ticket);
}

uint64_t GroupCommit::Enqueue(Change change) {
  if (change.empty()) return 0;
  absl::MutexLock lock(&mu_);
  queued_bytes_ += change.batch.GetDataSize();
  queue_.push_back(std::move(change));
  return ++last_ticket_;
}

absl::Status GroupCommit::Wait(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  while (written() < ticket) {
    if (writing_) {
      // Another thread is writing; it wakes everyone when its group is done.
      auto done_or_free = [this, ticket]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return written() >= ticket || !writing_;
      };
      mu_.Await(absl::Condition(&done_or_free));
      continue;
    }
    // Lead: take everything queued so far (at least up to `ticket`) and write it without the lock.
    writing_ = true;
    std::deque<Change> group;
    group.swap(queue_);
    const uint64_t last = last_ticket_;
    mu_.Unlock();
    bool sync = false;
    size_t last_write = group.size();
    size_t bytes = 0;
    for (size_t i = 0; i < group.size(); ++i) {
      bytes += group[i].batch.GetDataSize();
      sync = sync || group[i].sync;
      if (group[i].batch.Count() > 0) last_write = i;
    }
    absl::Status status;
    for (size_t i = 0; i < group.size() && status.ok(); ++i) {
      if (group[i].batch.Count() == 0) continue;
      // Only the group's last write waits for the disk: the WAL carries every earlier one with it.
      status = writer_(&group[i].batch, sync && i == last_write);
    }
    groups_.fetch_add(1);
    mu_.Lock();
    writing_ = false;
    if (!status.ok()) {
      // Nothing of the group counts as written: it goes back to the front of the queue, its actions
      // with it, and is written again (whole: its changes are snapshots and deletions, which may be
      // applied twice) before anything newer, by the next waiter or the background writer.
      spdlog::error("writing {} coordinator changes failed (kept, to be written again): {}", group.size(),
                    status.ToString());
      ++failures_in_a_row_;
      while (!group.empty()) {
        queue_.push_front(std::move(group.back()));
        group.pop_back();
      }
      return status;
    }
    if (failures_in_a_row_ > 0) spdlog::info("coordinator changes written again after {} failed tries", failures_in_a_row_);
    failures_in_a_row_ = 0;
    queued_bytes_ -= bytes;
    if (sync && last_write < group.size()) synced_groups_.fetch_add(1);
    changes_.fetch_add(group.size());
    // Actions run in ticket order: no other group is written or acted on until these are done.
    for (Change& c : group) {
      for (auto& action : c.after) action();
    }
    written_.store(last, std::memory_order_release);
  }
  return absl::OkStatus();
}

}  // namespace assay
