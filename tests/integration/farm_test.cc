// End-to-end behaviour of a farm: the real coordinator, workers and CLI on loopback.
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <regex>
#include <set>

#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {

namespace fs = std::filesystem;
using assay::v1::Job;
using assay::v1::Task;

class FarmTest : public ::testing::Test {
 protected:
  void SetUp() override { farm_.StartCoordinator(); }
  Farm farm_;
};

TEST_F(FarmTest, ExampleMatrixBuildsAndBootsEveryCell) {
  farm_.set_executor("sandbox");  // what a worker uses by default where bubblewrap works
  farm_.StartWorker("w1");
  farm_.StartWorker("w2");
  RunResult r = farm_.Cli({"submit", SourceDir() + "/examples/karatos-mini", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "succeeded: 8/8 tasks done")) << r.out;

  auto job = farm_.GetJob("1");
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->tasks_size(), 8);
  std::set<std::string> workers;
  for (const Task& t : job->tasks()) {
    EXPECT_EQ(t.state(), assay::v1::TASK_SUCCEEDED) << t.id() << ": " << t.message();
    workers.insert(t.worker());
  }
  EXPECT_EQ(workers.size(), 2u) << "both workers should have run tasks";
  for (const std::string cell : {"cortex-m3/debug", "cortex-m3/release", "rv32imac/debug", "rv32imac/release"}) {
    std::string log = farm_.Log("1", cell + "/test");
    EXPECT_TRUE(absl::StrContains(log, "KARATOS OK: all tasks done")) << cell << ":\n" << log;
    EXPECT_TRUE(absl::StrContains(log, "[blink] tick 2")) << log;
  }
  // The test step ran after its build: it saw the build's output.
  const Task* build = FindTask(*job, "rv32imac/release/build");
  const Task* test = FindTask(*job, "rv32imac/release/test");
  ASSERT_TRUE(build && test);
  EXPECT_GE(test->started_at_ms(), build->finished_at_ms());

  fs::path out = farm_.dir() / "artifacts";
  RunResult a = farm_.Cli({"artifacts", "1", "--out", out.string()});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  for (const std::string cell : {"cortex-m3-debug", "cortex-m3-release", "rv32imac-debug", "rv32imac-release"}) {
    std::string target = cell.substr(0, cell.find('-', 3) == std::string::npos ? cell.size() : cell.rfind('-'));
    std::string profile = cell.substr(cell.rfind('-') + 1);
    fs::path elf = out / target / profile / "build" / "out" / cell / "karatos.elf";
    ASSERT_TRUE(fs::exists(elf)) << elf;
    std::ifstream in(elf, std::ios::binary);
    char magic[4] = {};
    in.read(magic, 4);
    EXPECT_EQ(std::string(magic, 4), "\x7f" "ELF");
  }
  std::string sums = ReadFile(out / "SHA256SUMS").value_or("");
  EXPECT_EQ(std::count(sums.begin(), sums.end(), '\n'), 12) << sums;  // elf, bin, size.txt per cell
}

TEST_F(FarmTest, BrokenFirmwareFailsAndHungFirmwareIsKilledAtItsTimeout) {
  farm_.StartWorker("w1");
  farm_.StartWorker("w2");
  RunResult r = farm_.Cli({"submit", SourceDir() + "/examples/karatos-mini", "-f", "assay-broken.yaml", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "--- log of failed cortex-m3/test ---")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "FAIL: sum is 45, expected 46")) << r.out;
  auto job = farm_.GetJob("1");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), assay::v1::JOB_FAILED);
  const Task* failing = FindTask(*job, "cortex-m3/test");
  ASSERT_NE(failing, nullptr);
  EXPECT_EQ(failing->state(), assay::v1::TASK_FAILED);
  EXPECT_EQ(failing->exit_code(), 3);
  const Task* hung = FindTask(*job, "rv32imac/test");
  ASSERT_NE(hung, nullptr);
  EXPECT_EQ(hung->state(), assay::v1::TASK_FAILED);
  EXPECT_TRUE(hung->timed_out());
  int64_t ran_ms = hung->finished_at_ms() - hung->started_at_ms();
  EXPECT_GE(ran_ms, 5000);
  EXPECT_LT(ran_ms, 9000) << "the hung firmware must be killed at its 5 s timeout";
}

