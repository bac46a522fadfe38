// Steps in container images with real engines, each test once with Docker and once with Podman
// (tests/integration/engines.h: a private dockerd without a bridge, stopped by pid; a daemonless
// Podman with its own storage and configuration, handed to the worker and the CLI through
// CONTAINERS_CONF and CONTAINERS_STORAGE_CONF). Fixture images are made offline from busybox-static.
// The worker runs with --container-engine docker|podman; the CLI resolves images with the same engine.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tests/integration/engines.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {

namespace fs = std::filesystem;
using assay::v1::Task;

// How many of `parent`'s children have ended and not been reaped.
int ZombieChildren(pid_t parent) {
  int zombies = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;  // a process's folder
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t end_of_name = stat.rfind(')');  // "pid (name) state ppid ..."; a name may hold ") "
    if (end_of_name == std::string::npos) continue;
    std::istringstream rest(stat.substr(end_of_name + 1));
    char state = 0;
    pid_t ppid = 0;
    if (rest >> state >> ppid && ppid == parent && state == 'Z') ++zombies;
  }
  return zombies;
}

class ContainerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::vector<const char*> tools = {"/bin/busybox"};
    if (GetParam() == "podman") {
      tools.insert(tools.end(), {"/usr/bin/podman", "/usr/sbin/runc", "/usr/bin/conmon"});
    } else {
      tools.insert(tools.end(), {"/usr/sbin/dockerd", "/usr/bin/docker"});
    }
    for (const char* tool : tools) {
      ASSERT_TRUE(fs::exists(tool)) << tool << " is missing (scripts/install-deps.sh installs it)";
    }
    ASSERT_EQ(::geteuid(), 0u) << "a private " << GetParam() << " engine needs root";
    engine_ = std::make_unique<TestEngine>(GetParam(), dir_.path());
    ASSERT_TRUE(engine_->Start().ok());
    farm_.set_cli_env(engine_->Env());
    MakeImage("assay-test/busybox:1", "1");
    farm_.StartCoordinator();
    StartWorker();
  }

  void TearDown() override {
    farm_.StopWorker("w1");
    engine_.reset();
  }

  RunResult Engine(std::vector<std::string> args) { return engine_->Run(std::move(args)); }
  void StartWorker() { farm_.StartWorker("w1", {}, 4, engine_->WorkerArgs()); }
  void MakeImage(const std::string& tag, const std::string& version) {
    absl::Status made = engine_->MakeBusyboxImage(tag, version);
    ASSERT_TRUE(made.ok()) << made;
  }
  std::string Containers() { return engine_->Containers("w1"); }  // of worker w1, on the engine

  ScopedTempDir dir_{"assay-containers"};
  std::unique_ptr<TestEngine> engine_;
  Farm farm_;
};

INSTANTIATE_TEST_SUITE_P(Engines, ContainerTest, ::testing::Values("docker", "podman"),
                         [](const ::testing::TestParamInfo<std::string>& engine) { return engine.param; });

