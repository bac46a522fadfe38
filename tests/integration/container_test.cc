// Steps in container images with real engines, each test once with Docker and once with Podman:
// - Docker: a private dockerd the test starts (its own data-root, exec-root and socket; no bridge, no
//   iptables: container steps have no network unless they ask), stopped by pid;
// - Podman (daemonless): its own containers.conf and storage.conf in the test's folder (runc, the
//   cgroupfs manager, a file for events; ../shared/FACTS.md), handed to the worker and the CLI
//   through CONTAINERS_CONF and CONTAINERS_STORAGE_CONF.
// Fixture images are made offline from busybox-static. The worker runs with --container-engine
// docker|podman; the CLI resolves images with the same engine.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <memory>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {

namespace fs = std::filesystem;
using assay::v1::Task;

class ContainerTest : public ::testing::TestWithParam<std::string> {
 protected:
  bool podman() const { return GetParam() == "podman"; }

  void SetUp() override {
    std::vector<const char*> tools = {"/bin/busybox"};
    if (podman()) {
      tools.insert(tools.end(), {"/usr/bin/podman", "/usr/sbin/runc", "/usr/bin/conmon"});
    } else {
      tools.insert(tools.end(), {"/usr/sbin/dockerd", "/usr/bin/docker"});
    }
    for (const char* tool : tools) {
      ASSERT_TRUE(fs::exists(tool)) << tool << " is missing (scripts/install-deps.sh installs it)";
    }
    ASSERT_EQ(::geteuid(), 0u) << "a private " << GetParam() << " engine needs root";
    const fs::path d = dir_.path();
    if (podman()) {
      // Rootful Podman on this kind of host: runc (crun refuses hybrid cgroups), the cgroupfs manager
      // (no systemd), events in a file (no journald), ulimits within root's hard limits, one storage driver.
      ASSERT_TRUE(WriteFile(d / "containers.conf",
                            absl::StrCat("[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n"
                                         "[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n"
                                         "events_logger = \"file\"\nevents_logfile_path = \"",
                                         (d / "events.log").string(), "\"\n"))
                      .ok());
      ASSERT_TRUE(WriteFile(d / "storage.conf", absl::StrCat("[storage]\ndriver = \"overlay\"\ngraphroot = \"",
                                                             (d / "storage").string(), "\"\nrunroot = \"",
                                                             (d / "run").string(), "\"\n"))
                      .ok());
      // The worker and the CLI inherit them, as they would from an admin's environment.
      env_ = {"CONTAINERS_CONF=" + (d / "containers.conf").string(),
              "CONTAINERS_STORAGE_CONF=" + (d / "storage.conf").string()};
      for (const std::string& kv : env_) {
        const size_t eq = kv.find('=');
        ::setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
      }
      farm_.set_cli_env({env_[0], env_[1], "ASSAY_CONTAINER_ENGINE=podman"});
    } else {
      dockerd_ = std::make_unique<Process>(
          std::vector<std::string>{"/usr/sbin/dockerd", "--data-root", (d / "data").string(), "--exec-root",
                                   (d / "exec").string(), "--pidfile", (d / "dockerd.pid").string(), "-H", Host(),
                                   "--bridge=none", "--iptables=false"},
          d / "dockerd.log");
      ASSERT_TRUE(WaitFor([&]() { return Engine({"version"}).exit_code == 0; }, absl::Seconds(30)))
          << ReadFile(d / "dockerd.log").value_or("");
      env_ = {"DOCKER_HOST=" + Host()};
      farm_.set_cli_env(env_);
    }
    MakeImage("assay-test/busybox:1", "1");
    farm_.StartCoordinator();
    StartWorker();
  }

