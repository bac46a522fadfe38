// GroupCommit: order, grouping, actions after the write, and that nobody but waiters waits on a write.
#include "coordinator/group_commit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "tests/common/wait_for.h"

namespace assay {
namespace {

// Records what was written (the first key of each batch) and which writes were synced; can hold the
// next write until released, as a slow disk would.
class RecordingWriter {
 public:
  GroupCommit::Writer AsWriter() {
    return [this](rocksdb::WriteBatch* batch, bool sync) { return Write(batch, sync); };
  }
  void HoldNextWrite() { hold_ = true; }
  absl::Notification held;  // notified when a write is being held
  void Release() { release_.Notify(); }

  std::vector<std::string> keys() {
    absl::MutexLock lock(&mu_);
    return keys_;
  }
  int syncs() {
    absl::MutexLock lock(&mu_);
    return syncs_;
  }
  // The thread of each write, in order.
  std::vector<std::thread::id> threads() {
    absl::MutexLock lock(&mu_);
    return threads_;
  }
  void FailWrites(bool fail) { fail_ = fail; }

 private:
  absl::Status Write(rocksdb::WriteBatch* batch, bool sync) {
    if (hold_.exchange(false)) {
      held.Notify();
      release_.WaitForNotification();
    }
    if (fail_) return absl::InternalError("disk full");
    struct Keys : rocksdb::WriteBatch::Handler {
      std::vector<std::string> keys;
      void Put(const rocksdb::Slice& key, const rocksdb::Slice&) override { keys.push_back(key.ToString()); }
    } handler;
    EXPECT_TRUE(batch->Iterate(&handler).ok());
    absl::MutexLock lock(&mu_);
    keys_.insert(keys_.end(), handler.keys.begin(), handler.keys.end());
    syncs_ += sync ? 1 : 0;
    threads_.push_back(std::this_thread::get_id());
    return absl::OkStatus();
  }

