// Log retention over a real RocksDB job store and an injected clock: finished jobs' logs older than
// the retention go, with the reason recorded; younger and unfinished jobs keep theirs; while the
// disk is low, the oldest finished jobs' logs go first, one job at a time, until it is not.
#include "coordinator/log_retention.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/base/file_util.h"
#include "coordinator/families.h"
#include "tests/common/wait_for.h"

namespace assay {
namespace {

using assay::v1::Job;
using assay::v1::LogChunk;
using assay::v1::Task;

class LogRetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = Database::Open(dir_.path() / "db", CoordinatorDatabaseOptions()).value();
    store_ = std::make_unique<JobStore>(db_.get());
  }

  // A job of one task with `lines` log chunks, finished `age` ago (running when `finished` is false).
  uint64_t AddJob(absl::Duration age, bool finished = true, int lines = 3) {
    const uint64_t number = store_->NextJobNumber().value();
    Job job;
    job.set_id(std::to_string(number));
    job.set_state(finished ? assay::v1::JOB_SUCCEEDED : assay::v1::JOB_RUNNING);
    if (finished) job.set_finished_at_ms(absl::ToUnixMillis(clock_.Now() - age));
    Task task;
    task.set_id("a/build");
    task.set_index(0);
    EXPECT_TRUE(store_->CreateJob(number, job, {task}).ok());
    rocksdb::WriteBatch batch;
    for (int i = 0; i < lines; ++i) {
      LogChunk chunk;
      chunk.set_task_id("a/build");
      chunk.set_seq(static_cast<uint32_t>(i));
      chunk.set_data("line of output\n");
      store_->PutLog(&batch, number, 0, chunk);
    }
    EXPECT_TRUE(store_->Write(&batch, true).ok());
    return number;
  }

  int Chunks(uint64_t number) {
    int n = 0;
    EXPECT_TRUE(store_->ReadLogs(number, 0, 0, [&](const LogChunk&) { return ++n > 0; }).ok());
    return n;
  }

  ScopedTempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<JobStore> store_;
};

TEST_F(LogRetentionTest, FinishedJobsOlderThanTheRetentionLoseTheirLogsWithTheReasonRecorded) {
  const uint64_t old_job = AddJob(absl::Hours(24 * 31));
  const uint64_t running = AddJob(absl::ZeroDuration(), /*finished=*/false);
  const uint64_t young = AddJob(absl::Hours(24 * 29));
  LogRetention::Options options;
  options.max_age = ParseRetention("30d").value();
  options.max_age_text = "30d";
  LogRetention retention(store_.get(), &clock_, options);

  auto removed = retention.RunOnce();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 1);
  EXPECT_EQ(Chunks(old_job), 0);
  EXPECT_EQ(Chunks(running), 3);
  EXPECT_EQ(Chunks(young), 3);
  auto why = store_->LogsRemoved(old_job);
  ASSERT_TRUE(why.ok()) << why.status();
  EXPECT_TRUE(absl::StrContains(*why, "older than --log-retention 30d")) << *why;
  EXPECT_TRUE(absl::IsNotFound(store_->LogsRemoved(young).status()));
  // The job itself stays.
  EXPECT_EQ(store_->LoadJob(old_job, true)->state(), assay::v1::JOB_SUCCEEDED);

  // A day later the young one is old enough too; the running one never goes.
  clock_.Advance(absl::Hours(48));
  EXPECT_EQ(*retention.RunOnce(), 1);
  EXPECT_EQ(Chunks(young), 0);
  EXPECT_EQ(Chunks(running), 3);
  EXPECT_EQ(*retention.RunOnce(), 0);
}

TEST_F(LogRetentionTest, WhileTheDiskIsLowTheOldestFinishedJobsLoseTheirLogsOneAtATime) {
  const uint64_t running = AddJob(absl::ZeroDuration(), /*finished=*/false);
  const uint64_t first = AddJob(absl::Minutes(3));
  const uint64_t second = AddJob(absl::Minutes(2));
  const uint64_t third = AddJob(absl::Minutes(1));
  LogRetention::Options options;  // no age limit
  // The disk has room again once two jobs' logs are gone.
  options.disk_low = [&] {
    int gone = 0;
    for (uint64_t n : {running, first, second, third}) gone += store_->LogsRemoved(n).ok() ? 1 : 0;
    return gone < 2;
  };
  options.min_free_text = "5%";
  LogRetention retention(store_.get(), &clock_, options);

  auto removed = retention.RunOnce();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 2);
  EXPECT_EQ(Chunks(running), 3);
  EXPECT_EQ(Chunks(first), 0);
  EXPECT_EQ(Chunks(second), 0);
  EXPECT_EQ(Chunks(third), 3);
  EXPECT_TRUE(absl::StrContains(store_->LogsRemoved(first).value(), "disk was low (below twice --min-free-disk 5%)"));
  EXPECT_EQ(*retention.RunOnce(), 0);  // room again: nothing more goes
  EXPECT_EQ(Chunks(third), 3);
}

TEST_F(LogRetentionTest, WithNoRetentionAndRoomOnTheDiskNothingIsRemoved) {
  const uint64_t old_job = AddJob(absl::Hours(24 * 3650));
  LogRetention retention(store_.get(), &clock_, LogRetention::Options{});
  EXPECT_EQ(*retention.RunOnce(), 0);
  EXPECT_EQ(Chunks(old_job), 3);
}

TEST_F(LogRetentionTest, TheThreadRemovesOnItsOwnAndStops) {
  const uint64_t old_job = AddJob(absl::Hours(2));
  LogRetention::Options options;
  options.max_age = absl::Hours(1);
  options.max_age_text = "1h";
  options.interval = absl::Milliseconds(10);
  LogRetention retention(store_.get(), &clock_, options);
  retention.Start();
  EXPECT_TRUE(testing::WaitFor([&] { return store_->LogsRemoved(old_job).ok(); }, absl::Seconds(10)));
  retention.Stop();
  EXPECT_EQ(Chunks(old_job), 0);
}

TEST(ParseRetentionTest, DaysHoursAndZeroParseAndAnythingElseIsNamed) {
  EXPECT_EQ(*ParseRetention("90d"), absl::Hours(24 * 90));
  EXPECT_EQ(*ParseRetention("12h"), absl::Hours(12));
  EXPECT_EQ(*ParseRetention("30m"), absl::Minutes(30));
  EXPECT_EQ(*ParseRetention("0"), absl::ZeroDuration());
  for (const char* bad : {"soon", "-1d", "", "d"}) {
    auto parsed = ParseRetention(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_TRUE(absl::StrContains(parsed.status().message(), "--log-retention")) << parsed.status();
  }
}

}  // namespace
}  // namespace assay
