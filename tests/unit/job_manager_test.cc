// JobManager logic with a fake clock, real RocksDB and in-process worker sessions (no gRPC).
#include "coordinator/job_manager.h"

#include <gtest/gtest.h>

#include <map>

#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "common/base/file_util.h"
#include "common/rocksdb/rocksdb_blob_store.h"
#include "coordinator/families.h"
#include "tests/unit/job_manager_fixture.h"

namespace assay {
namespace {

TEST_F(JobManagerTest, ExpiredLeaseRequeuesAndALateResultIsRefused) {
  auto session = Connect("w");
  std::string job = Submit(kOneStep);
  auto first = NextAssignment(*session);
  EXPECT_EQ(first.lease().attempt(), 1);
  EXPECT_EQ(first.command().arguments(2), "echo hi");

  clock_.Advance(kTtl);
  manager_->Tick();
  EXPECT_EQ(Task0(job).attempt(), 1) << "at exactly the TTL the lease holds";
  clock_.Advance(absl::Nanoseconds(1));
  manager_->Tick();
  auto cancel = session->Next(absl::ZeroDuration());
  ASSERT_TRUE(cancel && cancel->has_cancel());
  EXPECT_FALSE(session->Next(absl::ZeroDuration()).has_value()) << "a worker silent past its lease gets no new task";
  manager_->OnHeartbeat("w", assay::v1::Heartbeat());  // heard from again (its old lease is not renewed)
  auto second = NextAssignment(*session);
  EXPECT_EQ(second.lease().attempt(), 2);
  EXPECT_NE(second.lease().lease_id(), first.lease().lease_id());

  EXPECT_EQ(Finish("w", first, 0).code(), absl::StatusCode::kFailedPrecondition) << "fenced: the lease expired";
  EXPECT_EQ(Task0(job).state(), assay::v1::TASK_RUNNING);
  ASSERT_TRUE(Finish("w", second, 0).ok());
  EXPECT_EQ(Task0(job).state(), assay::v1::TASK_SUCCEEDED);
  EXPECT_EQ(manager_->GetJob(job, false)->state(), assay::v1::JOB_SUCCEEDED);
}

// A task's progress that the farm redoes after a crash (prepared, queued, handed to a worker, the
// job started) is written without waiting for the disk; its result is fsynced before anyone hears.
TEST_F(JobManagerTest, HandingATaskOutDoesNotWaitForTheDiskButItsResultDoes) {
  auto session = Connect("w");
  const std::string job = Submit(kOneStep);
  const auto a = NextAssignment(*session);
  const JobManager::Stats handed_out = manager_->GetStats();
  EXPECT_EQ(Task0(job).state(), assay::v1::TASK_RUNNING);
  EXPECT_GT(handed_out.state_writes, 0) << "the task's progress is written";
  EXPECT_EQ(handed_out.state_writes_synced, 0) << "none of it waited for the disk";

  ASSERT_TRUE(Finish("w", a, 0).ok());
  const JobManager::Stats finished = manager_->GetStats();
  EXPECT_GT(finished.state_writes_synced, 0) << "the result waited for the disk";
  // What was written reads back from the store as it is in memory (a restart finds it).
  auto stored = job_store_->LoadJob(1, /*with_tasks=*/true);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->state(), assay::v1::JOB_SUCCEEDED);
  EXPECT_EQ(stored->tasks(0).state(), assay::v1::TASK_SUCCEEDED);
}

TEST_F(JobManagerTest, ARerunOfAPipelineQueuesItsLongestChainsFirst) {
  constexpr char kPipeline[] = R"(name: lpt
matrix:
  n: [a, b, c]
steps:
  - id: build
    run: make
    cache: false
  - id: test
    needs: [build]
    run: ./test
    cache: false
)";
  // Last runs (ms): a build 10 + test 5; b build 20 + test 70; c build 40 + test 1.
  const std::map<std::string, int64_t> ran = {{"a/build", 10}, {"a/test", 5},  {"b/build", 20},
                                              {"b/test", 70},  {"c/build", 40}, {"c/test", 1}};
  auto session = Connect("w");
  auto finish = [&](const assay::v1::Assignment& a) {
    assay::v1::TaskResult result;
    *result.mutable_lease() = a.lease();
    auto* run = result.mutable_result()->mutable_execution_metadata();
    run->mutable_execution_start_timestamp()->set_seconds(100);
    run->mutable_execution_completed_timestamp()->set_seconds(100);
    run->mutable_execution_completed_timestamp()->set_nanos(static_cast<int32_t>(ran.at(a.lease().task_id()) * 1'000'000));
    return manager_->OnResult("w", result);
  };
  auto run_job = [&]() {
    std::vector<std::string> order;
    const std::string id = Submit(kPipeline);
    for (int i = 0; i < 6; ++i) {
      auto a = NextAssignment(*session);
      order.push_back(a.lease().task_id());
      EXPECT_TRUE(finish(a).ok());
    }
    EXPECT_EQ(manager_->GetJob(id, false)->state(), assay::v1::JOB_SUCCEEDED);
    return order;
  };
  const std::vector<std::string> first = run_job();
  EXPECT_EQ(first[0], "a/build") << "no history: the pipeline's order";
  // Then by the longest chain below each ready task: b (20 + 70) before c (40 + 1) before a (10 + 5).
  // b's test becomes ready (prepared) once b's build has ended and its slot gone to c's build; it is
  // then the longest queued task and goes before a's build.
  EXPECT_EQ(run_job(), (std::vector<std::string>{"b/build", "c/build", "b/test", "a/build", "c/test", "a/test"}));
}

