// The Notifier over a real RocksDB with a stand-in for HTTP: events are written with the job state
// they tell of and sent only once written, in order per target, retried with backoff, remembered
// across a restart, and `recovered` fires only on the first success after a failure.
#include "coordinator/notifier.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/base/file_util.h"
#include "coordinator/families.h"

namespace assay {
namespace {

using assay::v1::Job;
using assay::v1::Notification;

// Answers requests with the statuses queued by the test (200 once they run out); records each.
class FakeReceiver {
 public:
  Notifier::Sender sender() {
    return [this](const HttpRequest& r, const HttpOptions&) -> absl::StatusOr<HttpResponse> {
      absl::MutexLock lock(&mu_);
      requests_.push_back(r);
      int status = 200;
      if (!answers_.empty()) {
        status = answers_.front();
        answers_.erase(answers_.begin());
      }
      if (status == 0) return absl::UnavailableError("connection refused");
      return HttpResponse{status, "ok"};
    };
  }
  void Answer(std::vector<int> statuses) {
    absl::MutexLock lock(&mu_);
    answers_ = std::move(statuses);
  }
  // Waits (up to 10 s) until `n` requests have arrived; returns them.
  std::vector<HttpRequest> WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return requests_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return requests_;
  }
  size_t count() {
    absl::MutexLock lock(&mu_);
    return requests_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<int> answers_ ABSL_GUARDED_BY(mu_);
};

class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = Database::Open(dir_.path() / "db", CoordinatorDatabaseOptions()).value();
    config_.retry_initial = absl::Milliseconds(20);
    config_.retry_max = absl::Milliseconds(80);
    config_.targets["hook"] = NotifyTarget{"hook", NotifyTarget::Kind::kWebhook, "http://127.0.0.1:1/", "key", "", ""};
  }

  std::unique_ptr<Notifier> Make(const std::vector<Job>& recent = {}) {
    auto notifier = std::make_unique<Notifier>(db_.get(), config_, RealClock::Get(), receiver_.sender());
    EXPECT_TRUE(notifier->Load(recent).ok());
    notifier->Start([this](const std::string& id) -> absl::StatusOr<Job> {
      absl::MutexLock lock(&jobs_mu_);
      auto it = jobs_.find(id);
      if (it == jobs_.end()) return absl::NotFoundError("no job " + id);
      return it->second;
    });
    return notifier;
  }

  Job MakeJob(const std::string& id, std::vector<std::string> on = {"started", "success", "failure", "cancelled", "recovered"}) {
    Job job;
    job.set_id(id);
    job.set_name("fw");
    (*job.mutable_labels())["branch"] = "main";
    auto* spec = job.add_notify();
    spec->set_to("hook");
    for (const auto& e : on) spec->add_on(e);
    absl::MutexLock lock(&jobs_mu_);
    jobs_[id] = job;
    return job;
  }

  // The job moves to `state`: its events are written like JobManager's section does, then sent.
  void Move(Notifier& notifier, Job* job, assay::v1::JobState state) {
    const assay::v1::JobState previous = job->state() == assay::v1::JOB_STATE_UNSPECIFIED ? assay::v1::JOB_QUEUED : job->state();
    job->set_state(state);
    {
      absl::MutexLock lock(&jobs_mu_);
      jobs_[job->id()] = *job;
    }
    GroupCommit::Change change;
    notifier.OnJobStateLocked(*job, previous, &change);
    ASSERT_TRUE(db_->Write(&change.batch, change.sync).ok());
    for (auto& after : change.after) after();
  }

  std::vector<std::string> Events(const std::vector<HttpRequest>& requests) {
    std::vector<std::string> out;
    for (const auto& r : requests) {
      for (const auto& [name, value] : r.headers) {
        if (name == "X-Assay-Event") out.push_back(value);
      }
    }
    return out;
  }

  ScopedTempDir dir_;
  std::unique_ptr<Database> db_;
  NotifyConfig config_;
  FakeReceiver receiver_;
  absl::Mutex jobs_mu_;
  std::map<std::string, Job> jobs_ ABSL_GUARDED_BY(jobs_mu_);
};

TEST_F(NotifierTest, EventsAreSentInOrderAndRecordedAsDelivered) {
  auto notifier = Make();
  Job job = MakeJob("1");
  Move(*notifier, &job, assay::v1::JOB_RUNNING);
  Move(*notifier, &job, assay::v1::JOB_FAILED);
  EXPECT_EQ(Events(receiver_.WaitFor(2)), (std::vector<std::string>{"started", "failure"}));
  notifier->Stop();
  auto list = notifier->List("1");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].event(), "started");
  EXPECT_EQ((*list)[1].state(), Notification::DELIVERED);
  EXPECT_EQ((*list)[1].http_status(), 200);
  EXPECT_EQ((*list)[1].kind(), "webhook");
  EXPECT_EQ(notifier->GetStats().targets["hook"].delivered, 2);
}