  void TearDown() override {
    farm_.StopWorker("w1");
    RunResult left = Engine({"ps", "--all", "--quiet"});
    for (absl::string_view id : absl::StrSplit(left.out, '\n', absl::SkipWhitespace())) {
      Engine({"rm", "--force", std::string(id)});
    }
    if (podman()) {
      Engine({"system", "reset", "--force"});  // unmounts and removes its storage in the test's folder
      for (const std::string& kv : env_) ::unsetenv(kv.substr(0, kv.find('=')).c_str());
    }
    dockerd_.reset();  // SIGTERM by pid
    std::error_code ec;
    // The worker's steps with limits had parent groups beneath its memory group, in every hierarchy:
    // the folders above them, made where the test's group in a hierarchy is elsewhere, left empty.
    std::string memory_group;
    for (absl::string_view line : absl::StrSplit(ReadFile("/proc/self/cgroup").value_or(""), '\n')) {
      if (absl::StrContains(line, ":memory:")) {
        memory_group = std::string(line.substr(line.rfind(':') + 1));
      }
    }
    for (const auto& controller : fs::directory_iterator("/sys/fs/cgroup", ec)) {
      for (fs::path up = memory_group; up.has_relative_path(); up = up.parent_path()) {
        ::rmdir((controller.path().string() + up.string()).c_str());  // only empty ones, deepest first
      }
      // The engines' default parent groups (and Podman's group for its conmons), left empty.
      for (const char* group : {"docker", "libpod_parent/conmon", "libpod_parent"}) {
        ::rmdir((controller.path() / group).c_str());
      }
    }
  }

  std::string Host() const { return "unix://" + (dir_.path() / "docker.sock").string(); }
  RunResult Engine(std::vector<std::string> args) {
    if (podman()) {
      args.insert(args.begin(), "/usr/bin/podman");
    } else {
      args.insert(args.begin(), {"/usr/bin/docker", "--host", Host()});
    }
    return RunCommand(args, absl::Seconds(60));
  }
  void StartWorker() {
    std::vector<std::string> args = {"--container-engine", GetParam()};
    if (!podman()) args.insert(args.end(), {"--container-host", Host()});
    farm_.StartWorker("w1", {}, 4, args);
  }

  // An image with busybox and /etc/version holding `version`, imported under `tag`.
  void MakeImage(const std::string& tag, const std::string& version) {
    const fs::path root = dir_.path() / ("rootfs-" + version);
    fs::create_directories(root / "bin");
    fs::create_directories(root / "etc");
    fs::create_directories(root / "tmp");
    fs::copy_file("/bin/busybox", root / "bin/busybox", fs::copy_options::overwrite_existing);
    // Every applet as a relative link to busybox (what `busybox --install` would do in the image).
    RunResult applets = RunCommand({"/bin/busybox", "--list"});
    ASSERT_EQ(applets.exit_code, 0);
    for (absl::string_view applet : absl::StrSplit(applets.out, '\n', absl::SkipWhitespace())) {
      std::error_code ec;
      if (applet != "busybox") fs::create_symlink("busybox", root / "bin" / std::string(applet), ec);
    }
    ASSERT_TRUE(WriteFile(root / "etc/version", version + "\n").ok());
    const fs::path tar = dir_.path() / ("rootfs-" + version + ".tar");
    ASSERT_EQ(RunCommand({"/bin/tar", "-C", root.string(), "-cf", tar.string(), "."}).exit_code, 0);
    RunResult imported = Engine({"import", "--change", "ENV PATH=/bin", tar.string(), tag});
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
  }

  // The containers of worker w1 on the engine.
  std::string Containers() {
    return std::string(absl::StripAsciiWhitespace(Engine({"ps", "--all", "--quiet", "--filter", "label=assay.worker=w1"}).out));
  }

  ScopedTempDir dir_{"assay-containers"};
  std::vector<std::string> env_;  // the engine's variables, for the worker, the CLI and scripts
  std::unique_ptr<Process> dockerd_;
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
  ASSERT_TRUE(job.ok());
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
                                absl::Minutes(15), env_);
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

}  // namespace
}  // namespace assay::testing