TEST_F(FarmTest, NeedsSeeEarlierOutputsAndRunAfterThem) {
  farm_.StartWorker("w1", {}, 2);
  auto tree = farm_.WriteTree("needs", {{"assay.yaml", R"(
steps:
  - id: a
    run: mkdir -p out && echo from-a > out/a.txt
    outputs: [out/a.txt]
  - id: b
    needs: [a]
    run: cat out/a.txt > b.txt && echo from-b >> b.txt
    outputs: [b.txt]
  - id: c
    needs: [a, b]
    run: cat out/a.txt b.txt
)"}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  auto job = farm_.WaitJob(*id);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->state(), assay::v1::JOB_SUCCEEDED);
  const Task *a = FindTask(*job, "a"), *b = FindTask(*job, "b"), *c = FindTask(*job, "c");
  ASSERT_TRUE(a && b && c);
  EXPECT_GE(b->started_at_ms(), a->finished_at_ms());
  EXPECT_GE(c->started_at_ms(), b->finished_at_ms());
  std::string log = farm_.Log(*id, "c");
  EXPECT_TRUE(absl::StrContains(log, "from-a\nfrom-a\nfrom-b\n")) << log;
}

TEST_F(FarmTest, TheCliStreamsLogsLiveAndReplaysThem) {
  farm_.StartWorker("w1", {}, 2);
  auto tree = farm_.WriteTree("cli-logs", {{"assay.yaml", R"(
matrix:
  n: [one, two]
steps:
  - id: say
    run: echo "hello from ${{ matrix.n }}"; echo "to stderr" >&2
)"}});
  RunResult live = farm_.Cli({"submit", tree.string(), "--wait", "--logs"});
  ASSERT_EQ(live.exit_code, 0) << live.err;
  EXPECT_TRUE(absl::StrContains(live.out, "one/say | hello from one\n")) << live.out;
  EXPECT_TRUE(absl::StrContains(live.out, "two/say | hello from two\n")) << live.out;
  EXPECT_TRUE(absl::StrContains(live.out, "two/say | to stderr\n")) << live.out;
  RunResult replay = farm_.Cli({"logs", "-f", "1", "two"});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_TRUE(absl::StrContains(replay.out, "hello from two")) << replay.out;
  EXPECT_FALSE(absl::StrContains(replay.out, "hello from one")) << "only the cell asked for";
  RunResult missing = farm_.Cli({"logs", "1", "three/say"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(missing.err, "job 1 has no task 'three/say'")) << missing.err;
}

// The worker's line about a step's inputs rides with the step's first output, or with its result
// when it prints nothing; either way the log tells it first.
TEST_F(FarmTest, TheInputsLineComesFirstWhetherTheStepPrintsOrNot) {
  farm_.StartWorker("w1", {}, 2);
  auto tree = farm_.WriteTree("prefaces", {{"assay.yaml", "steps:\n  - id: loud\n    run: echo first words\n"
                                                          "  - id: silent\n    run: 'true'\n"},
                                           {"input.txt", "x\n"}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  auto job = farm_.WaitJob(*id);
  ASSERT_TRUE(job.ok());
  ASSERT_EQ(job->state(), assay::v1::JOB_SUCCEEDED);
  for (const char* step : {"loud", "silent"}) {
    const std::string log = farm_.Log(*id, step);
    const size_t inputs = log.find("[assay] inputs: 2 files");
    ASSERT_NE(inputs, std::string::npos) << step << ":\n" << log;
    EXPECT_LT(log.find("on worker w1"), inputs) << log;
    if (std::string(step) == "loud") {
      EXPECT_LT(inputs, log.find("first words")) << log;
    }
  }
}

TEST_F(FarmTest, WatchJobPushesAtMostTwentySnapshotsASecondAndTheLastOneAtOnce) {
  farm_.StartWorker("w2");
  std::string values;
  for (int i = 0; i < 150; ++i) absl::StrAppend(&values, i == 0 ? "" : ", ", i);
  auto id = farm_.Submit(farm_.WriteTree("many", {{"assay.yaml", absl::StrCat("matrix:\n  i: [", values,
                                                                                "]\nsteps:\n  - id: t\n    run: 'true'\n"
                                                                                "    cache: false\n")}}));
  ASSERT_TRUE(id.ok()) << id.status();
  assay::v1::WatchJobRequest request;
  request.set_job_id(*id);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  const absl::Time start = absl::Now();
  auto reader = farm_.jobs()->WatchJob(&context, request);
  assay::v1::Job job;
  int snapshots = 0;
  std::set<int> done_counts;
  while (reader->Read(&job)) {
    ++snapshots;
    done_counts.insert(job.tasks_done());
  }
  const absl::Duration watched = absl::Now() - start;
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(job.state(), assay::v1::JOB_SUCCEEDED) << "the last snapshot is the job's end";
  EXPECT_EQ(job.tasks_done(), 150);
  // Every task's state changes at least twice (running, succeeded): 300+ changes. A snapshot at
  // most every 50 ms (and the first and last at once) gives far fewer.
  EXPECT_LE(snapshots, absl::ToInt64Milliseconds(watched) / 50 + 3) << "in " << watched;
  EXPECT_GE(done_counts.size(), 2u) << "progress was pushed while the job ran, not only at its end";
}

TEST_F(FarmTest, FailedNeedSkipsDependents) {
  farm_.StartWorker("w1");
  auto tree = farm_.WriteTree("skip", {{"assay.yaml", R"(
steps:
  - id: a
    run: exit 7
  - id: b
    needs: [a]
    run: echo never
)"}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok());
  auto job = farm_.WaitJob(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), assay::v1::JOB_FAILED);
  EXPECT_EQ(FindTask(*job, "a")->exit_code(), 7);
  EXPECT_EQ(FindTask(*job, "b")->state(), assay::v1::TASK_SKIPPED);
  EXPECT_FALSE(absl::StrContains(farm_.Log(*id, "b"), "never"));

  // What CI systems read: the exit code, JSON, and a JUnit report with the failure and the skip.
  fs::path junit = farm_.dir() / "report.xml";
  RunResult wait = farm_.Cli({"wait", *id, "--junit", junit.string()});
  EXPECT_EQ(wait.exit_code, 1);
  std::string xml = ReadFile(junit).value_or("");
  EXPECT_TRUE(absl::StrContains(xml, "tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"1\"")) << xml;
  EXPECT_TRUE(absl::StrContains(xml, "<failure type=\"failure\" message=\"exit code 7\">")) << xml;
  RunResult json = farm_.Cli({"--output", "json", "status", *id});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_TRUE(absl::StrContains(json.out, "\"state\": \"JOB_FAILED\"")) << json.out;
  EXPECT_TRUE(absl::StrContains(json.out, "\"exit_code\": 7")) << json.out;
}

TEST_F(FarmTest, CancelKillsRunningProcessesWithinTwoSeconds) {
  farm_.StartWorker("w1", {}, 2);
  fs::path pids = farm_.dir() / "pids";
  fs::create_directories(pids);
  auto tree = farm_.WriteTree("cancel", {{"assay.yaml", absl::StrCat(R"(
matrix:
  n: [one, two]
steps:
  - id: sleepy
    run: |
      sleep 1000 &
      echo $! > )", pids.string(), R"(/${{ matrix.n }}.child
      echo $$ > )", pids.string(), R"(/${{ matrix.n }}.shell
      wait
)")}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok());
  std::vector<pid_t> started;
  ASSERT_TRUE(WaitFor(
      [&]() {
        started.clear();
        for (const char* name : {"one.child", "one.shell", "two.child", "two.shell"}) {
          pid_t pid = ReadPid(pids / name);
          if (pid == 0) return false;
          started.push_back(pid);
        }
        return true;
      },
      absl::Seconds(30)));
  for (pid_t pid : started) ASSERT_TRUE(PidAlive(pid));

  const absl::Time cancelled_at = absl::Now();
  RunResult r = farm_.Cli({"cancel", *id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bool gone = WaitFor(
      [&]() {
        for (pid_t pid : started) {
          if (PidAlive(pid)) return false;
        }
        return true;
      },
      absl::Seconds(5));
  EXPECT_TRUE(gone);
  EXPECT_LT(absl::Now() - cancelled_at, absl::Seconds(2)) << "processes must be gone within 2 s of cancel";
  auto job = farm_.WaitJob(*id, absl::Seconds(10));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), assay::v1::JOB_CANCELLED);
  for (const Task& t : job->tasks()) EXPECT_EQ(t.state(), assay::v1::TASK_CANCELLED);
  // The worker's slots are free again: a new job runs.
  auto tree2 = farm_.WriteTree("after-cancel", {{"assay.yaml", "steps:\n  - id: ok\n    run: 'true'\n"}});
  auto id2 = farm_.Submit(tree2);
  ASSERT_TRUE(id2.ok());
  auto job2 = farm_.WaitJob(*id2, absl::Seconds(30));
  ASSERT_TRUE(job2.ok());
  EXPECT_EQ(job2->state(), assay::v1::JOB_SUCCEEDED);
}

TEST_F(FarmTest, StepTimeoutKillsTheProcessTree) {
  farm_.StartWorker("w1");
  auto tree = farm_.WriteTree("timeout", {{"assay.yaml", R"(
steps:
  - id: slow
    run: echo started; sleep 300
    timeout: 1s
)"}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok());
  auto job = farm_.WaitJob(*id, absl::Seconds(30));
  ASSERT_TRUE(job.ok());
  const Task* t = FindTask(*job, "slow");
  EXPECT_EQ(t->state(), assay::v1::TASK_FAILED);
  EXPECT_TRUE(t->timed_out());
  EXPECT_TRUE(absl::StrContains(t->message(), "timed out after 1s")) << t->message();
  EXPECT_LT(t->finished_at_ms() - t->started_at_ms(), 5000);
  EXPECT_TRUE(absl::StrContains(farm_.Log(*id, "slow"), "started"));
}

TEST_F(FarmTest, MatrixIncludeAndExcludeShapeTheCells) {
  farm_.StartWorker("w1", {}, 2);
  auto tree = farm_.WriteTree("matrix", {{"assay.yaml", R"(
matrix:
  os: [linux, bsd]
  cpu: [arm, riscv]
  exclude:
    - os: bsd
      cpu: riscv
  include:
    - os: linux
      flavour: lts
    - os: haiku
      cpu: x86
steps:
  - id: show
    run: echo "os=${{ matrix.os }} cpu=${{ matrix.cpu }} env=$ASSAY_MATRIX_OS"
)"}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok());
  auto job = farm_.WaitJob(*id);
  ASSERT_TRUE(job.ok());
  std::set<std::string> ids;
  for (const Task& t : job->tasks()) ids.insert(t.id());
  EXPECT_EQ(ids, (std::set<std::string>{"linux/arm/show", "linux/riscv/show", "bsd/arm/show", "haiku/x86/show"}));
  EXPECT_EQ(FindTask(*job, "linux/arm/show")->matrix().at("flavour"), "lts");
  EXPECT_EQ(FindTask(*job, "bsd/arm/show")->matrix().count("flavour"), 0u);
  EXPECT_TRUE(absl::StrContains(farm_.Log(*id, "bsd/arm/show"), "os=bsd cpu=arm env=bsd"));
}

TEST_F(FarmTest, LogsStreamWhileTheStepRunsInOrder) {
  farm_.StartWorker("w1");
  fs::path gate = farm_.dir() / "gate";
  auto tree = farm_.WriteTree("live", {{"assay.yaml", absl::StrCat(R"(
steps:
  - id: talk
    run: |
      for i in $(seq 1 200); do echo "line $i"; done
      echo before-gate
      while [ ! -e )", gate.string(), R"( ]; do sleep 0.02; done
      echo after-gate
)")}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok());
  assay::v1::StreamLogsRequest request;
  request.set_job_id(*id);
  request.set_follow(true);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = farm_.jobs()->StreamLogs(&context, request);
  std::string text;
  assay::v1::LogChunk chunk;
  bool saw_before_while_running = false;
  while (reader->Read(&chunk)) {
    text += chunk.data();
    if (!saw_before_while_running && absl::StrContains(text, "before-gate")) {
      auto job = farm_.GetJob(*id);
      ASSERT_TRUE(job.ok());
      // The output arrived while the step was still running: it is streamed, not sent at the end.
      EXPECT_EQ(job->tasks(0).state(), assay::v1::TASK_RUNNING);
      saw_before_while_running = true;
      ASSERT_TRUE(WriteFile(gate, "open").ok());
    }
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_TRUE(saw_before_while_running);
  // Every line, in the order it was written.
  size_t pos = 0;
  for (int i = 1; i <= 200; ++i) {
    size_t next = text.find(absl::StrCat("line ", i, "\n"), pos);
    ASSERT_NE(next, std::string::npos) << "line " << i << " missing or out of order";
    pos = next;
  }
  EXPECT_LT(text.find("before-gate"), text.find("after-gate"));
}

TEST_F(FarmTest, TasksGoOnlyToWorkersWithMatchingLabels) {
  farm_.StartWorker("plain");
  farm_.StartWorker("gpu-box", {"gpu=nvidia"});
  auto tree = farm_.WriteTree("labels", {{"assay.yaml", R"(
steps:
  - id: render
    run: echo rendering
    requires: [gpu=nvidia]
  - id: flash
    run: echo flashing
    requires: [board]
)"}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(WaitFor(
      [&]() {
        auto job = farm_.GetJob(*id);
        return job.ok() && FindTask(*job, "render")->state() == assay::v1::TASK_SUCCEEDED;
      },
      absl::Seconds(30)));
  auto job = farm_.GetJob(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(FindTask(*job, "render")->worker(), "gpu-box");
  // No worker offers "board": the step waits, and says why.
  const Task* flash = FindTask(*job, "flash");
  EXPECT_EQ(flash->state(), assay::v1::TASK_QUEUED);
  EXPECT_TRUE(absl::StrContains(flash->message(), "waiting for a worker with labels: board")) << flash->message();
  for (const auto& w : farm_.Workers()) EXPECT_EQ(w.busy(), 0) << w.id();

  farm_.StartWorker("bench", {"board"});
  auto done = farm_.WaitJob(*id, absl::Seconds(30));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state(), assay::v1::JOB_SUCCEEDED);
  EXPECT_EQ(FindTask(*done, "flash")->worker(), "bench");
}

struct BadPipeline {
  const char* yaml;
  const char* expected;   // substring of the error, with file:line
};

TEST_F(FarmTest, MalformedPipelinesAreRejectedWithTheirLineAndChangeNothing) {
  const BadPipeline cases[] = {
      {"steps:\n  - id: a\n    run: [unclosed\n", "assay.yaml:4:1: invalid YAML"},
      {"name: x\nstepz: []\n", "assay.yaml:2:1: unknown key 'stepz' in pipeline"},
      {"steps:\n  - id: a\n    run: echo\n    timeout: soon\n", "assay.yaml:4:14: step 'a'.timeout 'soon' is not a duration"},
      {"steps:\n  - id: a\n    run: echo\n  - id: b\n    needs: [c]\n    run: echo\n", "assay.yaml:5:12: step 'b' needs 'c'"},
      {"steps:\n  - id: a\n    run: echo ${{ matrix.nope }}\n", "assay.yaml:2: step 'a' run: unknown matrix variable 'nope'"},
      {"steps:\n  - id: a\n    run: echo\n    outputs: [../../etc/passwd]\n", "assay.yaml:4:14: step 'a' output '../../etc/passwd' leaves its directory"},
      {"steps:\n  - id: a\n    run: echo\n  - id: a\n    run: echo\n", "assay.yaml:4:9: step id 'a' is used twice"},
      {"matrix:\n  a: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]\n  b: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]\nsteps:\n  - id: a\n    run: echo\n",
       "the matrix has 289 cells, more than the limit of 256"},
  };
  farm_.StartWorker("w1");
  int n = 0;
  for (const BadPipeline& c : cases) {
    auto tree = farm_.WriteTree(absl::StrCat("bad", n++), {{"assay.yaml", c.yaml}});
    RunResult r = farm_.Cli({"submit", tree.string(), "--wait"});
    EXPECT_EQ(r.exit_code, 2) << c.yaml;
    EXPECT_TRUE(absl::StrContains(r.err, c.expected)) << "expected '" << c.expected << "' in:\n" << r.err;
  }
  RunResult jobs = farm_.Cli({"jobs"});
  ASSERT_EQ(jobs.exit_code, 0);
  EXPECT_EQ(std::count(jobs.out.begin(), jobs.out.end(), '\n'), 1) << "no job may be created:\n" << jobs.out;
}

TEST_F(FarmTest, RestartedCoordinatorKeepsJobsLogsAndArtifacts) {
  farm_.StartWorker("w1");
  auto tree = farm_.WriteTree("persist", {{"assay.yaml", R"(
steps:
  - id: make
    run: echo hello-log && echo artifact-bytes > result.txt
    outputs: [result.txt]
)"}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(farm_.WaitJob(*id).ok());
  farm_.StopWorker("w1");
  farm_.StopCoordinator(SIGTERM);
  farm_.StartCoordinator();

  RunResult jobs = farm_.Cli({"jobs"});
  EXPECT_TRUE(absl::StrContains(jobs.out, "succeeded")) << jobs.out;
  EXPECT_TRUE(absl::StrContains(farm_.Log(*id, "make"), "hello-log"));
  fs::path out = farm_.dir() / "restored";
  RunResult a = farm_.Cli({"artifacts", *id, "--out", out.string()});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(ReadFile(out / "make" / "result.txt").value_or(""), "artifact-bytes\n");
}

TEST_F(FarmTest, KillDashNineLosesNoAcceptedJob) {
  farm_.StartWorker("w1");
  fs::path gate = farm_.dir() / "gate2";
  auto tree = farm_.WriteTree("crash", {{"assay.yaml", absl::StrCat(R"(
steps:
  - id: first
    run: echo one
  - id: second
    needs: [first]
    run: |
      while [ ! -e )", gate.string(), R"( ]; do sleep 0.02; done
      echo two
)")}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(WaitFor(
      [&]() {
        auto job = farm_.GetJob(*id);
        return job.ok() && FindTask(*job, "second")->state() == assay::v1::TASK_RUNNING;
      },
      absl::Seconds(30)));
  // A CI system waiting on the job rides out the coordinator's crash and restart.
  fs::path wait_log = farm_.dir() / "wait.log";
  Process waiter({BinaryPath("assay"), "--coordinator", farm_.address(), "wait", *id}, wait_log);
  ASSERT_TRUE(WaitFor([&]() { return absl::StrContains(ReadFile(wait_log).value_or(""), "second"); },
                      absl::Seconds(30)));
  farm_.StopCoordinator(SIGKILL);
  farm_.StartCoordinator();
  ASSERT_TRUE(WriteFile(gate, "open").ok());
  // The worker reconnects by itself; the interrupted task runs again and the job completes.
  ASSERT_TRUE(WaitFor([&]() { return !waiter.running(); }, absl::Seconds(60))) << ReadFile(wait_log).value_or("");
  EXPECT_TRUE(WIFEXITED(waiter.status()) && WEXITSTATUS(waiter.status()) == 0) << ReadFile(wait_log).value_or("");
  EXPECT_TRUE(absl::StrContains(ReadFile(wait_log).value_or(""), "reconnecting")) << ReadFile(wait_log).value_or("");
  auto job = farm_.WaitJob(*id, absl::Seconds(60));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), assay::v1::JOB_SUCCEEDED);
  EXPECT_EQ(FindTask(*job, "first")->attempt(), 1);
  EXPECT_GE(FindTask(*job, "second")->attempt(), 2);
  EXPECT_TRUE(absl::StrContains(farm_.Log(*id, "second"), "two"));
}

TEST_F(FarmTest, AKilledWorkersTaskRunsAgainElsewhere) {
  farm_.StartWorker("doomed");
  fs::path marker = farm_.dir() / "started";
  auto tree = farm_.WriteTree("worker-crash", {{"assay.yaml", absl::StrCat(R"(
steps:
  - id: long
    run: |
      sleep 600 &
      echo $! >> )", marker.string(), R"(
      wait
    timeout: 15m
)")}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok());
  pid_t first_sleep = 0;
  ASSERT_TRUE(WaitFor([&]() { return (first_sleep = ReadPid(marker)) != 0; }, absl::Seconds(30)));
  farm_.StartWorker("survivor");
  farm_.StopWorker("doomed", SIGKILL);
  // The dead worker's step does not run on unowned.
  EXPECT_TRUE(WaitFor([&]() { return !PidAlive(first_sleep); }, absl::Seconds(5)));
  // The coordinator sees the link drop and queues the task again; the survivor takes it.
  ASSERT_TRUE(WaitFor(
      [&]() {
        auto job = farm_.GetJob(*id);
        return job.ok() && job->tasks(0).worker() == "survivor" && job->tasks(0).state() == assay::v1::TASK_RUNNING;
      },
      absl::Seconds(30)));
  auto job = farm_.GetJob(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->tasks(0).attempt(), 2);
  EXPECT_TRUE(absl::StrContains(farm_.Log(*id, "long"), "worker doomed disconnected")) << farm_.Log(*id, "long");
  RunResult r = farm_.Cli({"cancel", *id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(FarmTest, UnreachableCoordinatorIsAClearError) {
  RunResult r = RunCommand({BinaryPath("assay"), "--coordinator", "127.0.0.1:1", "jobs"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(absl::StrContains(r.err, "is the coordinator running?")) << r.err;
}

}  // namespace
}  // namespace assay::testing