TEST_P(ContainerTest, StepsRunInTheirImageWithTheirEnvUserLimitsAndNoNetwork) {
  auto tree = farm_.WriteTree("in-image", {{"assay.yaml", R"yaml(
image: assay-test/busybox:1
env: {GREETING: hello}
steps:
  - id: image
    run: cat /etc/version; test ! -e /usr/bin/apt-get; mkdir -p out; echo "$GREETING from $(pwd)" > out/greeting.txt; ls src
    outputs: [out/]
  - id: reads
    needs: [image]
    run: cat out/greeting.txt
  - id: exits
    run: exit 7
  - id: segv
    run: sh -c 'kill -SEGV $$'; exit $?  # not the container's PID 1, which no signal of its own ends
  - id: offline
    run: cat /proc/net/dev
  - id: user
    user: "1234:1234"
    run: id -u
  - id: hog
    run: x=$(head -c 200000000 /dev/zero | tr '\0' a); echo ${#x}
    limits: {memory: 32MiB}
)yaml"}, {"src/a.c", "int a;\n"}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  auto job = farm_.WaitJob(*id, absl::Seconds(120));
  ASSERT_TRUE(job.ok()) << job.status() << "\n" << farm_.Cli({"status", *id}).out;
  auto task = [&](const std::string& step) { return FindTask(*job, step); };
  EXPECT_EQ(task("image")->state(), assay::v1::TASK_SUCCEEDED) << farm_.Log(*id, "image");
  EXPECT_TRUE(absl::StrContains(farm_.Log(*id, "image"), "1\n")) << "the image's /etc/version";
  EXPECT_TRUE(absl::StrContains(farm_.Log(*id, "image"), "a.c")) << "the tree is in the work directory";
  // The output left the container through the mounted work directory and reached the next step.
  EXPECT_TRUE(absl::StrContains(farm_.Log(*id, "reads"), "hello from /work")) << farm_.Log(*id, "reads");
  EXPECT_EQ(task("exits")->state(), assay::v1::TASK_FAILED);
  EXPECT_EQ(task("exits")->exit_code(), 7);
  EXPECT_EQ(task("segv")->exit_code(), 128 + SIGSEGV);
  EXPECT_EQ(task("segv")->message(), "exit code 139 (signal 11, SIGSEGV)");
  const std::string net = farm_.Log(*id, "offline");
  EXPECT_TRUE(absl::StrContains(net, "lo:")) << net;
  EXPECT_FALSE(absl::StrContains(net, "eth")) << "a container step has no network unless it asks:\n" << net;
  EXPECT_TRUE(absl::StrContains(farm_.Log(*id, "user"), "1234")) << farm_.Log(*id, "user");
  EXPECT_EQ(task("hog")->state(), assay::v1::TASK_FAILED);
  EXPECT_TRUE(absl::StrContains(task("hog")->message(), "killed for exceeding its memory limit of 32 MiB"))
      << task("hog")->message();
  EXPECT_EQ(Containers(), "") << "every container is removed after its step";
  // What a step's engine left behind (Podman's conmon leaves the step's process group, and a step
  // over its memory left its container's init) is reaped by the worker when a step ends, so at most
  // the last few steps' (one a slot) wait for the next: none pile up.
  EXPECT_LE(ZombieChildren(farm_.worker_pid("w1")), 4) << "zombie children of the worker";
}

TEST_P(ContainerTest, TimeoutAndCancelLeaveNoContainerBehind) {
  auto tree = farm_.WriteTree("slow", {{"assay.yaml", R"(
image: assay-test/busybox:1
steps:
  - id: slow
    run: sleep 60
    timeout: 2s
    cache: false
)"}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  auto job = farm_.WaitJob(*id, absl::Seconds(60));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->tasks(0).state(), assay::v1::TASK_FAILED);
  EXPECT_TRUE(absl::StrContains(job->tasks(0).message(), "timed out")) << job->tasks(0).message();
  EXPECT_EQ(Containers(), "");

  auto cancelled = farm_.Submit(farm_.WriteTree("cancelled", {{"assay.yaml", "image: assay-test/busybox:1\nsteps:\n"
                                                                                "  - id: slow\n    run: sleep 60\n"
                                                                                "    cache: false\n"}}));
  ASSERT_TRUE(cancelled.ok());
  ASSERT_TRUE(WaitFor([&]() { return !Containers().empty(); }, absl::Seconds(30)));
  const absl::Time asked = absl::Now();
  ASSERT_EQ(farm_.Cli({"cancel", *cancelled}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&]() { return Containers().empty(); }, absl::Seconds(10)));
  // (The issue asks for 2 s; 4 leaves room for a loaded CI machine. The time is printed.)
  std::cout << "[ measured ] container gone " << absl::FormatDuration(absl::Now() - asked) << " after the cancel\n";
  EXPECT_LT(absl::Now() - asked, absl::Seconds(4)) << "the container outlived the cancel";
}

TEST_P(ContainerTest, AWorkerStoppedMidStepLeavesNoContainerBehind) {
  auto id = farm_.Submit(farm_.WriteTree("stopped", {{"assay.yaml", "image: assay-test/busybox:1\nsteps:\n"
                                                                     "  - id: slow\n    run: sleep 60\n    cache: false\n"}}));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(WaitFor([&]() { return !Containers().empty(); }, absl::Seconds(30)));
  const absl::Time asked = absl::Now();
  farm_.StopWorker("w1", SIGINT);  // hands its task back at once, and waits for the worker to exit
  EXPECT_EQ(Containers(), "") << "the container outlived its worker";
  std::cout << "[ measured ] worker stopped and its container gone " << absl::FormatDuration(absl::Now() - asked)
            << " after SIGINT\n";
  EXPECT_LT(absl::Now() - asked, absl::Seconds(4)) << "the worker took that long to stop its container";
  ASSERT_EQ(farm_.Cli({"cancel", *id}).exit_code, 0);
}

TEST_P(ContainerTest, AWorkerRestartedAfterKillDashNineRemovesItsStaleContainers) {
  auto id = farm_.Submit(farm_.WriteTree("stale", {{"assay.yaml", "image: assay-test/busybox:1\nsteps:\n"
                                                                   "  - id: slow\n    run: sleep 60\n    cache: false\n"}}));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(WaitFor([&]() { return !Containers().empty(); }, absl::Seconds(30)));
  const std::string stale = Containers();
  farm_.StopWorker("w1", SIGKILL);
  EXPECT_EQ(Containers(), stale) << "the engine keeps a container whose worker died";
  StartWorker();
  // At start the worker removed it (the task, queued again, may since have started a new one).
  EXPECT_NE(Engine({"inspect", stale}).exit_code, 0) << "the stale container " << stale << " is still there";
  ASSERT_EQ(farm_.Cli({"cancel", *id}).exit_code, 0);
}

TEST_P(ContainerTest, AChangedImageRerunsTheStepAndAnUnchangedOneIsACacheHit) {
  auto tree = farm_.WriteTree("versioned", {{"assay.yaml", "image: assay-test/busybox:1\nsteps:\n"
                                                           "  - id: version\n    run: cat /etc/version\n"}});
  auto first = farm_.Submit(tree);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(farm_.WaitJob(*first).ok());
  auto second = farm_.Submit(tree);
  ASSERT_TRUE(second.ok());
  auto same = farm_.WaitJob(*second);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->tasks(0).cached()) << "an unchanged image is a cache hit";
  MakeImage("assay-test/busybox:1", "2");  // the same name, another image
  auto third = farm_.Submit(tree);
  ASSERT_TRUE(third.ok());
  auto changed = farm_.WaitJob(*third);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(changed->tasks(0).cached()) << "a changed image runs the step again";
  EXPECT_EQ(changed->tasks(0).state(), assay::v1::TASK_SUCCEEDED);
  EXPECT_TRUE(absl::StrContains(farm_.Log(*third, "version"), "2\n")) << farm_.Log(*third, "version");
}

// The example's build and QEMU steps in the cross-toolchain image built offline by
// deploy/images/build-images.sh (its debootstrap rootfs is cached between runs).
TEST_P(ContainerTest, TheExampleBuildsAndBootsInTheToolchainImageThenIsAllCacheHits) {
  ASSERT_TRUE(fs::exists("/usr/sbin/debootstrap")) << "debootstrap is missing (scripts/install-deps.sh installs it)";
  RunResult images = RunCommand({SourceDir() + "/deploy/images/build-images.sh", "--engine", GetParam(), "--rootfs-only"},
                                absl::Minutes(15), engine_->Env());
  ASSERT_EQ(images.exit_code, 0) << images.out << images.err;
  const std::string example = SourceDir() + "/examples/karatos-mini";
  RunResult first = farm_.Cli({"submit", example, "-f", "assay-container.yaml", "--wait"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_TRUE(absl::StrContains(first.out, "succeeded: 8/8 tasks done")) << first.out;
  auto job = farm_.GetJob("1");
  ASSERT_TRUE(job.ok());
  for (const Task& t : job->tasks()) EXPECT_FALSE(t.cached()) << t.id();
  EXPECT_TRUE(absl::StrContains(farm_.Log("1", "rv32imac/release/test"), "KARATOS OK: all tasks done"));
  RunResult second = farm_.Cli({"submit", example, "-f", "assay-container.yaml", "--wait"});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  auto again = farm_.GetJob("2");
  ASSERT_TRUE(again.ok());
  for (const Task& t : again->tasks()) EXPECT_TRUE(t.cached()) << t.id() << " ran again";
  EXPECT_EQ(Containers(), "");
}

// examples/karatos-rs in the toolchain image (Debian's Rust 1.96 in it): cargo -Zbuild-std and QEMU in
// containers, then a one-line edit that restores each build's step cache and compiles only the
// application. Instantiated for Docker only: the image and the Rust build are the same under Podman,
// and would cost the suite their time twice.
class RustContainerTest : public ContainerTest {};
INSTANTIATE_TEST_SUITE_P(Engines, RustContainerTest, ::testing::Values("docker"),
                         [](const ::testing::TestParamInfo<std::string>& engine) { return engine.param; });

TEST_P(RustContainerTest, TheRustExampleBuildsInTheToolchainImageAndAnEditRestoresItsStepCache) {
  RunResult images = RunCommand({SourceDir() + "/deploy/images/build-images.sh", "--engine", GetParam(), "--rootfs-only"},
                                absl::Minutes(20), engine_->Env());
  ASSERT_EQ(images.exit_code, 0) << images.out << images.err;
  const fs::path tree = dir_.path() / "karatos-rs";
  fs::copy(SourceDir() + "/examples/karatos-rs", tree, fs::copy_options::recursive);
  for (const char* built : {"target", ".cargo-home", "out"}) fs::remove_all(tree / built);
  RunResult cold = farm_.Cli({"submit", tree.string(), "-f", "assay-container.yaml", "--wait"}, absl::Minutes(25));
  ASSERT_EQ(cold.exit_code, 0) << cold.out << cold.err;
  EXPECT_TRUE(absl::StrContains(cold.out, "succeeded: 8/8 tasks done")) << cold.out;
  std::ifstream in(tree / "app/src/main.rs");
  std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(absl::StrContains(source, "Blink { counter: 0, limit: 3 }"));
  std::ofstream(tree / "app/src/main.rs") << absl::StrReplaceAll(source, {{"Blink { counter: 0, limit: 3 }", "Blink { counter: 0, limit: 5 }"}});
  RunResult warm = farm_.Cli({"submit", tree.string(), "-f", "assay-container.yaml", "--wait"}, absl::Minutes(10));
  ASSERT_EQ(warm.exit_code, 0) << warm.out << warm.err;
  const std::string log = farm_.Log("2", "rv32imac/release/build");
  EXPECT_TRUE(absl::StrContains(log, ": restored, ")) << log;
  EXPECT_TRUE(absl::StrContains(log, "Compiling app ")) << log;
  EXPECT_FALSE(absl::StrContains(log, "Compiling core")) << log;
  EXPECT_TRUE(absl::StrContains(farm_.Log("2", "rv32imac/release/test"), "[blink] tick 4\n"));
  EXPECT_TRUE(absl::StrContains(farm_.Log("2", "rv32imac/release/test"), "KARATOS OK: all tasks done"));
  EXPECT_EQ(Containers(), "");
}

// `network: true` gives a step the engine's default network. Here the engines run inside a network
// namespace the test made, where their bridge touches nothing of the host's; Podman runs there as a
// service, so the worker reaches it through --container-host, as it would a remote engine.
class ContainerNetworkTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    for (const char* tool : {"/usr/sbin/ip", "/usr/bin/nsenter", "/bin/busybox"}) {
      ASSERT_TRUE(fs::exists(tool)) << tool << " is missing (scripts/install-deps.sh installs it)";
    }
    ASSERT_EQ(::geteuid(), 0u) << "network namespaces need root";
    ns_ = absl::StrCat("assay", ::getpid(), "-", GetParam());
    ASSERT_EQ(RunCommand({"/usr/sbin/ip", "netns", "add", ns_}).exit_code, 0);
    ASSERT_EQ(RunCommand({"/usr/sbin/ip", "-n", ns_, "link", "set", "lo", "up"}).exit_code, 0);
    engine_ = std::make_unique<TestEngine>(GetParam(), dir_.path(), ns_);
    absl::Status started = engine_->Start();
    ASSERT_TRUE(started.ok()) << started;
    absl::Status made = engine_->MakeBusyboxImage("assay-test/busybox:1", "1");
    ASSERT_TRUE(made.ok()) << made;
    farm_.set_cli_env(engine_->Env());
    farm_.StartCoordinator();
    farm_.StartWorker("w1", {}, 2, engine_->WorkerArgs());
  }

  void TearDown() override {
    farm_.StopWorker("w1");
    engine_.reset();
    if (!ns_.empty()) RunCommand({"/usr/sbin/ip", "netns", "del", ns_});
  }

  ScopedTempDir dir_{"assay-container-network"};
  std::string ns_;
  std::unique_ptr<TestEngine> engine_;
  Farm farm_;
};

INSTANTIATE_TEST_SUITE_P(Engines, ContainerNetworkTest, ::testing::Values("docker", "podman"),
                         [](const ::testing::TestParamInfo<std::string>& engine) { return engine.param; });

TEST_P(ContainerNetworkTest, AStepThatAsksForTheNetworkGetsTheEnginesAndTheOthersStayOffline) {
  auto id = farm_.Submit(farm_.WriteTree("network", {{"assay.yaml", R"yaml(
image: assay-test/busybox:1
steps:
  - id: online
    network: true
    run: cat /proc/net/dev /proc/net/route
  - id: offline
    run: cat /proc/net/dev
)yaml"}}));
  ASSERT_TRUE(id.ok()) << id.status();
  auto job = farm_.WaitJob(*id, absl::Seconds(120));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), assay::v1::JOB_SUCCEEDED) << farm_.Log(*id, "online") << farm_.Log(*id, "offline");
  const std::string online = farm_.Log(*id, "online");
  EXPECT_TRUE(absl::StrContains(online, "eth0:")) << "no interface of the engine's network:\n" << online;
  EXPECT_TRUE(absl::StrContains(online, "eth0\t00000000")) << "no default route:\n" << online;
  const std::string offline = farm_.Log(*id, "offline");
  EXPECT_TRUE(absl::StrContains(offline, "lo:")) << offline;
  EXPECT_FALSE(absl::StrContains(offline, "eth")) << offline;
  EXPECT_EQ(engine_->Containers("w1"), "");
}

}  // namespace
}  // namespace assay::testing
