#include <signal.h>

#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "common/base/file_util.h"
#include "common/tree/safe_fs.h"
#include "worker/executor.h"

namespace assay {
namespace {

class ProcessExecutorTest : public ::testing::Test {
 protected:
  ExecRequest Shell(const std::string& script, absl::Duration timeout = absl::Seconds(30)) {
    ExecRequest r;
    r.argv = {"/bin/sh", "-ec", script};
    r.env = {{"PATH", "/usr/bin:/bin"}, {"GREETING", "hi"}};
    r.workdir = dir_.path();
    r.timeout = timeout;
    return r;
  }
  ScopedTempDir dir_;
  ProcessExecutor executor_;
};

bool Alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  size_t close = line.rfind(')');
  return line[close + 2] != 'Z';
}

TEST_F(ProcessExecutorTest, StreamsBothOutputsAndReportsTheExitCode) {
  std::string out, err;
  CancelToken cancel;
  auto result = executor_.Run(Shell("echo $GREETING; pwd; echo oops >&2; exit 4"),
                              [&](OutputStream s, absl::string_view d) {
                                (s == OutputStream::kStdout ? out : err).append(d.data(), d.size());
                              },
                              cancel);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 4);
  EXPECT_FALSE(result->timed_out);
  EXPECT_EQ(out, "hi\n" + dir_.path().string() + "\n");
  EXPECT_EQ(err, "oops\n");
}

TEST_F(ProcessExecutorTest, TimeoutKillsTheWholeProcessGroup) {
  CancelToken cancel;
  auto result = executor_.Run(Shell("sleep 300 & echo $! > child.pid; wait", absl::Milliseconds(300)),
                              [](OutputStream, absl::string_view) {}, cancel);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->timed_out);
  EXPECT_NE(result->exit_code, 0);
  int child = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(dir_.path() / "child.pid").value()), &child));
  // The orphaned sleep is reparented; allow it to be reaped, but it must not be running.
  EXPECT_FALSE(Alive(child));
  EXPECT_LT(result->finished - result->started, absl::Seconds(5));
}

TEST_F(ProcessExecutorTest, CancelStopsARunningCommandPromptly) {
  CancelToken cancel;
  absl::Notification started;  // the command's first output arrived
  std::thread canceller([&]() {
    started.WaitForNotificationWithTimeout(absl::Seconds(30));
    cancel.Cancel();
  });
  auto result = executor_.Run(Shell("echo go; exec sleep 300"),
                              [&](OutputStream, absl::string_view) {
                                if (!started.HasBeenNotified()) started.Notify();
                              },
                              cancel);
  canceller.join();
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->cancelled);
  EXPECT_LT(result->finished - result->started, absl::Seconds(3));
}

TEST_F(ProcessExecutorTest, LeftoverBackgroundProcessesDoNotHoldTheStepOpen) {
  CancelToken cancel;
  auto result = executor_.Run(Shell("sleep 300 & echo $! > bg.pid; echo done"), [](OutputStream, absl::string_view) {},
                              cancel);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_LT(result->finished - result->started, absl::Seconds(5));
  int bg = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(dir_.path() / "bg.pid").value()), &bg));
  EXPECT_FALSE(Alive(bg));
}

// An emulator's console prints a character at a time: the worker reads it a piece at a time (a
// read, then a short rest for more), not one wake-up and one log message per character. 200
// one-byte writes, a little work apart, come in far fewer reads, whole and in order.
TEST_F(ProcessExecutorTest, OutputPrintedACharacterAtATimeIsReadInPieces) {
  std::string out;
  int reads = 0;
  CancelToken cancel;
  const std::string busy = "j=0; while [ $j -lt 10 ]; do j=$((j+1)); done";
  auto result = executor_.Run(Shell("i=0; while [ $i -lt 200 ]; do printf x; " + busy + "; i=$((i+1)); done; echo"),
                              [&](OutputStream, absl::string_view d) {
                                out.append(d.data(), d.size());
                                ++reads;
                              },
                              cancel);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(out, std::string(200, 'x') + "\n");
  EXPECT_LE(reads, 60);  // (one per character would be 201)
}

TEST_F(ProcessExecutorTest, MissingProgramExits127) {
  CancelToken cancel;
  ExecRequest r = Shell("");
  r.argv = {"/nonexistent/binary"};
  auto result = executor_.Run(r, [](OutputStream, absl::string_view) {}, cancel);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 127);
}

// A script written while another step starts, then run: the other step's supervisor copied the
// worker's descriptors, the script's writable one among them; had it kept that copy, exec of the
// script would fail with "Text file busy" for as long as the other step runs.
TEST_F(ProcessExecutorTest, AScriptWrittenWhileAnotherStepStartsCanBeRun) {
  const std::string script = "#!/bin/sh\necho ran\n";
  auto dir = OpenDirectory(dir_.path());
  ASSERT_TRUE(dir.ok()) << dir.status();
  auto writer = VerifiedFileWriter::Create(dir->get(), "build.sh", Digest::OfBytes(script), /*executable=*/true);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE(writer->Append(script).ok());

  CancelToken cancel_other;
  absl::Notification other_started;
  std::thread other([&]() {
    executor_
        .Run(Shell("echo go; exec sleep 300"),
             [&](OutputStream, absl::string_view) {
               if (!other_started.HasBeenNotified()) other_started.Notify();
             },
             cancel_other)
        .IgnoreError();
  });
  ASSERT_TRUE(other_started.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(writer->Commit().ok());  // closes the worker's descriptor

  std::string out;
  CancelToken cancel;
  auto result = executor_.Run(Shell("./build.sh"),
                              [&](OutputStream, absl::string_view d) { out.append(d.data(), d.size()); }, cancel);
  cancel_other.Cancel();
  other.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << out;
  EXPECT_EQ(out, "ran\n");
}

}  // namespace
}  // namespace assay
