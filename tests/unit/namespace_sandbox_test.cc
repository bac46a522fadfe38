// The sandbox executor, made by the worker itself (the kernel's namespaces) and by bubblewrap: the
// same promises from both. What a step sees (and does not), its exit code and signals as they
// are, nothing it starts outliving it (its end, its timeout, its worker killed with SIGKILL), and a
// sandbox that cannot be made saying why.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/base/file_util.h"
#include "tests/common/processes.h"
#include "tests/common/wait_for.h"
#include "worker/executor.h"

namespace assay {
namespace {

namespace fs = std::filesystem;
using testing::AnyProcessWith;
using testing::WaitFor;

struct Ran {
  int exit_code = -1;
  bool timed_out = false;
  std::string out, err;
};

class SandboxKindTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto sandbox = SandboxExecutor::Create(GetParam());
    ASSERT_TRUE(sandbox.ok()) << sandbox.status();
    ASSERT_EQ((*sandbox)->kind(), GetParam() == "namespaces" ? SandboxExecutor::Kind::kNamespaces
                                                             : SandboxExecutor::Kind::kBubblewrap);
    executor_ = std::move(*sandbox);
    workdir_ = dir_.path() / "task" / "work";
    ASSERT_TRUE(MakeDirs(workdir_).ok());
  }
  Ran Run(const std::string& script, absl::Duration timeout = absl::Seconds(30)) {
    ExecRequest request;
    request.argv = {"/bin/sh", "-ec", script};
    request.env = {{"PATH", "/usr/bin:/bin"}};
    request.workdir = workdir_;
    request.timeout = timeout;
    Ran ran;
    CancelToken never;
    auto result = executor_->Run(
        request, [&](OutputStream s, absl::string_view d) { (s == OutputStream::kStdout ? ran.out : ran.err).append(d.data(), d.size()); },
        never);
    EXPECT_TRUE(result.ok()) << result.status();
    if (result.ok()) {
      ran.exit_code = result->exit_code;
      ran.timed_out = result->timed_out;
    }
    return ran;
  }
  ScopedTempDir dir_{"sandbox-kind-test"};
  fs::path workdir_;
  std::unique_ptr<SandboxExecutor> executor_;
};

TEST_P(SandboxKindTest, AStepSeesItsFolderTheHostsToolsAndNothingElseOfTheHost) {
  ASSERT_TRUE(WriteFile(dir_.path() / "task" / "beside.txt", "the host's").ok());
  Ran ran = Run(R"sh(pwd
echo made here > out.txt
cc --version > /dev/null && echo "tools: ok"
test ! -e ../beside.txt && echo "beside: hidden"
test ! -e /etc/hostname && echo "etc: only what tools read"
test -r /etc/passwd && test -r /etc/ld.so.cache && echo "etc: passwd, loader cache"
echo "tmp holds: $(ls -A /tmp)"; echo tmp-file > /tmp/mine
test -c /dev/null && echo x > /dev/null && head -c 4 /dev/zero | wc -c && test -d /dev/pts && echo "dev: ok"
ls / | tr '\n' ' '; echo
)sh");
  ASSERT_EQ(ran.exit_code, 0) << ran.out << ran.err;
  for (const char* line : {"tools: ok", "beside: hidden", "etc: only what tools read", "etc: passwd, loader cache",
                           "dev: ok"}) {
    EXPECT_TRUE(absl::StrContains(ran.out, line)) << line << "\n" << ran.out << ran.err;
  }
  // /tmp is the sandbox's own: empty, but for the way to the work folder when that is under /tmp.
  const fs::path below_tmp = workdir_.lexically_relative("/tmp");
  const std::string in_tmp = below_tmp.empty() || *below_tmp.begin() == ".." ? "" : below_tmp.begin()->string();
  EXPECT_TRUE(absl::StrContains(ran.out, absl::StrCat("tmp holds: ", in_tmp, "\n"))) << ran.out;
  EXPECT_TRUE(absl::StartsWith(ran.out, workdir_.string() + "\n")) << ran.out;
  // The root holds the sandbox's own folders and the top of the work folder's path, nothing more.
  const std::string top = (*workdir_.begin() == "/" ? *std::next(workdir_.begin()) : *workdir_.begin()).string();
  std::vector<std::string> expected = {"bin", "dev", "etc", "lib", "lib64", "proc", "sbin", "tmp", "usr"};
  if (std::find(expected.begin(), expected.end(), top) == expected.end()) expected.push_back(top);
  std::sort(expected.begin(), expected.end());
  EXPECT_TRUE(absl::StrContains(ran.out, absl::StrJoin(expected, " ") + " \n")) << ran.out;
  EXPECT_EQ(ReadFile(workdir_ / "out.txt").value_or(""), "made here\n");
  // The next step's /tmp is a fresh one.
  Ran next = Run("test ! -e /tmp/mine && echo fresh");
  EXPECT_EQ(next.out, "fresh\n") << next.err;
}

TEST_P(SandboxKindTest, ExitCodesAndSignalsAreTheSteps) {
  EXPECT_EQ(Run("echo out; echo err >&2; exit 3").exit_code, 3);
  Ran both = Run("echo out; echo err >&2");
  EXPECT_EQ(both.out, "out\n");
  EXPECT_EQ(both.err, "err\n");
  // The step is not the namespace's pid 1, to which a signal without a handler does nothing.
  EXPECT_EQ(Run("kill -TERM $$; sleep 30").exit_code, 128 + SIGTERM);
  EXPECT_EQ(Run("kill -KILL $$").exit_code, 128 + SIGKILL);
  EXPECT_EQ(Run("test $$ -ne 1 && exit 5").exit_code, 5);
  ExecRequest missing;
  missing.argv = {"/nonexistent/program"};
  missing.workdir = workdir_;
  CancelToken never;
  auto result = executor_->Run(missing, [](OutputStream, absl::string_view) {}, never);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE(result->exit_code, 0);
}

