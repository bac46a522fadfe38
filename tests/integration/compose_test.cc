// deploy/ for real: the images built offline by deploy/images/build-images.sh (a debootstrap rootfs
// from the host's apt mirror, cached between runs), then deploy/compose/docker-compose.yml starts a
// coordinator and two workers on a private Docker daemon, which runs in a network namespace of the
// test's own (so its bridge and published ports never touch the host's namespace). The example
// matrix runs green through the published, TLS-protected port.
#include <signal.h>
#include <unistd.h>

#include <memory>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/client.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {

namespace fs = std::filesystem;

class ComposeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"/usr/sbin/ip", "/usr/bin/nsenter", "/usr/sbin/dockerd", "/usr/bin/docker-compose",
                             "/usr/sbin/debootstrap"}) {
      ASSERT_TRUE(fs::exists(tool)) << tool << " is missing (scripts/install-deps.sh installs it)";
    }
    ASSERT_EQ(::geteuid(), 0u) << "a private Docker daemon needs root";
    ns_ = absl::StrCat("assay", ::getpid(), "-docker");
    ASSERT_EQ(RunCommand({"/usr/sbin/ip", "netns", "add", ns_}).exit_code, 0);
    ASSERT_EQ(RunCommand({"/usr/sbin/ip", "-n", ns_, "link", "set", "lo", "up"}).exit_code, 0);
    const fs::path d = dir();
    dockerd_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/nsenter", "--net=/run/netns/" + ns_, "/usr/sbin/dockerd", "--data-root",
                                 (d / "data").string(), "--exec-root", (d / "exec").string(), "--pidfile",
                                 (d / "dockerd.pid").string(), "-H", "unix://" + (d / "docker.sock").string(),
                                 "--iptables=false"},
        d / "dockerd.log");
    ASSERT_TRUE(WaitFor([&]() { return Docker({"version"}).exit_code == 0; }, absl::Seconds(30)))
        << ReadFile(d / "dockerd.log").value_or("");
  }

  void TearDown() override {
    if (dockerd_) {
      Compose({"down", "--volumes", "--timeout", "5"});
      dockerd_.reset();  // SIGTERM by pid: it stops its containers and its containerd
    }
    if (!ns_.empty()) RunCommand({"/usr/sbin/ip", "netns", "del", ns_});
    // dockerd leaves its (now empty) parent cgroups behind; rmdir removes only empty ones.
    std::error_code ec;
    for (const auto& controller : fs::directory_iterator("/sys/fs/cgroup", ec)) {
      ::rmdir((controller.path() / "docker").c_str());
    }
  }

  std::vector<std::string> Env() const {
    return {"DOCKER_HOST=unix://" + (dir() / "docker.sock").string(), "ASSAY_SECRETS=" + (dir() / "secrets").string()};
  }
  RunResult Docker(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/docker");
    return RunCommand(args, absl::Seconds(60), Env());
  }
  RunResult Compose(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/docker-compose", "-p", "assaytest", "-f", SourceDir() + "/deploy/compose/docker-compose.yml"});
    return RunCommand(args, absl::Seconds(300), Env());
  }
  // The CLI in the daemon's namespace, through the port compose published on its loopback.
  CliClient Client() const {
    CliClient::Options options;
    options.address = "127.0.0.1:7171";
    options.security_args = {"--tls-ca", (dir() / "secrets" / "ca.pem").string(), "--token-file",
                             (dir() / "secrets" / "client-token").string()};
    options.prefix = {"/usr/sbin/ip", "netns", "exec", ns_};
    options.timeout = absl::Seconds(300);
    return CliClient(std::move(options));
  }
  RunResult Cli(const std::vector<std::string>& args) { return Client().Run(args); }

  const fs::path& dir() const { return dir_.path(); }

  ScopedTempDir dir_{"assay-compose"};
  std::string ns_;
  std::unique_ptr<Process> dockerd_;
};

TEST_F(ComposeTest, ACoordinatorAndTwoWorkersFromTheComposeFileRunTheExample) {
  // The binaries of this build, in images made offline (the rootfs tarballs are cached).
  const fs::path bin = fs::path(BinaryPath("assay-coordinator")).parent_path().parent_path();
  RunResult images = RunCommand({SourceDir() + "/deploy/images/build-images.sh", "--bin", bin.string()},
                                absl::Minutes(15), Env());
  ASSERT_EQ(images.exit_code, 0) << images.out << images.err;
  RunResult secrets = RunCommand({SourceDir() + "/deploy/compose/make-secrets.sh", (dir() / "secrets").string()});
  ASSERT_EQ(secrets.exit_code, 0) << secrets.err;

  RunResult up = Compose({"up", "-d", "--scale", "worker=2"});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  int connected = 0;
  WaitFor([&]() { return (connected = Client().ConnectedWorkers()) == 2; }, absl::Seconds(60));
  ASSERT_EQ(connected, 2) << Compose({"logs"}).out;

  RunResult run = Cli({"submit", SourceDir() + "/examples/karatos-mini", "--wait"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err << Compose({"logs"}).out;
  EXPECT_TRUE(absl::StrContains(run.out, "succeeded: 8/8 tasks done")) << run.out;
  RunResult health = Cli({"health"});
  EXPECT_EQ(health.out, "SERVING\n") << health.err;
}

}  // namespace
}  // namespace assay::testing
