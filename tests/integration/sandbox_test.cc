// The sandbox executor (made by the worker, and by bubblewrap) through the real worker: a step sees the host's tools but not
// the host's files, cannot write /usr (nor remount it: no capabilities, even under a root worker)
// nor the kernel's settings, has no network, and nothing it starts outlives it; its input
// files are links to the worker's checked copies, which a step that changes them cannot pass on.
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/common/processes.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {

namespace fs = std::filesystem;
using assay::v1::Task;

// Each test runs with the sandbox made by the worker (the kernel's namespaces) and by bubblewrap.
class SandboxTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists("/usr/bin/bwrap")) << "bubblewrap is not installed (scripts/install-deps.sh installs it)";
    farm_.StartCoordinator();
    farm_.set_executor("sandbox");
    farm_.StartWorker("w1", {}, 1, {"--sandbox", GetParam()});
  }
  Farm farm_;
};

TEST_P(SandboxTest, WorkersOfferTheSandboxExecutor) {
  auto workers = farm_.Workers();
  ASSERT_EQ(workers.size(), 1u);
  bool labelled = false;
  for (const auto& l : workers[0].labels()) labelled |= l == "executor=sandbox";
  EXPECT_TRUE(labelled) << workers[0].DebugString();
  const std::string log = ReadFile(farm_.dir() / "worker-w1.log").value_or("");
  EXPECT_TRUE(absl::StrContains(log, GetParam() == "namespaces" ? "steps' sandboxes are made by the worker (the kernel's namespaces)"
                                                                : "steps' sandboxes are made by bubblewrap"))
      << log;
}

