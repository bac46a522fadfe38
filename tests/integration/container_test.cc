// Steps in container images with a real Docker Engine: a private dockerd the test starts (its own
// data-root, exec-root and socket; no bridge, no iptables: container steps have no network unless
// they ask) and fixture images made offline from busybox-static. The worker runs with
// --container-engine docker; the CLI resolves images with the same daemon.
#include <signal.h>
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

class ContainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"/usr/sbin/dockerd", "/usr/bin/docker", "/bin/busybox"}) {
      ASSERT_TRUE(fs::exists(tool)) << tool << " is missing (scripts/install-deps.sh installs it)";
    }
    ASSERT_EQ(::geteuid(), 0u) << "a private Docker daemon needs root";
    const fs::path d = dir_.path();
    dockerd_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/sbin/dockerd", "--data-root", (d / "data").string(), "--exec-root",
                                 (d / "exec").string(), "--pidfile", (d / "dockerd.pid").string(), "-H", Host(),
                                 "--bridge=none", "--iptables=false"},
        d / "dockerd.log");
    ASSERT_TRUE(WaitFor([&]() { return Docker({"version"}).exit_code == 0; }, absl::Seconds(30)))
        << ReadFile(d / "dockerd.log").value_or("");
    MakeImage("assay-test/busybox:1", "1");
    farm_.set_cli_env({"DOCKER_HOST=" + Host()});
    farm_.StartCoordinator();
    StartWorker();
  }

  void TearDown() override {
    farm_.StopWorker("w1");
    if (dockerd_) {
      RunResult left = Docker({"ps", "--all", "--quiet"});
      if (!left.out.empty()) Docker({"rm", "--force", std::string(absl::StripAsciiWhitespace(left.out))});
      dockerd_.reset();  // SIGTERM by pid
    }
    std::error_code ec;
    for (const auto& controller : fs::directory_iterator("/sys/fs/cgroup", ec)) {
      ::rmdir((controller.path() / "docker").c_str());  // left empty by dockerd
    }
  }

  std::string Host() const { return "unix://" + (dir_.path() / "docker.sock").string(); }
  RunResult Docker(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/docker", "--host", Host()});
    return RunCommand(args, absl::Seconds(60));
  }
  void StartWorker() {
    farm_.StartWorker("w1", {}, 4, {"--container-engine", "docker", "--container-host", Host()});
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
    RunResult imported = Docker({"import", "--change", "ENV PATH=/bin", tar.string(), tag});
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
  }

  // The containers of worker w1 on the daemon.
  std::string Containers() {
    return std::string(absl::StripAsciiWhitespace(Docker({"ps", "--all", "--quiet", "--filter", "label=assay.worker=w1"}).out));
  }

  ScopedTempDir dir_{"assay-containers"};
  std::unique_ptr<Process> dockerd_;
  Farm farm_;
};

TEST_F(ContainerTest, StepsRunInTheirImageWithTheirEnvUserLimitsAndNoNetwork) {
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
  const std::string net = farm_.Log(*id, "offline");
  EXPECT_TRUE(absl::StrContains(net, "lo:")) << net;
  EXPECT_FALSE(absl::StrContains(net, "eth")) << "a container step has no network unless it asks:\n" << net;
  EXPECT_TRUE(absl::StrContains(farm_.Log(*id, "user"), "1234")) << farm_.Log(*id, "user");
  EXPECT_EQ(task("hog")->state(), assay::v1::TASK_FAILED);
  EXPECT_TRUE(absl::StrContains(task("hog")->message(), "killed for exceeding its memory limit of 32 MiB"))
      << task("hog")->message();
  EXPECT_EQ(Containers(), "") << "every container is removed after its step";
}

TEST_F(ContainerTest, TimeoutAndCancelLeaveNoContainerBehind) {
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

TEST_F(ContainerTest, AWorkerRestartedAfterKillDashNineRemovesItsStaleContainers) {
  auto id = farm_.Submit(farm_.WriteTree("stale", {{"assay.yaml", "image: assay-test/busybox:1\nsteps:\n"
                                                                   "  - id: slow\n    run: sleep 60\n    cache: false\n"}}));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(WaitFor([&]() { return !Containers().empty(); }, absl::Seconds(30)));
  const std::string stale = Containers();
  farm_.StopWorker("w1", SIGKILL);
  EXPECT_EQ(Containers(), stale) << "the engine keeps a container whose worker died";
  StartWorker();
  // At start the worker removed it (the task, queued again, may since have started a new one).
  EXPECT_NE(Docker({"inspect", stale}).exit_code, 0) << "the stale container " << stale << " is still there";
  ASSERT_EQ(farm_.Cli({"cancel", *id}).exit_code, 0);
}

TEST_F(ContainerTest, AChangedImageRerunsTheStepAndAnUnchangedOneIsACacheHit) {
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
TEST_F(ContainerTest, TheExampleBuildsAndBootsInTheToolchainImageThenIsAllCacheHits) {
  ASSERT_TRUE(fs::exists("/usr/sbin/debootstrap")) << "debootstrap is missing (scripts/install-deps.sh installs it)";
  const fs::path bin = fs::path(BinaryPath("assay-coordinator")).parent_path().parent_path();
  RunResult images = RunCommand({SourceDir() + "/deploy/images/build-images.sh", "--bin", bin.string()},
                                absl::Minutes(15), {"DOCKER_HOST=" + Host()});
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
