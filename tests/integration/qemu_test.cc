// `qemu:` steps through a real farm: the example firmware built by the real cross toolchains and
// booted in the real QEMU, its console judged by the worker (docs/pipeline.md, "qemu steps").
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;
using assay::v1::Job;
using assay::v1::Task;

// One build of three firmwares (good, exits 3, hangs), then one qemu step per case.
constexpr const char* kPipeline = R"(name: qemu-cases
steps:
  - id: build
    run: |
      make TARGET=cortex-m3 PROFILE=release
      make TARGET=cortex-m3 PROFILE=debug FAULT=fail
      make TARGET=rv32imac PROFILE=debug FAULT=hang
    outputs: [out/]
  - id: pass
    needs: [build]
    qemu:
      system: qemu-system-arm
      machine: lm3s6965evb
      kernel: out/cortex-m3-release/karatos.elf
      args: [-bios, none]
      expect: ["cortex-m3 release booting", "scheduler ran [0-9]+ slices", "KARATOS OK: all tasks done"]
  - id: missing
    needs: [build]
    qemu:
      system: qemu-system-arm
      machine: lm3s6965evb
      kernel: out/cortex-m3-release/karatos.elf
      expect: ["booting", "a line this firmware never prints"]
  - id: fail-on
    needs: [build]
    qemu:
      system: qemu-system-arm
      machine: lm3s6965evb
      kernel: out/cortex-m3-release/karatos.elf
      expect: ["KARATOS OK"]
      fail_on: ["sum=4[0-9]"]
  - id: wrong-exit
    needs: [build]
    qemu:
      system: qemu-system-arm
      machine: lm3s6965evb
      kernel: out/cortex-m3-debug/karatos.elf
      expect: ["FAIL: sum is 45"]
  - id: expected-exit
    needs: [build]
    qemu:
      system: qemu-system-arm
      machine: lm3s6965evb
      kernel: out/cortex-m3-debug/karatos.elf
      expect: ["FAIL: sum is 45"]
      exit_code: 3
  - id: hang
    needs: [build]
    qemu:
      system: qemu-system-riscv32
      machine: virt
      kernel: out/rv32imac-debug/karatos.elf
      args: [-bios, none]
      expect: ["KARATOS OK"]
      timeout: 3s
  - id: no-such-board
    needs: [build]
    qemu:
      system: qemu-system-arm
      machine: no-such-board
      kernel: out/cortex-m3-release/karatos.elf
  - id: flaky
    needs: [build]
    retry: {max: 2, when: [exit_code]}
    qemu:
      system: qemu-system-flaky
      machine: lm3s6965evb
      kernel: out/cortex-m3-release/karatos.elf
      expect: ["KARATOS OK"]
)";

// An emulator whose first run fails (the board "did not come up"), later runs are the real QEMU.
constexpr const char* kFlakyEmulator = R"(#!/bin/sh
if [ "$1" = --version ]; then exec qemu-system-arm "$@"; fi
if mkdir "$(dirname "$0")/first-run-done" 2>/dev/null; then
  echo "flaky board: no response from the UART"
  exit 1
fi
exec qemu-system-arm "$@"
)";

class QemuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The flaky emulator is on the worker's PATH (workers inherit this process's environment).
    fs::path bin = farm_.dir() / "emulators";
    fs::create_directories(bin);
    {
      std::ofstream f(bin / "qemu-system-flaky");
      f << kFlakyEmulator;
    }
    fs::permissions(bin / "qemu-system-flaky", fs::perms::owner_all);
    const char* path = std::getenv("PATH");
    saved_path_ = path != nullptr ? path : "/usr/bin:/bin";
    ::setenv("PATH", absl::StrCat(bin.string(), ":", saved_path_).c_str(), 1);
    farm_.StartCoordinator();
    farm_.StartWorker("w1", {}, 2);
  }
  void TearDown() override { ::setenv("PATH", saved_path_.c_str(), 1); }

  fs::path Tree() {
    fs::path copy = farm_.dir() / "fw";
    fs::copy(SourceDir() + "/examples/karatos-mini", copy, fs::copy_options::recursive);
    fs::remove_all(copy / "out");
    std::ofstream(copy / "qemu-cases.yaml") << kPipeline;
    return copy;
  }

  Farm farm_;
  std::string saved_path_;
};

std::string Describe(const Task& t) {
  return absl::StrCat(t.id(), ": state ", assay::v1::TaskState_Name(t.state()), ", exit ", t.exit_code(),
                      ", message: ", t.message());
}