TEST_P(SandboxTest, AStepSeesHostToolsButNotHostFilesNetworkOrCapabilities) {
  // Each check prints its verdict; the step fails on the first that does not hold.
  const std::string secret = (farm_.dir() / "data").string();  // the coordinator's database
  auto tree = farm_.WriteTree("isolated", {{"assay.yaml", absl::StrCat(R"yaml(
steps:
  - id: probe
    cache: false
    outputs: [result.txt]
    run: |
      cc --version > /dev/null && echo "tools: ok"
      test ! -e )yaml", secret, R"yaml( && echo "host files: hidden"
      if touch /usr/assay-probe 2>/dev/null; then echo "usr: WRITABLE"; exit 1; fi; echo "usr: read-only"
      # (after the write above: with the remount allowed, a write to /usr would reach the host's)
      if mount -o remount,rw,bind /usr 2>/dev/null; then echo "usr: REMOUNTED writable"; exit 1; fi
      echo "usr: cannot be remounted"
      grep -E '^Cap(Eff|Prm|Bnd|Amb):' /proc/self/status
      test "$(grep -E '^Cap(Eff|Prm|Bnd|Amb):' /proc/self/status | grep -vc '0000000000000000$')" -eq 0 && echo "capabilities: none"
      # The host's kernel settings: the same value written back (harmless where it is allowed).
      test -f /proc/sys/kernel/printk_ratelimit || { echo "no /proc/sys/kernel/printk_ratelimit"; exit 1; }
      if (cat /proc/sys/kernel/printk_ratelimit > /proc/sys/kernel/printk_ratelimit) 2>/dev/null; then
        echo "sysctls: WRITABLE"; exit 1
      fi
      echo "sysctls: read-only"
      test "$(grep -c : /proc/net/dev)" -eq 1 && echo "network: loopback only"
      test "$(ls /proc | grep -c '^[0-9]')" -lt 10 && echo "processes: own namespace"
      echo made in the sandbox > result.txt
)yaml")}});
  RunResult r = farm_.Cli({"submit", tree.string(), "--wait", "--logs"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* line : {"tools: ok", "host files: hidden", "usr: read-only", "usr: cannot be remounted",
                           "capabilities: none", "sysctls: read-only", "network: loopback only", "processes: own namespace"}) {
    EXPECT_TRUE(absl::StrContains(r.out, line)) << line << "\n" << r.out;
  }
  EXPECT_FALSE(fs::exists("/usr/assay-probe"));
  const fs::path out = farm_.dir() / "artifacts";
  RunResult a = farm_.Cli({"artifacts", "1", "probe", "--out", out.string()});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(ReadFile(out / "probe" / "result.txt").value_or(""), "made in the sandbox\n");
}

TEST_P(SandboxTest, InputsAreLinkedToTheWorkersCopyAndAStepThatChangesOneCannotPassItOn) {
  // Each job: `spoil` appends to the input in place (through the link, when it is one); `read`,
  // after it on the same worker, must still see the file as submitted.
  auto tree = farm_.WriteTree("links", {{"data.txt", "as submitted\n"}, {"assay.yaml", R"yaml(
steps:
  - id: spoil
    cache: false
    run: cat data.txt && echo spoiled >> data.txt
  - id: read
    needs: [spoil]
    cache: false
    run: |
      test "$(cat data.txt)" = "as submitted" && echo "read: intact"
)yaml"}});
  for (int job = 1; job <= 3; ++job) {
    RunResult r = farm_.Cli({"submit", tree.string(), "--wait", "--logs"});
    ASSERT_EQ(r.exit_code, 0) << "job " << job << ": " << r.out << r.err;
    EXPECT_TRUE(absl::StrContains(r.out, "read: intact")) << r.out;
  }
  // The first job wrote the files and kept them; later ones linked them (and the step that changed
  // its copy made the worker drop it, so `read` got a fresh one).
  const std::string later = farm_.Log("3", "spoil");
  EXPECT_TRUE(absl::StrContains(later, "linked to this host's copies")) << later;
  EXPECT_FALSE(absl::StrContains(farm_.Log("1", "spoil"), "linked")) << "nothing to link from yet";
  const std::string worker_log = ReadFile(farm_.dir() / "worker-w1.log").value_or("");
  EXPECT_TRUE(absl::StrContains(worker_log, "was changed by the step that had it")) << worker_log;
}

TEST_P(SandboxTest, AStepsOutputIsLinkedIntoTheStepThatNeedsItAndAChangeThereIsNotPassedOn) {
  // `build` makes a file no earlier job had; `use` links it (the build's very output, kept as this
  // host's copy) and appends to it in place; `check`, after both, must see it as built.
  auto tree = farm_.WriteTree("outputs", {{"assay.yaml", R"yaml(
steps:
  - id: build
    cache: false
    run: mkdir -p out && echo "built $(date +%s%N)" > out/image.txt
    outputs: ["out/"]
  - id: use
    needs: [build]
    cache: false
    run: cat out/image.txt && echo spoiled >> out/image.txt
  - id: check
    needs: [build, use]
    cache: false
    run: |
      test "$(wc -l < out/image.txt)" = 1 && echo "check: as built"
)yaml"}});
  RunResult r = farm_.Cli({"submit", tree.string(), "--wait", "--logs"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "check: as built")) << r.out;
  // Its inputs: assay.yaml (written for `build`, then kept) and the build's output, both linked.
  const std::string use = farm_.Log("1", "use");
  EXPECT_TRUE(absl::StrContains(use, "inputs: 2 files")) << use;
  EXPECT_TRUE(absl::StrContains(use, "2 linked to this host's copies")) << use;
  const std::string worker_log = ReadFile(farm_.dir() / "worker-w1.log").value_or("");
  EXPECT_TRUE(absl::StrContains(worker_log, "was changed by the step that had it")) << worker_log;
}

TEST_P(SandboxTest, NothingAStepStartsOutlivesIt) {
  const std::string marker = absl::StrCat("assay-leftover-", getpid());
  auto tree = farm_.WriteTree("leftover", {{"assay.yaml", absl::StrCat(R"(
steps:
  - id: leave
    cache: false
    run: |
      sh -c 'sleep 300; echo )", marker, R"(' &
      echo started a background process
  - id: hang
    cache: false
    timeout: 1s
    run: |
      sh -c 'sleep 300; echo )", marker, R"(-2' &
      sleep 300
)")}});
  RunResult r = farm_.Cli({"submit", tree.string(), "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;  // `hang` times out
  auto job = farm_.GetJob("1");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(FindTask(*job, "leave")->state(), assay::v1::TASK_SUCCEEDED);
  EXPECT_EQ(FindTask(*job, "hang")->state(), assay::v1::TASK_FAILED);
  EXPECT_TRUE(absl::StrContains(FindTask(*job, "hang")->message(), "timed out")) << FindTask(*job, "hang")->message();
  EXPECT_TRUE(WaitFor([&] { return !AnyProcessWith(marker); }, absl::Seconds(5)))
      << "a process started by a step is still running";
}

// A worker hands the folders of finished tasks to the next ones (spare_directories.h): whatever a
// step left in its folders (files, folders, their modes, extended attributes), the next task's
// folder holds exactly its inputs.
TEST_P(SandboxTest, ATaskFolderHoldsOnlyItsInputsWhateverTheTasksBeforeItLeft) {
  auto litter = farm_.WriteTree("litter", {{"src/input.txt", "1\n"}, {"assay.yaml", R"yaml(
steps:
  - id: litter
    cache: false
    run: |
      mkdir -p src/deep/a/b extra/x && touch src/deep/a/b/left extra/x/left src/left
      chmod 700 src/deep extra extra/x
      python3 -c "import os
      for d in ['src', 'extra', 'src/deep']:
          try: os.setxattr(d, 'user.assay', b'left')
          except OSError as e: print('no xattr on', d, e)"
)yaml"}});
  RunResult r = farm_.Cli({"submit", litter.string(), "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto look = farm_.WriteTree("look", {{"src/input.txt", "2\n"}, {"assay.yaml", R"yaml(
steps:
  - id: look
    cache: false
    run: |
      find . -mindepth 1 | sort | sed 's/^/entry /'
      find . -type d ! -perm 755 -printf 'mode %m %p\n'
      python3 -c "import os
      for root, dirs, files in os.walk('.'):
          if os.listxattr(root): print('xattr', root, os.listxattr(root))"
      echo "input $(cat src/input.txt)"
)yaml"}});
  for (int i = 0; i < 2; ++i) {  // twice: the second takes folders the first left too
    r = farm_.Cli({"submit", look.string(), "--wait", "--logs"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    std::vector<std::string> lines;
    for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
      for (const char* what : {"entry ", "mode ", "xattr ", "input "}) {
        const size_t at = line.find(what);
        if (at != absl::string_view::npos) lines.emplace_back(line.substr(at));
      }
    }
    EXPECT_EQ(lines, (std::vector<std::string>{"entry ./assay.yaml", "entry ./src", "entry ./src/input.txt", "input 2"}))
        << r.out;
  }
}

// The sandbox's limits (cgroups): a fork bomb stops at `pids`, a memory hog is killed at `memory`
// and the task says why; the worker's log says which limits it enforces.
TEST_P(SandboxTest, AForkBombStopsAtItsPidsLimit) {
  const std::string log = ReadFile(farm_.dir() / "worker-w1.log").value_or("");
  ASSERT_TRUE(absl::StrContains(log, "step limits enforced: cpus (cgroup v")) << log;
  ASSERT_TRUE(absl::StrContains(log, "pids (cgroup v")) << log;
  // Starts 200 sleepers; with pids: 32 the shell cannot fork past the limit and fails.
  auto tree = farm_.WriteTree("bomb", {{"assay.yaml", R"(
steps:
  - id: bomb
    run: i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; echo started $i
    cache: false
    timeout: 60s
    limits: {pids: 32, cpus: 1}
)"}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  auto job = farm_.WaitJob(*id, absl::Seconds(60));
  ASSERT_TRUE(job.ok());
  const Task& bomb = job->tasks(0);
  EXPECT_EQ(bomb.state(), assay::v1::TASK_FAILED) << bomb.message();
  const std::string output = farm_.Log(*id, "bomb");
  EXPECT_FALSE(absl::StrContains(output, "started 200")) << output;
  EXPECT_TRUE(absl::StrContains(output, "fork")) << output;  // "can't fork: Resource temporarily unavailable"
  EXPECT_LT(bomb.finished_at_ms() - bomb.started_at_ms(), 30'000) << "the sleepers outlived the step";
}

TEST_P(SandboxTest, AMemoryHogIsKilledAtItsMemoryLimitAndTheTaskSaysSo) {
  // tail -n 1 keeps the last line whole: 512 MiB without a newline is held in memory.
  auto tree = farm_.WriteTree("hog", {{"assay.yaml", R"(
steps:
  - id: hog
    run: head -c 536870912 /dev/zero | tail -n 1 > /dev/null
    cache: false
    limits: {memory: 64MiB}
  - id: modest
    run: head -c 8388608 /dev/zero | tail -n 1 > /dev/null
    cache: false
    limits: {memory: 64MiB}
)"}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  auto job = farm_.WaitJob(*id, absl::Seconds(60));
  ASSERT_TRUE(job.ok());
  const Task* hog = FindTask(*job, "hog");
  const Task* modest = FindTask(*job, "modest");
  ASSERT_TRUE(hog && modest);
  EXPECT_EQ(hog->state(), assay::v1::TASK_FAILED);
  EXPECT_TRUE(absl::StrContains(hog->message(), "killed for exceeding its memory limit of 64 MiB")) << hog->message();
  EXPECT_EQ(modest->state(), assay::v1::TASK_SUCCEEDED) << modest->message() << farm_.Log(*id, "modest");
}

INSTANTIATE_TEST_SUITE_P(Kinds, SandboxTest, ::testing::Values("namespaces", "bubblewrap"),
                         [](const ::testing::TestParamInfo<std::string>& kind) { return kind.param; });

}  // namespace
}  // namespace assay::testing
