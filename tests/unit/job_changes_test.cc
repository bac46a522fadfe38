// WatchJob's changes_only: the coordinator sends the tasks changed since a watcher's last message
// (JobManager::GetJobChanges), and the client puts them back together (ApplyJobChanges).
#include <gtest/gtest.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "common/task/task_states.h"
#include "tests/unit/job_manager_fixture.h"

namespace assay {
namespace {

using assay::v1::Job;

assay::v1::Task TaskAt(int index, assay::v1::TaskState state) {
  assay::v1::Task task;
  task.set_index(index);
  task.set_id("t" + std::to_string(index));
  task.set_state(state);
  return task;
}

// The job's bytes, map entries in key order (generated code, no reflection: Debian's libprotobuf
// reflects over map fields wrongly in this project's Debug builds).
std::string Bytes(const Job& job) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    job.SerializeToCodedStream(&coded);
  }
  return out;
}

// Each task's id and state, to show what differs.
std::string Tasks(const Job& job) {
  std::string out;
  for (const auto& t : job.tasks()) out += t.id() + "=" + assay::v1::TaskState_Name(t.state()) + " ";
  return out;
}

// What a watcher has put together equals the job as GetJob returns it.
void ExpectSame(const Job& seen, const Job& job) {
  EXPECT_EQ(Bytes(seen), Bytes(job)) << "seen: " << Tasks(seen) << "\njob:  " << Tasks(job);
}

TEST(ApplyJobChangesTest, ReplacesTheNamedTasksAndTheHeaderAndIgnoresIndexesOutsideTheJob) {
  Job whole;
  whole.set_id("7");
  whole.set_task_count(3);
  for (int i = 0; i < 3; ++i) *whole.add_tasks() = TaskAt(i, assay::v1::TASK_QUEUED);
  Job seen;
  ApplyJobChanges(whole, &seen);
  ExpectSame(seen, whole);

  Job update;
  update.set_id("7");
  update.set_task_count(3);
  update.set_tasks_done(1);
  update.set_state(assay::v1::JOB_RUNNING);
  *update.add_tasks() = TaskAt(1, assay::v1::TASK_SUCCEEDED);
  *update.add_tasks() = TaskAt(3, assay::v1::TASK_FAILED);   // no such task
  *update.add_tasks() = TaskAt(-1, assay::v1::TASK_FAILED);  // nor this
  ApplyJobChanges(update, &seen);
  EXPECT_EQ(seen.state(), assay::v1::JOB_RUNNING);
  EXPECT_EQ(seen.tasks_done(), 1);
  ASSERT_EQ(seen.tasks_size(), 3);
  EXPECT_EQ(seen.tasks(0).state(), assay::v1::TASK_QUEUED);
  EXPECT_EQ(seen.tasks(1).state(), assay::v1::TASK_SUCCEEDED);
  EXPECT_EQ(seen.tasks(2).state(), assay::v1::TASK_QUEUED);
}

constexpr char kThreeCells[] =
    "matrix:\n  n: [1, 2, 3]\nsteps:\n  - id: s\n    run: echo ${{ matrix.n }}\n    cache: false\n";

TEST_F(JobManagerTest, AWatcherIsSentOnlyTheTasksThatChangedAndPutsTheJobBackTogether) {
  auto session = Connect("w");
  const std::string id = Submit(kThreeCells);
  uint64_t version = 0;
  Job seen;
  auto first = manager_->GetJobChanges(id, &version);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->tasks_size(), 3) << "the first message is the whole job";
  ApplyJobChanges(*first, &seen);
  ExpectSame(seen, *manager_->GetJob(id, true));

  auto nothing = manager_->GetJobChanges(id, &version);
  ASSERT_TRUE(nothing.ok());
  EXPECT_EQ(nothing->tasks_size(), 0) << "nothing changed since";
  EXPECT_EQ(nothing->id(), id) << "the header still comes";

  // One slot: one task runs and finishes; the next one starts.
  auto assignment = NextAssignment(*session);
  ASSERT_TRUE(Finish("w", assignment, 0).ok());
  auto changed = manager_->GetJobChanges(id, &version);
  ASSERT_TRUE(changed.ok());
  ASSERT_EQ(changed->tasks_size(), 2) << "the finished task and the one that started after it";
  EXPECT_EQ(changed->tasks(0).state(), assay::v1::TASK_SUCCEEDED);
  EXPECT_EQ(changed->tasks(1).state(), assay::v1::TASK_RUNNING);
  ApplyJobChanges(*changed, &seen);
  ExpectSame(seen, *manager_->GetJob(id, true));

  for (int i = 0; i < 2; ++i) ASSERT_TRUE(Finish("w", NextAssignment(*session), 0).ok());
  auto last = manager_->GetJobChanges(id, &version);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->state(), assay::v1::JOB_SUCCEEDED);
  ApplyJobChanges(*last, &seen);
  ExpectSame(seen, *manager_->GetJob(id, true));
}

TEST_F(JobManagerTest, AJobNoLongerInMemoryComesWholeFromTheStore) {
  auto session = Connect("w");
  const std::string id = Submit(kOneStep);
  uint64_t version = 0;
  ASSERT_TRUE(manager_->GetJobChanges(id, &version).ok());
  ASSERT_TRUE(Finish("w", NextAssignment(*session), 0).ok());
  Open();  // a restart: the finished job is only in the store
  auto job = manager_->GetJobChanges(id, &version);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->tasks_size(), 1);
  EXPECT_EQ(job->state(), assay::v1::JOB_SUCCEEDED);
  EXPECT_EQ(version, 0u);
}

}  // namespace
}  // namespace assay