TEST_F(QemuTest, TheConsoleIsJudgedAndEveryFailureNamesItsCause) {
  fs::path tree = Tree();
  auto id = farm_.Submit(tree, "qemu-cases.yaml");
  ASSERT_TRUE(id.ok()) << id.status();
  auto job = farm_.WaitJob(*id, absl::Seconds(180));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), assay::v1::JOB_FAILED);

  const Task* pass = FindTask(*job, "pass");
  ASSERT_NE(pass, nullptr);
  EXPECT_EQ(pass->state(), assay::v1::TASK_SUCCEEDED) << Describe(*pass);
  EXPECT_FALSE(pass->flaky());
  EXPECT_TRUE(absl::StrContains(farm_.Cli({"logs", *id, "pass"}).out, "[assay] qemu: passed, 3 expectation(s) met"));
  // The qemu step went only to a worker that offers its emulator.
  EXPECT_TRUE(std::find(pass->spec().required_labels().begin(), pass->spec().required_labels().end(),
                        "qemu-system-arm") != pass->spec().required_labels().end());
  EXPECT_TRUE(absl::StrContains(farm_.Cli({"workers", "--output", "json"}).out, "qemu-system-arm="));

  const Task* missing = FindTask(*job, "missing");
  ASSERT_NE(missing, nullptr);
  EXPECT_EQ(missing->state(), assay::v1::TASK_FAILED);
  EXPECT_TRUE(absl::StrContains(missing->message(),
                                "expectation 2 of 2 'a line this firmware never prints' never appeared (1 of 2 met)"))
      << Describe(*missing);
  EXPECT_TRUE(absl::StrContains(missing->message(), "last lines of output:")) << Describe(*missing);
  EXPECT_TRUE(absl::StrContains(missing->message(), "KARATOS OK: all tasks done")) << Describe(*missing);

  const Task* fail_on = FindTask(*job, "fail-on");
  ASSERT_NE(fail_on, nullptr);
  EXPECT_EQ(fail_on->state(), assay::v1::TASK_FAILED);
  EXPECT_TRUE(absl::StrContains(fail_on->message(), "fail_on pattern 'sum=4[0-9]' matched: [report] sum=45"))
      << Describe(*fail_on);

  const Task* wrong_exit = FindTask(*job, "wrong-exit");
  ASSERT_NE(wrong_exit, nullptr);
  EXPECT_EQ(wrong_exit->state(), assay::v1::TASK_FAILED);
  EXPECT_EQ(wrong_exit->exit_code(), 3);
  EXPECT_TRUE(absl::StrContains(wrong_exit->message(), "the guest exited with code 3, expected 0")) << Describe(*wrong_exit);

  const Task* expected_exit = FindTask(*job, "expected-exit");
  ASSERT_NE(expected_exit, nullptr);
  EXPECT_EQ(expected_exit->state(), assay::v1::TASK_SUCCEEDED) << Describe(*expected_exit);

  const Task* hang = FindTask(*job, "hang");
  ASSERT_NE(hang, nullptr);
  EXPECT_EQ(hang->state(), assay::v1::TASK_FAILED);
  EXPECT_TRUE(hang->timed_out()) << "a hung guest is a timeout, not a crash: " << Describe(*hang);
  EXPECT_TRUE(absl::StrContains(hang->message(), "timed out after 3s")) << Describe(*hang);
  EXPECT_TRUE(absl::StrContains(hang->message(), "waiting for expectation 1 of 1 'KARATOS OK'")) << Describe(*hang);
  EXPECT_TRUE(absl::StrContains(hang->message(), "hanging on purpose")) << Describe(*hang);
  const int64_t ran_ms = hang->finished_at_ms() - hang->started_at_ms();
  EXPECT_GE(ran_ms, 3000);
  EXPECT_LT(ran_ms, 8000) << "killed at its 3 s timeout";

  const Task* board = FindTask(*job, "no-such-board");
  ASSERT_NE(board, nullptr);
  EXPECT_EQ(board->state(), assay::v1::TASK_FAILED);
  EXPECT_TRUE(absl::StrContains(board->message(), "unsupported machine type")) << "QEMU's own words: " << Describe(*board);

  const Task* flaky = FindTask(*job, "flaky");
  ASSERT_NE(flaky, nullptr);
  EXPECT_EQ(flaky->state(), assay::v1::TASK_SUCCEEDED) << Describe(*flaky);
  EXPECT_TRUE(flaky->flaky());
  EXPECT_EQ(flaky->failed_runs(), 1);
  EXPECT_EQ(flaky->attempt(), 2);

  // The worker is still healthy after the hung guest: it runs the next job.
  EXPECT_GT(farm_.worker_pid("w1"), 0);
  std::ofstream(tree / "again.yaml") << absl::StrCat(
      "name: again\nsteps:\n  - id: build\n    run: make TARGET=cortex-m3 PROFILE=release\n"
      "    outputs: [out/]\n  - id: pass\n    needs: [build]\n    qemu:\n      system: qemu-system-arm\n"
      "      machine: lm3s6965evb\n      kernel: out/cortex-m3-release/karatos.elf\n      expect: [KARATOS OK]\n");
  auto again = farm_.Submit(tree, "again.yaml");
  ASSERT_TRUE(again.ok()) << again.status();
  auto second = farm_.WaitJob(*again);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->state(), assay::v1::JOB_SUCCEEDED);
}