TEST_F(NotifierTest, RecoveredFiresOnlyOnTheFirstSuccessAfterAFailure) {
  auto notifier = Make();
  Job first = MakeJob("1", {"failure", "recovered"});
  Move(*notifier, &first, assay::v1::JOB_SUCCEEDED);   // no failure before: nothing
  Job second = MakeJob("2", {"failure", "recovered"});
  Move(*notifier, &second, assay::v1::JOB_FAILED);
  Job third = MakeJob("3", {"failure", "recovered"});
  Move(*notifier, &third, assay::v1::JOB_SUCCEEDED);   // recovered
  Job fourth = MakeJob("4", {"failure", "recovered"});
  Move(*notifier, &fourth, assay::v1::JOB_SUCCEEDED);  // still fine: nothing
  Job other_branch = MakeJob("5", {"failure", "recovered"});
  (*other_branch.mutable_labels())["branch"] = "dev";
  Move(*notifier, &other_branch, assay::v1::JOB_SUCCEEDED);  // its branch never failed: nothing
  auto requests = receiver_.WaitFor(2);
  notifier->Stop();
  EXPECT_EQ(Events(receiver_.WaitFor(2)), (std::vector<std::string>{"failure", "recovered"}));
  EXPECT_EQ(receiver_.count(), 2u);
  EXPECT_TRUE(notifier->List("4")->empty());
}

TEST_F(NotifierTest, TheLastOutcomeBeforeARestartCounts) {
  Job failed;
  failed.set_id("9");
  failed.set_name("fw");
  failed.set_state(assay::v1::JOB_FAILED);
  (*failed.mutable_labels())["branch"] = "main";
  auto notifier = Make({failed});
  Job job = MakeJob("10", {"recovered"});
  Move(*notifier, &job, assay::v1::JOB_SUCCEEDED);
  EXPECT_EQ(Events(receiver_.WaitFor(1)), (std::vector<std::string>{"recovered"}));
}

TEST_F(NotifierTest, AReceiverThatFailsIsTriedAgainWithBackoffAndLaterEventsWait) {
  receiver_.Answer({503, 0, 500});  // down three times, then 200
  auto notifier = Make();
  Job job = MakeJob("1");
  Move(*notifier, &job, assay::v1::JOB_RUNNING);
  Move(*notifier, &job, assay::v1::JOB_SUCCEEDED);
  auto requests = receiver_.WaitFor(5);
  EXPECT_EQ(Events(requests), (std::vector<std::string>{"started", "started", "started", "started", "success"}));
  notifier->Stop();
  auto list = notifier->List("1");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)[0].attempts(), 4);
  EXPECT_EQ((*list)[0].state(), Notification::DELIVERED);
  EXPECT_EQ(notifier->GetStats().targets["hook"].retries, 3);
  // Each delivery id is the same on every attempt: receivers can drop repeats.
  std::vector<std::string> ids;
  for (const auto& r : requests) {
    for (const auto& [name, value] : r.headers) {
      if (name == "X-Assay-Delivery") ids.push_back(value);
    }
  }
  EXPECT_EQ(ids[0], ids[3]);
  EXPECT_NE(ids[3], ids[4]);
}

TEST_F(NotifierTest, ARefusalIsGivenUpAndNamed) {
  receiver_.Answer({401});
  auto notifier = Make();
  Job job = MakeJob("1", {"failure"});
  Move(*notifier, &job, assay::v1::JOB_FAILED);
  receiver_.WaitFor(1);
  notifier->Stop();
  auto list = notifier->List("1");
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].state(), Notification::FAILED);
  EXPECT_EQ((*list)[0].error(), "HTTP 401: ok");
  EXPECT_EQ(receiver_.count(), 1u);
}

TEST_F(NotifierTest, APendingNotificationIsSentAfterARestart) {
  receiver_.Answer({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  {
    auto notifier = Make();
    Job job = MakeJob("1", {"failure"});
    Move(*notifier, &job, assay::v1::JOB_FAILED);
    receiver_.WaitFor(2);
    notifier->Stop();
    EXPECT_EQ(notifier->List("1")->at(0).state(), Notification::PENDING);
  }
  receiver_.Answer({});  // the receiver is back
  const size_t before = receiver_.count();
  auto restarted = Make();
  auto requests = receiver_.WaitFor(before + 1);
  restarted->Stop();
  EXPECT_EQ(Events({requests.back()}), (std::vector<std::string>{"failure"}));
  EXPECT_EQ(restarted->List("1")->at(0).state(), Notification::DELIVERED);
}

TEST_F(NotifierTest, NothingIsSentBeforeItsBatchIsWritten) {
  auto notifier = Make();
  Job job = MakeJob("1", {"failure"});
  job.set_state(assay::v1::JOB_FAILED);
  GroupCommit::Change change;
  notifier->OnJobStateLocked(job, assay::v1::JOB_RUNNING, &change);
  EXPECT_EQ(change.batch.Count(), 1u);
  EXPECT_TRUE(change.sync);
  EXPECT_TRUE(notifier->List("1")->empty());  // not written: not there
  notifier->Stop();
  EXPECT_EQ(receiver_.count(), 0u);
}

}  // namespace
}  // namespace assay