TEST_F(JobManagerTest, HeartbeatsKeepALeaseAlive) {
  auto session = Connect("w");
  std::string job = Submit(kOneStep);
  auto a = NextAssignment(*session);
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(kTtl - absl::Seconds(1));
    assay::v1::Heartbeat beat;
    *beat.add_leases() = a.lease();
    manager_->OnHeartbeat("w", beat);
    manager_->Tick();
  }
  EXPECT_EQ(Task0(job).attempt(), 1);
  EXPECT_EQ(Task0(job).state(), assay::v1::TASK_RUNNING);
}

TEST_F(JobManagerTest, AVanishedWorkersTaskGoesToAnother) {
  auto w1 = Connect("w1");
  std::string job = Submit(kOneStep);
  auto a = NextAssignment(*w1);
  auto w2 = Connect("w2");
  manager_->WorkerDisconnected(w1);
  auto b = NextAssignment(*w2);
  EXPECT_EQ(b.lease().attempt(), 2);
  EXPECT_FALSE(Finish("w1", a, 0).ok());
  ASSERT_TRUE(Finish("w2", b, 0).ok());
  EXPECT_EQ(Task0(job).worker(), "w2");
}

TEST_F(JobManagerTest, RetryRunsAFailedStepAgain) {
  auto session = Connect("w");
  std::string job = Submit("steps:\n  - id: s\n    run: flaky\n    retry: 1\n");
  ASSERT_TRUE(Finish("w", NextAssignment(*session), 1).ok());
  EXPECT_EQ(Task0(job).state(), assay::v1::TASK_RUNNING);
  auto again = NextAssignment(*session);
  EXPECT_EQ(again.lease().attempt(), 2);
  ASSERT_TRUE(Finish("w", again, 1).ok());
  EXPECT_EQ(Task0(job).state(), assay::v1::TASK_FAILED);
  EXPECT_EQ(Task0(job).message(), "exit code 1");
}

TEST_F(JobManagerTest, StatsCountTasksWorkersAndFinishedWork) {
  std::string job = Submit("steps:\n  - id: a\n    run: one\n    cache: false\n"
                           "  - id: b\n    needs: [a]\n    run: two\n    cache: false\n");
  JobManager::Stats s = manager_->GetStats();
  EXPECT_EQ(s.jobs_active, 1);
  EXPECT_EQ(s.tasks_queued, 1);   // a waits for a worker
  EXPECT_EQ(s.tasks_pending, 1);  // b waits for a
  EXPECT_EQ(s.workers_connected, 0);

  auto session = Connect("w", 3);
  s = manager_->GetStats();
  EXPECT_EQ(s.tasks_running, 1);
  EXPECT_EQ(s.tasks_queued, 0);
  EXPECT_EQ(s.workers_connected, 1);
  EXPECT_EQ(s.slots, 3);
  EXPECT_EQ(s.slots_busy, 1);

  ASSERT_TRUE(Finish("w", NextAssignment(*session), 0).ok());
  ASSERT_TRUE(Finish("w", NextAssignment(*session), 2).ok());
  s = manager_->GetStats();
  EXPECT_EQ(s.jobs_active, 0);
  EXPECT_EQ(s.tasks_running + s.tasks_queued + s.tasks_pending, 0);
  EXPECT_EQ(s.slots_busy, 0);
  EXPECT_EQ((s.tasks_finished[{"TASK_SUCCEEDED", false}]), 1);
  EXPECT_EQ((s.tasks_finished[{"TASK_FAILED", false}]), 1);
  EXPECT_EQ(s.jobs_finished["JOB_FAILED"], 1);
  EXPECT_EQ(s.jobs_finished.count("JOB_SUCCEEDED"), 0u);

  manager_->WorkerDisconnected(session);
  EXPECT_EQ(manager_->GetStats().workers_connected, 0);
  EXPECT_EQ(manager_->GetJob(job, false)->state(), assay::v1::JOB_FAILED);
}

