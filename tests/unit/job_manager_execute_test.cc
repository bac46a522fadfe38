// JobManager's remote execution (REAPI Execute): a job per invocation, joining identical actions in
// flight, platforms, idle jobs ending, abandoned actions cancelled, and all of it across a restart.
// A fake clock drives the timeouts; real RocksDB holds the jobs.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/unit/job_manager_fixture.h"

namespace assay {
namespace {

class JobManagerExecuteTest : public JobManagerTest {
 protected:
  // An action (`echo NAME`, empty input root) in the CAS, as ExecuteIntake would have checked it.
  RemoteAction Action(const std::string& name, const std::string& invocation = "inv-1",
                      std::vector<std::string> labels = {}) {
    RemoteAction out;
    out.command.add_arguments("/bin/echo");
    out.command.add_arguments(name);
    const reapi::Directory empty;
    const Digest root = Put(empty.SerializeAsString());
    *out.action.mutable_command_digest() = Put(out.command.SerializeAsString()).ToProto();
    *out.action.mutable_input_root_digest() = root.ToProto();
    out.action_digest = Put(out.action.SerializeAsString());
    out.required_labels = std::move(labels);
    out.invocation_id = invocation;
    out.tool = "bazel 4.2.3";
    out.mnemonic = "Genrule";
    return out;
  }
  Digest Put(const std::string& bytes) {
    const Digest d = Digest::OfBytes(bytes);
    EXPECT_TRUE(blobs_->Put(d, bytes).ok());
    return d;
  }
  JobManager::ExecuteTicket Execute(const RemoteAction& action) {
    auto ticket = manager_->Execute(action);
    EXPECT_TRUE(ticket.ok()) << ticket.status();
    return ticket.value_or(JobManager::ExecuteTicket{});
  }
  assay::v1::Task Task(const JobManager::ExecuteTicket& t) { return manager_->GetTask(t.job_id, t.index).value(); }
  // Advances the fake clock and runs the once-a-second tick.
  void Pass(absl::Duration d) {
    clock_.Advance(d);
    manager_->Tick();
  }
};

TEST_F(JobManagerExecuteTest, AnInvocationsActionsAreOneJobAndAnIdenticalActionInFlightJoins) {
  auto worker = Connect("w", 1);
  const RemoteAction a = Action("a"), b = Action("b");
  const auto first = Execute(a);
  EXPECT_FALSE(first.joined);
  const auto joined = Execute(a);
  EXPECT_TRUE(joined.joined);
  EXPECT_EQ(joined.job_id, first.job_id);
  EXPECT_EQ(joined.index, first.index);
  const auto second = Execute(b);
  EXPECT_EQ(second.job_id, first.job_id);
  EXPECT_EQ(second.index, 1);
  const auto other = Execute(Action("a", "inv-2"));  // another invocation: the same action joins across jobs
  EXPECT_TRUE(other.joined);
  const auto elsewhere = Execute(Action("c", "inv-2"));
  EXPECT_NE(elsewhere.job_id, first.job_id);

  auto job = manager_->GetJob(first.job_id, true).value();
  EXPECT_EQ(job.name(), "bazel");
  EXPECT_EQ(job.labels().at("invocation"), "inv-1");
  EXPECT_TRUE(job.open());
  ASSERT_EQ(job.tasks_size(), 2);
  EXPECT_EQ(job.tasks(0).step(), "Genrule");
  EXPECT_EQ(job.tasks(0).cell(), a.action_digest.hash().substr(0, 12));
  EXPECT_TRUE(job.tasks(0).spec().remote());

  // The worker gets the client's own action; once it ran, the same action runs anew, not joined.
  const assay::v1::Assignment assignment = NextAssignment(*worker);
  EXPECT_EQ(assignment.action_digest().hash(), a.action_digest.hash());
  EXPECT_EQ(assignment.command().arguments(1), "a");
  ASSERT_TRUE(Finish("w", assignment, 0).ok());
  EXPECT_EQ(Task(first).state(), assay::v1::TASK_SUCCEEDED);
  const auto again = Execute(a);
  EXPECT_FALSE(again.joined);
  EXPECT_EQ(Task(again).id(), absl::StrCat(a.action_digest.hash().substr(0, 12), "-2/Genrule"));
}

TEST_F(JobManagerExecuteTest, DoNotCacheIsNeverJoined) {
  Connect("w", 1);
  RemoteAction a = Action("a");
  a.action.set_do_not_cache(true);
  EXPECT_NE(Execute(a).index, Execute(a).index);
}

TEST_F(JobManagerExecuteTest, AnOpenJobEndsOnceIdleAtItsLastTasksEnd) {
  auto worker = Connect("w", 1);
  const auto t = Execute(Action("a"));
  ASSERT_TRUE(Finish("w", NextAssignment(*worker), 0).ok());
  const int64_t done_at = Task(t).finished_at_ms();
  Pass(absl::Seconds(10));
  EXPECT_EQ(manager_->GetJob(t.job_id, false)->state(), assay::v1::JOB_RUNNING) << "still open within the idle time";
  Pass(absl::Seconds(25));
  auto job = manager_->GetJob(t.job_id, false).value();
  EXPECT_EQ(job.state(), assay::v1::JOB_SUCCEEDED);
  EXPECT_FALSE(job.open());
  EXPECT_EQ(job.finished_at_ms(), done_at);
  // The invocation's next action opens a new job.
  EXPECT_NE(Execute(Action("b")).job_id, t.job_id);
}

TEST_F(JobManagerExecuteTest, AnActionNoStreamFollowsIsCancelledAfterTheGraceUnlessOneComesBack) {
  auto worker = Connect("w", 1);
  const auto running = Execute(Action("a"));
  const auto queued = Execute(Action("b"));
  const assay::v1::Assignment assignment = NextAssignment(*worker);
  ASSERT_EQ(Task(running).state(), assay::v1::TASK_RUNNING);
  manager_->FollowRemoteTask(running.job_id, running.index, false);
  manager_->FollowRemoteTask(queued.job_id, queued.index, false);
  // The worker keeps its lease (heartbeats) while the clock passes the grace.
  auto pass_alive = [&](absl::Duration d) {
    for (absl::Duration passed; passed < d; passed += absl::Seconds(5)) {
      assay::v1::Heartbeat heartbeat;
      *heartbeat.add_leases() = assignment.lease();
      manager_->OnHeartbeat("w", heartbeat);
      Pass(absl::Seconds(5));
    }
  };
  pass_alive(absl::Seconds(30));
  manager_->FollowRemoteTask(queued.job_id, queued.index, true);  // WaitExecution within the grace
  pass_alive(absl::Seconds(35));
  EXPECT_EQ(Task(running).state(), assay::v1::TASK_CANCELLED);
  EXPECT_TRUE(absl::StrContains(Task(running).message(), "no client has waited")) << Task(running).message();
  auto cancel = worker->Next(absl::ZeroDuration());  // the worker is told to stop it
  ASSERT_TRUE(cancel.has_value());
  EXPECT_TRUE(cancel->has_cancel());
  EXPECT_NE(Task(queued).state(), assay::v1::TASK_CANCELLED);
}

TEST_F(JobManagerExecuteTest, APlatformNoKnownWorkerOffersFailsAtOnceButWithNoWorkerYetItWaits) {
  const auto waiting = manager_->Execute(Action("early", "inv-1", {"pool=gpu"}));
  ASSERT_TRUE(waiting.ok()) << "no worker known yet (a coordinator just started): the action waits";
  Connect("w", 1);
  auto refused = manager_->Execute(Action("late", "inv-1", {"pool=gpu"}));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "pool=gpu")) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "w")) << refused.status();
}

TEST_F(JobManagerExecuteTest, AfterARestartTheOpenJobAndItsActionsInFlightAreKnownAgain) {
  Connect("w", 1);
  const RemoteAction a = Action("a");
  const auto before = Execute(a);
  Open();  // a restart: the same database, a new JobManager
  EXPECT_EQ(Task(before).state(), assay::v1::TASK_QUEUED) << "queued again, for the next worker";
  const auto joined = Execute(a);
  EXPECT_TRUE(joined.joined) << "the action in flight is joined after the restart";
  EXPECT_EQ(joined.job_id, before.job_id);
  EXPECT_EQ(Execute(Action("b")).job_id, before.job_id) << "the invocation's open job takes its next action";
  // Nobody came back for `a` within the grace (the joined Execute above let go): it is cancelled.
  manager_->FollowRemoteTask(joined.job_id, joined.index, false);
  Pass(absl::Seconds(61));
  EXPECT_EQ(Task(before).state(), assay::v1::TASK_CANCELLED);
}

}  // namespace
}  // namespace assay
