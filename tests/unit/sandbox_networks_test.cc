// The sandbox's network namespaces, made once and lent to one sandbox at a time
// (worker/sandbox_networks.h): a slot's next step gets the same one, empty, with nothing of the
// last step in it and a user namespace of its own; two steps running at once never share one.
#include "worker/sandbox_networks.h"

#include <sys/stat.h>

#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/base/file_util.h"
#include "tests/common/wait_for.h"
#include "worker/executor.h"

namespace assay {
namespace {

namespace fs = std::filesystem;
using testing::WaitFor;

ino_t InodeOf(int fd) {
  struct stat st = {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  return st.st_ino;
}

TEST(SandboxNetworksTest, ALeaseReturnedIsLentAgainAndTwoAtOnceAreTwoNamespaces) {
  SandboxNetworks pool;
  ino_t first = 0;
  {
    auto lease = pool.Acquire();
    ASSERT_TRUE(lease.ok()) << lease.status();
    first = InodeOf(lease->net_fd());
  }
  auto again = pool.Acquire();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(InodeOf(again->net_fd()), first) << "the one given back";
  auto other = pool.Acquire();
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE(InodeOf(other->net_fd()), first) << "the first is still lent: a new one";
  EXPECT_EQ(pool.made(), 2);
}

// A shell script, as a step in the worker's own sandbox.
class SandboxNetworkStepsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sandbox = SandboxExecutor::Create("namespaces");
    ASSERT_TRUE(sandbox.ok()) << sandbox.status();
    executor_ = std::move(*sandbox);
  }
  // Runs `script` in a folder of its own (`name`), returning its stdout (stderr on failure).
  std::string Run(const std::string& name, const std::string& script) {
    const fs::path workdir = dir_.path() / name;
    EXPECT_TRUE(MakeDirs(workdir).ok());
    ExecRequest request;
    request.argv = {"/bin/sh", "-ec", script};
    request.env = {{"PATH", "/usr/bin:/bin"}};
    request.workdir = workdir;
    request.timeout = absl::Seconds(60);
    std::string out, err;
    CancelToken never;
    auto result = executor_->Run(
        request,
        [&](OutputStream s, absl::string_view d) {
          absl::MutexLock lock(&mu_);
          (s == OutputStream::kStdout ? out : err).append(d.data(), d.size());
          if (s == OutputStream::kStdout) said_[name] = out;
        },
        never);
    EXPECT_TRUE(result.ok()) << result.status();
    EXPECT_TRUE(result.ok() && result->exit_code == 0) << name << ": " << err;
    return out;
  }
  std::string Said(const std::string& name) {
    absl::MutexLock lock(&mu_);
    return said_[name];
  }
  ScopedTempDir dir_{"sandbox-networks-test"};
  std::unique_ptr<SandboxExecutor> executor_;
  absl::Mutex mu_;
  std::map<std::string, std::string> said_ ABSL_GUARDED_BY(mu_);
};

// What the step is in, and what it finds of the network: the loopback's state, and whether an
// abstract socket name is free. Then it leaves a process behind holding that name.
constexpr const char* kLookAround = R"sh(
echo "net $(readlink /proc/self/ns/net) user $(readlink /proc/self/ns/user)"
python3 - <<'EOF'
import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack('16sH', fcntl.ioctl(s, 0x8913, struct.pack('16sH', b'lo', 0)))[1]  # SIOCGIFFLAGS
print('loopback', 'up' if flags & 1 else 'down')
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    u.bind('\0assay-sandbox-networks-test'); print('abstract name free')
except OSError as e:
    print('abstract name taken:', e)
EOF
python3 -c "import socket,time; u=socket.socket(socket.AF_UNIX); u.bind('\0assay-sandbox-networks-test'); u.listen(); time.sleep(600)" &
)sh";

TEST_F(SandboxNetworkStepsTest, TheNextStepGetsTheSameNetworkEmptyAndAUserNamespaceOfItsOwn) {
  const std::string first = Run("first", kLookAround);
  const std::string second = Run("second", kLookAround);
  for (const std::string* said : {&first, &second}) {
    EXPECT_TRUE(absl::StrContains(*said, "loopback down")) << *said;
    EXPECT_TRUE(absl::StrContains(*said, "abstract name free")) << "nothing of the last step is left: " << *said;
  }
  const std::string net = first.substr(0, first.find(" user "));
  EXPECT_TRUE(absl::StartsWith(second, net)) << "the same network namespace: " << first << " / " << second;
  const std::string user = first.substr(first.find(" user "), first.find('\n') - first.find(" user "));
  EXPECT_FALSE(absl::StrContains(second, user)) << "a new user namespace: " << first << " / " << second;
}

TEST_F(SandboxNetworkStepsTest, TwoStepsAtOnceHaveNetworksOfTheirOwn) {
  // Each says which network it is in, then waits (at most a minute) for the test to let it end.
  const std::string script = R"sh(
echo "net $(readlink /proc/self/ns/net)"
i=0; while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
)sh";
  std::thread a([&] { Run("a", script); });
  std::thread b([&] { Run("b", script); });
  const bool both = WaitFor([&] { return !Said("a").empty() && !Said("b").empty(); }, absl::Seconds(30));
  ASSERT_TRUE(WriteFile(dir_.path() / "a" / "go", "").ok());
  ASSERT_TRUE(WriteFile(dir_.path() / "b" / "go", "").ok());
  a.join();
  b.join();
  ASSERT_TRUE(both);
  EXPECT_NE(Said("a"), Said("b")) << "running at once, in networks of their own";
}

}  // namespace
}  // namespace assay
