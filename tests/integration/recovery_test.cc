// A coordinator that crashes or restarts: how fast the farm is back, and that nothing is lost or
// counted twice when it is killed again and again in the middle of a running matrix.
#include <signal.h>

#include <random>
#include <set>

#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {

namespace fs = std::filesystem;
using assay::v1::Job;
using assay::v1::Task;

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override { farm_.StartCoordinator(); }

  bool AllWorkersConnected(size_t expected) {
    size_t connected = 0;
    for (const auto& w : farm_.Workers()) connected += w.connected() ? 1 : 0;
    return connected == expected;
  }

  Farm farm_;
};

TEST_F(RecoveryTest, WorkersAreBackAndWorkResumesWithinTwoSecondsOfARestart) {
  farm_.StartWorker("w1");
  farm_.StartWorker("w2");
  farm_.StopCoordinator(SIGKILL);
  // Down long enough for a growing backoff to have grown: each worker has tried 8 times. With the
  // old 5 s cap that took ~11 s and left the farm idle ~5 s after the restart.
  for (const std::string id : {"w1", "w2"}) {
    ASSERT_TRUE(WaitFor(
        [&]() { return absl::StrContains(ReadFile(farm_.dir() / ("worker-" + id + ".log")).value_or(""), "(8 tries)"); },
        absl::Seconds(60)))
        << ReadFile(farm_.dir() / ("worker-" + id + ".log")).value_or("");
  }
  auto tree = farm_.WriteTree("after-restart", {{"assay.yaml", "steps:\n  - id: one\n    run: echo resumed\n"}});

  farm_.StartCoordinator();  // returns once it serves
  const absl::Time serving = absl::Now();
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  absl::Time reconnected = absl::InfiniteFuture(), started = absl::InfiniteFuture();
  ASSERT_TRUE(WaitFor(
      [&]() {
        if (reconnected == absl::InfiniteFuture() && AllWorkersConnected(2)) reconnected = absl::Now();
        auto job = farm_.GetJob(*id);
        if (started == absl::InfiniteFuture() && job.ok() && job->tasks(0).state() != assay::v1::TASK_PENDING &&
            job->tasks(0).state() != assay::v1::TASK_QUEUED) {
          started = absl::Now();
        }
        return reconnected != absl::InfiniteFuture() && started != absl::InfiniteFuture();
      },
      absl::Seconds(30)));
  std::cout << "[ figures  ] workers reconnected " << absl::FormatDuration(reconnected - serving)
            << " and the first task started " << absl::FormatDuration(started - serving)
            << " after the coordinator served again\n";
  EXPECT_LT(reconnected - serving, absl::Seconds(2)) << ReadFile(farm_.dir() / "worker-w1.log").value_or("")
                                                     << ReadFile(farm_.dir() / "worker-w2.log").value_or("");
  EXPECT_LT(started - serving, absl::Seconds(2));
  auto job = farm_.WaitJob(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), assay::v1::JOB_SUCCEEDED);
}

// A matrix of 8 cells x 3 dependent steps on 2 workers; the coordinator is killed with SIGKILL at
// random moments 20 times and restarted on the same data, while more jobs are submitted between
// crashes. Every job that `assay submit` acknowledged finishes, each exactly once, with every task
// final once and its outputs wired through to the cell's last step.
TEST_F(RecoveryTest, RepeatedKillDashNineOfTheCoordinatorLosesAndDoublesNothing) {
  farm_.StartWorker("w1", {}, 2);
  farm_.StartWorker("w2", {}, 2);
  auto tree = farm_.WriteTree("chaos", {{"assay.yaml", R"(
name: chaos
matrix:
  board: [a, b, c, d]
  profile: [debug, release]
steps:
  - id: build
    run: sleep 0.0$((RANDOM % 9)) && echo "${{ matrix.board }}-${{ matrix.profile }}" > fw.bin
    outputs: [fw.bin]
  - id: test
    needs: [build]
    run: sleep 0.0$((RANDOM % 9)) && cat fw.bin > tested.txt && echo ok >> tested.txt
    outputs: [tested.txt]
  - id: package
    needs: [test]
    run: cp tested.txt package.txt && echo packaged >> package.txt
    outputs: [package.txt]
)"}});
  const uint64_t seed = std::random_device{}();
  std::mt19937_64 random(seed);
  std::cout << "[ seed     ] " << seed << "\n";
  std::vector<std::string> jobs;
  auto submit = [&]() {
    auto id = farm_.Submit(tree);
    ASSERT_TRUE(id.ok()) << id.status();
    jobs.push_back(*id);
  };
  // Each job gets a distinct source tree (a comment), so no job is served from another's cache.
  auto submit_fresh = [&](int round) {
    auto text = ReadFile(tree / "assay.yaml");
    ASSERT_TRUE(text.ok());
    ASSERT_TRUE(WriteFile(tree / "assay.yaml", absl::StrCat(*text, "# round ", round, "\n")).ok());
    submit();
  };
  submit_fresh(0);
  for (int round = 1; round <= 20; ++round) {
    // A random moment of the running matrix: between 0 and 400 ms after the coordinator served.
    const absl::Time until = absl::Now() + absl::Milliseconds(std::uniform_int_distribution<int>(0, 400)(random));
    WaitFor([&]() { return absl::Now() >= until; }, absl::Seconds(1));
    farm_.StopCoordinator(SIGKILL);
    farm_.StartCoordinator();
    if (round % 5 == 0) submit_fresh(round);
  }
  std::set<std::string> all_ids;
  for (const std::string& id : jobs) {
    auto job = farm_.WaitJob(id, absl::Seconds(120));
    ASSERT_TRUE(job.ok()) << "job " << id << ": " << job.status();
    EXPECT_EQ(job->state(), assay::v1::JOB_SUCCEEDED) << "job " << id;
    EXPECT_EQ(job->tasks_size(), 24);
    EXPECT_EQ(job->task_count(), 24);
    EXPECT_EQ(job->tasks_done(), 24) << "job " << id;
    std::set<std::string> task_ids;
    for (const Task& t : job->tasks()) {
      task_ids.insert(t.id());
      EXPECT_EQ(t.state(), assay::v1::TASK_SUCCEEDED) << "job " << id << " " << t.id() << ": " << t.message();
      EXPECT_GE(t.attempt(), t.cached() ? 0 : 1) << t.id();
    }
    EXPECT_EQ(task_ids.size(), 24u);
    all_ids.insert(id);
  }
  EXPECT_EQ(all_ids.size(), jobs.size()) << "two submissions got the same job";
  // The jobs list holds each acknowledged job once, and no other.
  assay::v1::ListJobsRequest request;
  request.set_limit(100);
  assay::v1::ListJobsResponse listed;
  grpc::ClientContext context;
  ASSERT_TRUE(farm_.jobs()->ListJobs(&context, request, &listed).ok());
  std::multiset<std::string> listed_ids;
  for (const Job& j : listed.jobs()) listed_ids.insert(j.id());
  EXPECT_EQ(listed_ids, std::multiset<std::string>(jobs.begin(), jobs.end()));
  // Outputs went through every step of every cell of the last job.
  fs::path out = farm_.dir() / "artifacts";
  RunResult a = farm_.Cli({"artifacts", jobs.back(), "--out", out.string()});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  for (const std::string board : {"a", "b", "c", "d"}) {
    for (const std::string profile : {"debug", "release"}) {
      EXPECT_EQ(ReadFile(out / board / profile / "package" / "package.txt").value_or("missing"),
                absl::StrCat(board, "-", profile, "\nok\npackaged\n"));
    }
  }
}

}  // namespace
}  // namespace assay::testing