TEST_F(JobManagerTest, UnknownJobsTasksAndWorkersAreRefused) {
  auto session = Connect("w");
  Submit(kOneStep);
  auto a = NextAssignment(*session);
  assay::v1::Assignment forged = a;
  forged.mutable_lease()->set_task_id("no/such/task");
  EXPECT_EQ(Finish("w", forged, 0).code(), absl::StatusCode::kNotFound);
  forged = a;
  forged.mutable_lease()->set_job_id("999");
  EXPECT_EQ(Finish("w", forged, 0).code(), absl::StatusCode::kNotFound);
  forged = a;
  forged.mutable_lease()->set_lease_id("guessed");
  EXPECT_EQ(Finish("w", forged, 0).code(), absl::StatusCode::kFailedPrecondition);
  assay::v1::WorkerHello bad;
  bad.set_worker_id("");
  bad.set_slots(1);
  EXPECT_EQ(manager_->WorkerConnected(bad, std::make_shared<WorkerSession>("")).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager_->GetJob("abc", false).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(JobManagerTest, ARunningTasksLogKeepsTheDropNoteAndAFinishedOnesServesTheStoredStdoutInItsPlace) {
  auto session = Connect("w");
  std::string job = Submit(kOneStep);
  auto a = NextAssignment(*session);
  auto log = [&](assay::v1::LogChunk::Stream stream, int64_t offset, const std::string& data) {
    assay::v1::TaskLog chunk;
    *chunk.mutable_lease() = a.lease();
    chunk.set_stream(stream);
    chunk.set_offset(offset);
    chunk.set_data(data);
    return chunk;
  };
  manager_->OnLog("w", log(assay::v1::LogChunk::STDOUT, 0, "1\n"));
  assay::v1::TaskLog note = log(assay::v1::LogChunk::SYSTEM, 0, "[assay] 4 bytes of output were dropped here\n");
  note.mutable_gap()->set_stdout_offset(2);
  note.mutable_gap()->set_stdout_bytes(4);
  manager_->OnLog("w", note);
  manager_->OnLog("w", log(assay::v1::LogChunk::STDOUT, 6, "4\n"));
  auto read = [&] {
    std::string out, text;
    JobManager::LogCursor cursor;
    auto chunks = manager_->ReadLogs(job, "", &cursor, 1000);
    EXPECT_TRUE(chunks.ok()) << chunks.status();
    for (const auto& c : chunks.ok() ? chunks->chunks : std::vector<assay::v1::LogChunk>{}) {
      text += c.data();
      if (c.stream() == assay::v1::LogChunk::STDOUT) out += c.data();
    }
    return std::pair{out, text};
  };
  auto [live_out, live_text] = read();
  EXPECT_EQ(live_out, "1\n4\n");
  EXPECT_TRUE(absl::StrContains(live_text, "1\n[assay] 4 bytes of output were dropped here\n4\n")) << live_text;

  const std::string stdout_bytes = "1\n2\n3\n4\n";
  ASSERT_TRUE(blobs_->Put(Digest::OfBytes(stdout_bytes), stdout_bytes).ok());
  assay::v1::TaskResult result;
  *result.mutable_lease() = a.lease();
  *result.mutable_result()->mutable_stdout_digest() = Digest::OfBytes(stdout_bytes).ToProto();
  ASSERT_TRUE(manager_->OnResult("w", result).ok());
  auto [out, text] = read();
  EXPECT_EQ(out, stdout_bytes) << text;
  EXPECT_FALSE(absl::StrContains(text, "dropped")) << text;
}

// A result's small outputs travel with it and go to the CAS unsynced: the result's record, synced
// after them in the same database, carries them to the disk. One fsync a result, not two.
TEST_F(JobManagerTest, AResultsSmallOutputsReachTheDiskWithItsRecordInOneSyncedWrite) {
  auto session = Connect("w");
  const std::string job = Submit(kOneStep);
  const assay::v1::Assignment a = NextAssignment(*session);
  const std::string out_bytes = "hi\n", file_bytes = "an output file";
  assay::v1::TaskResult result;
  *result.mutable_lease() = a.lease();
  *result.mutable_result()->mutable_stdout_digest() = Digest::OfBytes(out_bytes).ToProto();
  auto* file = result.mutable_result()->add_output_files();
  file->set_path("out.txt");
  *file->mutable_digest() = Digest::OfBytes(file_bytes).ToProto();
  for (const std::string* bytes : {&out_bytes, &file_bytes}) {
    auto* blob = result.add_inline_blobs();
    *blob->mutable_digest() = Digest::OfBytes(*bytes).ToProto();
    blob->set_data(*bytes);
  }
  const uint64_t synced = db_->synced_writes();
  ASSERT_TRUE(manager_->OnResult("w", result).ok());
  EXPECT_EQ(db_->synced_writes(), synced + 1) << "the outputs and the result's record: one fsync";
  EXPECT_EQ(Task0(job).state(), assay::v1::TASK_SUCCEEDED);
  EXPECT_EQ(blobs_->Get(Digest::OfBytes(file_bytes)).value(), file_bytes);
  Open();
  EXPECT_EQ(Task0(job).state(), assay::v1::TASK_SUCCEEDED);
  EXPECT_EQ(blobs_->Get(Digest::OfBytes(out_bytes)).value(), out_bytes);
  EXPECT_EQ(blobs_->Get(Digest::OfBytes(file_bytes)).value(), file_bytes);
}

TEST_F(JobManagerTest, ARestartKeepsJobsAndQueuesInterruptedTasksAgain) {
  auto session = Connect("w");
  std::string job = Submit("steps:\n  - id: a\n    run: one\n  - id: b\n    needs: [a]\n    run: two\n");
  ASSERT_TRUE(Finish("w", NextAssignment(*session), 0).ok());
  auto b = NextAssignment(*session);  // b is running when the coordinator goes away
  session.reset();
  Open();
  auto recovered = manager_->GetJob(job, true);
  ASSERT_TRUE(recovered.ok());
  EXPECT_EQ(recovered->tasks(0).state(), assay::v1::TASK_SUCCEEDED);
  EXPECT_EQ(recovered->tasks(1).state(), assay::v1::TASK_QUEUED);
  auto fresh = Connect("w");
  auto again = NextAssignment(*fresh);
  EXPECT_EQ(again.lease().task_id(), "b");
  EXPECT_EQ(again.lease().attempt(), 2);
  EXPECT_FALSE(Finish("w", b, 0).ok()) << "the lease from before the restart is void";
  ASSERT_TRUE(Finish("w", again, 0).ok());
  EXPECT_EQ(manager_->GetJob(job, false)->state(), assay::v1::JOB_SUCCEEDED);
  // The log goes on after what was stored before the restart; nothing is overwritten.
  std::string log;
  JobManager::LogCursor cursor;
  auto read = manager_->ReadLogs(job, "b", &cursor, 1000);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->over);
  for (const auto& c : read->chunks) log += c.data();
  size_t first = log.find("attempt 1 on worker w"), restarted = log.find("coordinator restarted"),
         second = log.find("attempt 2 on worker w");
  ASSERT_NE(first, std::string::npos) << log;
  ASSERT_NE(restarted, std::string::npos) << log;
  ASSERT_NE(second, std::string::npos) << log;
  EXPECT_LT(first, restarted);
  EXPECT_LT(restarted, second);
}

TEST_F(JobManagerTest, CancelEndsQueuedAndRunningTasksAndTellsTheWorker) {
  auto session = Connect("w");
  std::string job = Submit("matrix:\n  n: [1, 2]\nsteps:\n  - id: s\n    run: sleep 100\n");
  auto running = NextAssignment(*session);
  auto cancelled = manager_->Cancel(job);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), assay::v1::JOB_CANCELLED);
  auto message = session->Next(absl::ZeroDuration());
  ASSERT_TRUE(message && message->has_cancel());
  EXPECT_EQ(message->cancel().lease().task_id(), running.lease().task_id());
  // The worker's report of the killed step frees its slot and changes nothing else.
  ASSERT_TRUE(Finish("w", running, 137).ok());
  EXPECT_EQ(manager_->GetJob(job, false)->state(), assay::v1::JOB_CANCELLED);
  EXPECT_EQ(manager_->Cancel(job).status().code(), absl::StatusCode::kFailedPrecondition);
}