TEST_F(QemuTest, AKernelThatNoNeededStepBuildsIsRefusedAtSubmitWithItsLine) {
  fs::path tree = Tree();
  std::ofstream(tree / "bad.yaml") << "steps:\n  - id: build\n    run: make\n    outputs: [out/]\n  - id: boot\n"
                                      "    needs: [build]\n    qemu:\n      system: qemu-system-arm\n"
                                      "      machine: lm3s6965evb\n      kernel: firmware.elf\n";
  RunResult r = farm_.Cli({"submit", tree.string(), "-f", "bad.yaml"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "bad.yaml:10: step 'boot' qemu.kernel 'firmware.elf' is not an output of a step "
                                       "it needs (build: out/)"))
      << r.err;
  RunResult jobs = farm_.Cli({"jobs", "--output", "json"});  // global options after the subcommand
  EXPECT_EQ(jobs.exit_code, 0) << jobs.err;
  EXPECT_FALSE(absl::StrContains(jobs.out, "\"id\"")) << "nothing was created: " << jobs.out;
}

// Issue 22: a submitter's pattern that backtracks, against the real emulator echoing a bad
// 100,000-character -device argument (std::regex kept a core busy for over ten minutes on such a
// line, past the step's timeout). Patterns are RE2's: the line is judged at once, the step fails on
// QEMU's own exit, long before its timeout, and the worker's only slot runs the next task.
TEST(QemuPatternTest, ABacktrackingPatternOnA100000CharacterLineEndsTheStepAndFreesTheWorker) {
  Farm farm;
  farm.StartCoordinator();
  farm.StartWorker("w1", {}, 1);
  fs::path tree = farm.dir() / "long-line";
  fs::create_directories(tree);
  std::ofstream(tree / "assay.yaml") << absl::StrCat(
      "name: long-line\nsteps:\n  - id: build\n    run: mkdir -p out && echo firmware > out/fw.elf\n"
      "    outputs: [out/]\n  - id: boot\n    needs: [build]\n    timeout: 30s\n    qemu:\n"
      "      system: qemu-system-arm\n      machine: lm3s6965evb\n      kernel: out/fw.elf\n"
      "      args: [-device, ", std::string(100000, 'a'), "]\n      expect: ['(a|aa)*Z']\n");
  auto id = farm.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  auto job = farm.WaitJob(*id, absl::Seconds(120));
  ASSERT_TRUE(job.ok()) << job.status();
  const Task* boot = FindTask(*job, "boot");
  ASSERT_NE(boot, nullptr);
  EXPECT_EQ(boot->state(), assay::v1::TASK_FAILED) << boot->message().substr(0, 300);
  EXPECT_FALSE(boot->timed_out());
  EXPECT_EQ(boot->exit_code(), 1) << "QEMU's own exit";
  EXPECT_TRUE(absl::StrContains(boot->message(), "the guest exited with code 1, expected 0 (expectation 1 of 1 "
                                                 "'(a|aa)*Z' not seen)"))
      << boot->message().substr(0, 300);
  EXPECT_TRUE(absl::StrContains(boot->message(), "is not a valid device model name")) << "QEMU printed the long line";
  const int64_t ran_ms = boot->finished_at_ms() - boot->started_at_ms();
  EXPECT_LT(ran_ms, 10000) << "judged as QEMU printed it, not at the 30 s timeout";

  // The worker's one slot is free: it runs the next job.
  std::ofstream(tree / "next.yaml") << "name: next\nsteps:\n  - id: after\n    run: echo after the long line\n";
  auto next = farm.Submit(tree, "next.yaml");
  ASSERT_TRUE(next.ok()) << next.status();
  auto second = farm.WaitJob(*next, absl::Seconds(60));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->state(), assay::v1::JOB_SUCCEEDED);
  const Task* after = FindTask(*second, "after");
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(after->worker(), "w1");
}

}  // namespace
}  // namespace assay::testing
