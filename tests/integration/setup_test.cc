// scripts/install-deps.sh, the first thing both README commands run, while another program holds the
// package manager's lock (on a fresh machine that is often unattended-upgrades): it waits, says what
// it waits for, and goes on once the lock is free; past its bound it gives up naming the holder.
// The test holds dpkg's front-end lock itself, the way apt does (an fcntl lock), as root.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "common/base/file_util.h"
#include "tests/integration/farm.h"
#include "tests/integration/process.h"

namespace assay::testing {
namespace {

constexpr const char* kFrontendLock = "/var/lib/dpkg/lock-frontend";

// dpkg's front-end lock, held as apt holds it, until released or destroyed.
class AptLock {
 public:
  AptLock() {
    fd_ = open(kFrontendLock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    struct flock lock = {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    held_ = fd_ >= 0 && fcntl(fd_, F_SETLK, &lock) == 0;
  }
  ~AptLock() { Release(); }
  bool held() const { return held_; }
  void Release() {
    if (fd_ >= 0) close(fd_);  // closing drops the process's fcntl locks on the file
    fd_ = -1;
    held_ = false;
  }

 private:
  int fd_ = -1;
  bool held_ = false;
};

std::string ReadAll(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

// install-deps.sh asked to call apt-get even though every package is present (it then installs and
// upgrades nothing), so that it meets the lock; Bazel's packages are left out to keep it short.
std::vector<std::string> InstallDeps(const std::string& lock_timeout_seconds) {
  return {"/usr/bin/env", "ASSAY_INSTALL_DEPS_FORCE=1", "ASSAY_WITH_BAZEL=0",
          "ASSAY_APT_LOCK_TIMEOUT=" + lock_timeout_seconds, "bash", SourceDir() + "/scripts/install-deps.sh"};
}

class SetupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "install-deps.sh installs Debian packages: this test runs as root, as CI does";
    ASSERT_TRUE(std::filesystem::exists("/usr/bin/apt-get")) << "apt-get is missing: not a Debian machine";
  }
  ScopedTempDir dir_{"assay-setup"};
};

TEST_F(SetupTest, InstallDepsWaitsForAHeldPackageManagerLockAndThenProceeds) {
  ASSERT_TRUE(RunCommand({"/usr/bin/env", "ASSAY_WITH_BAZEL=0", "bash", SourceDir() + "/scripts/install-deps.sh"})
                  .exit_code == 0)
      << "the packages of the build must be present before this test";
  AptLock lock;
  ASSERT_TRUE(lock.held()) << "another program holds " << kFrontendLock << " already";
  const auto log = dir_.path() / "install-deps.log";
  Process script(InstallDeps("300"), log);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadAll(log), "waiting up to 300 s for the package manager"); },
                      absl::Seconds(120)))
      << ReadAll(log);
  EXPECT_TRUE(absl::StrContains(ReadAll(log), "held by process " + std::to_string(getpid()))) << ReadAll(log);
  ASSERT_TRUE(script.running()) << "it must wait while the lock is held:\n" << ReadAll(log);

  lock.Release();
  ASSERT_TRUE(WaitFor([&] { return !script.running(); }, absl::Seconds(240))) << ReadAll(log);
  ASSERT_TRUE(WIFEXITED(script.status())) << ReadAll(log);
  EXPECT_EQ(WEXITSTATUS(script.status()), 0) << ReadAll(log);
  EXPECT_TRUE(absl::StrContains(ReadAll(log), "the package manager is free again; apt-get install done")) << ReadAll(log);
  EXPECT_FALSE(absl::StrContains(ReadAll(log), "E: Could not get lock")) << "apt's lock errors are not shown while waiting";
}

TEST_F(SetupTest, InstallDepsGivesUpAfterItsBoundNamingTheLockAndHowToWaitLonger) {
  AptLock lock;
  ASSERT_TRUE(lock.held()) << "another program holds " << kFrontendLock << " already";
  const RunResult run = RunCommand(InstallDeps("3"), absl::Seconds(120));
  EXPECT_NE(run.exit_code, 0) << run.out << run.err;
  EXPECT_TRUE(absl::StrContains(run.err, "Could not get lock " + std::string(kFrontendLock))) << run.err;
  EXPECT_TRUE(absl::StrContains(run.err, "gave up after 3 s waiting for the package manager's lock")) << run.err;
  EXPECT_TRUE(absl::StrContains(run.err, "ASSAY_APT_LOCK_TIMEOUT")) << run.err;
  EXPECT_TRUE(lock.held());
}

}  // namespace
}  // namespace assay::testing