  std::atomic<bool> hold_{false}, fail_{false};
  absl::Notification release_;
  absl::Mutex mu_;
  std::vector<std::string> keys_ ABSL_GUARDED_BY(mu_);
  int syncs_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread::id> threads_ ABSL_GUARDED_BY(mu_);
};

GroupCommit::Change Put(const std::string& key, bool sync, std::function<void()> after = nullptr) {
  GroupCommit::Change c;
  c.batch.Put(key, "v");
  c.sync = sync;
  if (after) c.after.push_back(std::move(after));
  return c;
}

TEST(GroupCommitTest, WritesChangesAndRunsTheirActionsInTicketOrder) {
  RecordingWriter writer;
  GroupCommit commit(writer.AsWriter());
  std::vector<int> actions;
  uint64_t t1 = commit.Enqueue(Put("a", true, [&] { actions.push_back(1); }));
  uint64_t t2 = commit.Enqueue(Put("b", false, [&] { actions.push_back(2); }));
  uint64_t t3 = commit.Enqueue(Put("c", true, [&] { actions.push_back(3); }));
  EXPECT_LT(t1, t2);
  EXPECT_LT(t2, t3);
  EXPECT_TRUE(actions.empty()) << "an action ran before its change was written";
  ASSERT_TRUE(commit.Wait(t2).ok());
  // Waiting for t2 wrote everything queued: one group, one fsync (by its last write).
  EXPECT_EQ(writer.keys(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(actions, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(writer.syncs(), 1);
  EXPECT_EQ(commit.written(), t3);
  EXPECT_EQ(commit.groups(), 1u);
  ASSERT_TRUE(commit.Wait(t3).ok());  // already written: returns at once
  EXPECT_EQ(commit.groups(), 1u);
}

TEST(GroupCommitTest, AnUnsyncedGroupIsNotSynced) {
  RecordingWriter writer;
  GroupCommit commit(writer.AsWriter());
  ASSERT_TRUE(commit.Wait(commit.Enqueue(Put("log", false))).ok());
  EXPECT_EQ(writer.syncs(), 0);
  EXPECT_EQ(writer.keys(), std::vector<std::string>{"log"});
}

TEST(GroupCommitTest, AnEmptyChangeNeedsNoWait) {
  RecordingWriter writer;
  GroupCommit commit(writer.AsWriter());
  EXPECT_EQ(commit.Enqueue(GroupCommit::Change()), 0u);
  EXPECT_TRUE(commit.Wait(0).ok());
  EXPECT_EQ(commit.groups(), 0u);
  // A change with only an action (a message to a worker) is still ordered and run.
  bool ran = false;
  GroupCommit::Change message;
  message.after.push_back([&] { ran = true; });
  ASSERT_TRUE(commit.Wait(commit.Enqueue(std::move(message))).ok());
  EXPECT_TRUE(ran);
  EXPECT_TRUE(writer.keys().empty());
}

TEST(GroupCommitTest, WhileOneGroupIsBeingWrittenOthersEnqueueAndTheNextGroupTakesThemAll) {
  RecordingWriter writer;
  GroupCommit commit(writer.AsWriter());
  writer.HoldNextWrite();
  uint64_t first = commit.Enqueue(Put("first", true));
  std::thread leader([&] { EXPECT_TRUE(commit.Wait(first).ok()); });
  writer.held.WaitForNotification();
  // The disk is stalled; deciding and enqueueing never waits for it.
  std::vector<uint64_t> tickets;
  for (int i = 0; i < 8; ++i) tickets.push_back(commit.Enqueue(Put("k" + std::to_string(i), true)));
  EXPECT_EQ(commit.written(), 0u);
  std::vector<std::thread> waiters;
  std::atomic<int> done{0};
  for (uint64_t t : tickets) {
    waiters.emplace_back([&, t] {
      EXPECT_TRUE(commit.Wait(t).ok());
      EXPECT_GE(commit.written(), t);
      done++;
    });
  }
  EXPECT_EQ(done.load(), 0);
  writer.Release();
  leader.join();
  for (auto& w : waiters) w.join();
  EXPECT_EQ(done.load(), 8);
  EXPECT_EQ(writer.keys().size(), 9u);
  EXPECT_EQ(writer.keys().front(), "first");
  // All eight were queued during the stalled write: the next leader takes them as one group.
  EXPECT_EQ(commit.groups(), 2u);
  EXPECT_EQ(commit.changes(), 9u);
  EXPECT_EQ(writer.syncs(), static_cast<int>(commit.groups()));
}

TEST(GroupCommitTest, AFailedWriteIsKeptWithItsActionsAndWrittenAgainBeforeLaterChanges) {
  RecordingWriter writer;
  GroupCommit commit(writer.AsWriter());
  std::vector<std::string> acted;
  writer.FailWrites(true);
  const uint64_t first = commit.Enqueue(Put("kept", true, [&] { acted.push_back("kept"); }));
  absl::Status s = commit.Wait(first);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(), "disk full");
  EXPECT_EQ(commit.written(), 0u) << "a change the disk refused is not written";
  EXPECT_TRUE(acted.empty()) << "its actions wait for the disk";
  EXPECT_GT(commit.queued_bytes(), 0u);
  EXPECT_TRUE(commit.failing());
  writer.FailWrites(false);
  EXPECT_TRUE(commit.Wait(commit.Enqueue(Put("next", true, [&] { acted.push_back("next"); }))).ok());
  EXPECT_EQ(writer.keys(), (std::vector<std::string>{"kept", "next"})) << "written again, first";
  EXPECT_EQ(acted, (std::vector<std::string>{"kept", "next"}));
  EXPECT_EQ(commit.written(), 2u);
  EXPECT_EQ(commit.queued_bytes(), 0u);
  EXPECT_FALSE(commit.failing());
}

TEST(GroupCommitTest, TheBackgroundWriterWritesKeptChangesOnceTheDiskTakesThemWithNobodyWaiting) {
  RecordingWriter writer;
  GroupCommit commit(writer.AsWriter());
  commit.StartBackgroundWriter();
  writer.FailWrites(true);
  const uint64_t ticket = commit.Enqueue(Put("kept", false));
  EXPECT_FALSE(commit.Wait(ticket).ok());
  writer.FailWrites(false);  // the disk was freed; no new change comes
  EXPECT_TRUE(assay::testing::WaitFor([&] { return commit.written() >= ticket; }, absl::Seconds(10)));
  EXPECT_EQ(writer.keys(), std::vector<std::string>{"kept"});
}

TEST(GroupCommitTest, AChangeNobodyWaitsForIsWrittenByTheBackgroundWriter) {
  RecordingWriter writer;
  GroupCommit commit(writer.AsWriter());
  commit.StartBackgroundWriter(absl::Milliseconds(1));
  const uint64_t ticket = commit.Enqueue(Put("log", false));
  commit.Leave(ticket);
  EXPECT_TRUE(assay::testing::WaitFor([&] { return commit.written() >= ticket; }, absl::Seconds(10)));
  EXPECT_EQ(writer.keys(), std::vector<std::string>{"log"});
  ASSERT_EQ(writer.threads().size(), 1u);
  EXPECT_NE(writer.threads()[0], std::this_thread::get_id());
}

TEST(GroupCommitTest, AWaitedChangeIsWrittenByItsWaiterWithWhatWasLeftBeforeItInOneGroup) {
  RecordingWriter writer;
  GroupCommit commit(writer.AsWriter());
  // A background writer that would take its time: the waiter's write carries the left change.
  commit.StartBackgroundWriter(absl::Seconds(60));
  commit.Leave(commit.Enqueue(Put("log", false)));
  const uint64_t result = commit.Enqueue(Put("result", true));
  ASSERT_TRUE(commit.Wait(result).ok());
  EXPECT_EQ(writer.keys(), (std::vector<std::string>{"log", "result"}));
  EXPECT_EQ(commit.groups(), 1u) << "one group, one sync";
  EXPECT_EQ(writer.syncs(), 1);
  // Neither change woke the background writer to write it: this thread wrote both.
  EXPECT_EQ(writer.threads(), (std::vector<std::thread::id>{std::this_thread::get_id(), std::this_thread::get_id()}));
}

TEST(GroupCommitTest, AChangeLeftUnwrittenIsWrittenWhenTheCommitEnds) {
  RecordingWriter writer;
  {
    GroupCommit commit(writer.AsWriter());
    commit.StartBackgroundWriter(absl::Seconds(60));
    commit.Leave(commit.Enqueue(Put("log", false)));
  }
  EXPECT_EQ(writer.keys(), std::vector<std::string>{"log"});
}

}  // namespace
}  // namespace assay