// Actions are built with the lock released: while the CAS write of a new job's action is stuck,
// every other request is still answered.
TEST_F(JobManagerTest, ACasWriteThatStallsDuringSubmitDoesNotStallOtherRequests) {
  assay::v1::SubmitRequest request;
  *request.mutable_source_root() = Tree("steps:\n  - id: a\n    run: 'true'\n").ToProto();
  stalling_->Arm();
  absl::StatusOr<assay::v1::Job> submitted;
  std::thread submit([&] { submitted = manager_->Submit(request); });
  ASSERT_TRUE(stalling_->entered.WaitForNotificationWithTimeout(absl::Seconds(10))) << "no CAS write while submitting";
  absl::Notification answered;
  std::thread other([&] {
    (void)manager_->ListJobs(10);
    (void)manager_->GetStats();
    manager_->Tick();
    answered.Notify();
  });
  const bool in_time = answered.WaitForNotificationWithTimeout(absl::Seconds(10));
  stalling_->Release();
  submit.join();
  other.join();
  EXPECT_TRUE(in_time) << "a stalled CAS write held the JobManager's lock";
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  EXPECT_EQ(submitted->tasks(0).state(), assay::v1::TASK_QUEUED);
}

// Watchers (WatchJob and StreamLogs streams) are pushed to: after a change of their own job is
// written, never before, and never for another job's log chunk.
TEST_F(JobManagerTest, WatchersHearOfAChangeOfTheirJobOnlyOnceItIsWritten) {
  auto session = Connect("w");
  std::string a = Submit("steps:\n  - id: s\n    run: sleep 1\n    cache: false\n");
  std::string b = Submit("steps:\n  - id: s\n    run: sleep 2\n    cache: false\n");
  auto assignment = NextAssignment(*session);  // a's task runs; b's waits
  absl::Mutex mu;
  int calls_a = 0, calls_b = 0;
  std::vector<std::string> stored_states;  // a's task state in the store when its watcher ran
  auto watcher_a = manager_->AddWatcher(a, [&](bool) {
    auto stored = job_store_->LoadJob(std::stoull(a), true);
    absl::MutexLock lock(&mu);
    ++calls_a;
    stored_states.push_back(stored.ok() ? assay::v1::TaskState_Name(stored->tasks(0).state()) : "missing");
  });
  auto watcher_b = manager_->AddWatcher(b, [&](bool) {
    absl::MutexLock lock(&mu);
    ++calls_b;
  });
  ASSERT_TRUE(watcher_a.ok() && watcher_b.ok());
  EXPECT_EQ(manager_->AddWatcher("999", [](bool) {}).status().code(), absl::StatusCode::kNotFound);

  assay::v1::TaskLog log;
  *log.mutable_lease() = assignment.lease();
  log.set_data("hello\n");
  manager_->OnLog("w", log);
  auto called = [&](int* n, int at_least) {
    absl::MutexLock lock(&mu);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return *n >= at_least; };
    return mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  };
  ASSERT_TRUE(called(&calls_a, 1)) << "a log chunk of job a did not reach a's watcher";
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(calls_b, 0) << "a log chunk of job a woke job b's watcher";
  }
  JobManager::LogCursor cursor;
  auto read = manager_->ReadLogs(a, "", &cursor, 100);
  ASSERT_TRUE(read.ok());
  std::string text;
  for (const auto& c : read->chunks) text += c.data();
  EXPECT_NE(text.find("hello"), std::string::npos) << text;

  ASSERT_TRUE(Finish("w", assignment, 0).ok());
  ASSERT_TRUE(called(&calls_a, 2));
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(stored_states.back(), "TASK_SUCCEEDED") << "the watcher ran before the change was on disk";
  }
  manager_->RemoveWatcher(a, *watcher_a);
  manager_->RemoveWatcher(b, *watcher_b);
}

}  // namespace
}  // namespace assay