TEST_P(SandboxKindTest, NothingAStepStartsOutlivesItsEndOrItsTimeout) {
  const std::string marker = absl::StrCat("assay-sandbox-kind-", getpid(), "-", GetParam());
  Ran left = Run(absl::StrCat("sh -c 'sleep 300; echo ", marker, "-a' & echo started"));
  EXPECT_EQ(left.exit_code, 0) << left.err;
  EXPECT_TRUE(WaitFor([&] { return !AnyProcessWith(marker + "-a"); }, absl::Seconds(5)));
  Ran hung = Run(absl::StrCat("sh -c 'sleep 300; echo ", marker, "-b' & sleep 300"), absl::Milliseconds(500));
  EXPECT_TRUE(hung.timed_out);
  EXPECT_TRUE(WaitFor([&] { return !AnyProcessWith(marker + "-b"); }, absl::Seconds(5)));
}

// The process that runs the executor (the worker) killed with SIGKILL: its step goes with it.
TEST_P(SandboxKindTest, AStepDiesWithItsWorker) {
  const std::string marker = absl::StrCat("assay-sandbox-orphan-", getpid(), "-", GetParam());
  const pid_t worker = ::fork();
  ASSERT_GE(worker, 0);
  if (worker == 0) {
    Run(absl::StrCat("sh -c 'sleep 300; echo ", marker, "' & sleep 300"), absl::Seconds(600));
    _exit(0);
  }
  const bool started = WaitFor([&] { return AnyProcessWith(marker); }, absl::Seconds(20));
  ::kill(worker, SIGKILL);
  ::waitpid(worker, nullptr, 0);
  ASSERT_TRUE(started) << "the step never started";
  EXPECT_TRUE(WaitFor([&] { return !AnyProcessWith(marker); }, absl::Seconds(5))) << "the step outlived its worker";
}

INSTANTIATE_TEST_SUITE_P(Kinds, SandboxKindTest, ::testing::Values("namespaces", "bubblewrap"),
                         [](const ::testing::TestParamInfo<std::string>& kind) { return kind.param; });

TEST(NamespaceSandboxTest, ASandboxThatCannotBeMadeSaysWhy) {
  auto sandbox = SandboxExecutor::Create("namespaces");
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  ExecRequest request;
  request.argv = {"/bin/true"};
  request.workdir = "/nonexistent/assay-task";
  std::string err;
  CancelToken never;
  auto result = (*sandbox)->Run(request, [&](OutputStream, absl::string_view d) { err.append(d.data(), d.size()); }, never);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 125);
  EXPECT_TRUE(absl::StrContains(err, "assay sandbox: copying /nonexistent/assay-task: No such file or directory")) << err;
}

// The sandbox's pid 1 shares the worker's memory: the step must not read or write it, nor learn
// its layout or environment (the same user, but pid 1 holds capabilities the step does not).
TEST(NamespaceSandboxTest, TheStepCannotReachItsPid1WhoseMemoryIsTheWorkers) {
  auto sandbox = SandboxExecutor::Create("namespaces");
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  ScopedTempDir dir("sandbox-pid1-test");
  ExecRequest request;
  request.argv = {"/bin/sh", "-c", R"sh(
for f in mem maps environ auxv; do  # opening is the check (reading /proc/1/mem at 0 fails anyway)
  if (exec 3< /proc/1/$f) 2> /dev/null; then echo "/proc/1/$f: OPENED"; else echo "/proc/1/$f: refused"; fi
done
if (exec 3<> /proc/1/mem) 2> /dev/null; then echo "/proc/1/mem: OPENED for writing"; fi
if readlink /proc/1/fd/0 > /dev/null 2>&1; then echo "/proc/1/fd/0: FOLLOWED"; else echo "/proc/1/fd/0: refused"; fi
grep -q "^CapEff:.*0000000000000000$" /proc/self/status && echo "step: no capabilities"
)sh"};
  request.workdir = dir.path();
  std::string out;
  CancelToken never;
  auto result = (*sandbox)->Run(request, [&](OutputStream, absl::string_view d) { out.append(d.data(), d.size()); }, never);
  ASSERT_TRUE(result.ok()) << result.status();
  for (const char* line : {"/proc/1/mem: refused", "/proc/1/maps: refused", "/proc/1/environ: refused",
                           "/proc/1/auxv: refused", "/proc/1/fd/0: refused", "step: no capabilities"}) {
    EXPECT_TRUE(absl::StrContains(out, line)) << line << "\n" << out;
  }
  EXPECT_FALSE(absl::StrContains(out, "OPENED") || absl::StrContains(out, "FOLLOWED")) << out;
}

TEST(NamespaceSandboxTest, AnUnknownSandboxIsRefused) {
  auto sandbox = SandboxExecutor::Create("chroot");
  ASSERT_FALSE(sandbox.ok());
  EXPECT_TRUE(absl::StrContains(sandbox.status().message(), "unknown sandbox \"chroot\"")) << sandbox.status();
}

}  // namespace
}  // namespace assay
