#include "tests/integration/engines.h"

#include <stdlib.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/file_util.h"

namespace assay::testing {
namespace fs = std::filesystem;

TestEngine::TestEngine(std::string kind, fs::path dir, std::string netns)
    : kind_(std::move(kind)), dir_(std::move(dir)), netns_(std::move(netns)) {}

std::string TestEngine::Socket() const {
  if (kind_ == "docker") return "unix://" + (dir_ / "docker.sock").string();
  return netns_.empty() ? "" : "unix://" + (dir_ / "podman.sock").string();
}

std::vector<std::string> TestEngine::Env() const {
  if (kind_ == "docker") return {"DOCKER_HOST=" + Socket()};
  return {"CONTAINERS_CONF=" + (dir_ / "containers.conf").string(),
          "CONTAINERS_STORAGE_CONF=" + (dir_ / "storage.conf").string(), "ASSAY_CONTAINER_ENGINE=podman"};
}

std::vector<std::string> TestEngine::WorkerArgs() const {
  std::vector<std::string> args = {"--container-engine", kind_};
  if (!Socket().empty()) args.insert(args.end(), {"--container-host", Socket()});
  return args;
}

RunResult TestEngine::Run(std::vector<std::string> args) {
  if (kind_ == "docker") {
    args.insert(args.begin(), {"/usr/bin/docker", "--host", Socket()});
  } else {
    args.insert(args.begin(), "/usr/bin/podman");  // local, on the same storage as the service
  }
  return RunCommand(args, absl::Seconds(60), kind_ == "podman" ? Env() : std::vector<std::string>{});
}

absl::Status TestEngine::Start() {
  fs::create_directories(dir_);
  std::vector<std::string> argv;
  if (!netns_.empty()) argv = {"/usr/bin/nsenter", "--net=/run/netns/" + netns_};
  if (kind_ == "docker") {
    argv.insert(argv.end(), {"/usr/sbin/dockerd", "--data-root", (dir_ / "data").string(), "--exec-root",
                             (dir_ / "exec").string(), "--pidfile", (dir_ / "dockerd.pid").string(), "-H", Socket(),
                             "--iptables=false"});
    if (netns_.empty()) argv.push_back("--bridge=none");  // never a bridge in the host's namespace
  } else {
    // Rootful Podman on this kind of host: runc (crun refuses hybrid cgroups), the cgroupfs manager
    // (no systemd), events in a file (no journald), ulimits within root's hard limits, its networks'
    // settings and one storage driver in the test's folder. Its tmp_dir too (default /run/libpod,
    // shared by every Podman on the host): `system reset` below removes it, and a test running beside
    // this one then failed "creating runtime status file: open /run/libpod/alive".
    const std::string conf = absl::StrCat(
        "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n"
        "[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"
        "tmp_dir = \"", (dir_ / "libpod-tmp").string(), "\"\nevents_logfile_path = \"",
        (dir_ / "events.log").string(), "\"\n[network]\nnetwork_config_dir = \"", (dir_ / "networks").string(), "\"\n");
    const std::string storage = absl::StrCat("[storage]\ndriver = \"overlay\"\ngraphroot = \"", (dir_ / "storage").string(),
                                             "\"\nrunroot = \"", (dir_ / "run").string(), "\"\n");
    if (absl::Status s = WriteFile(dir_ / "containers.conf", conf); !s.ok()) return s;
    if (absl::Status s = WriteFile(dir_ / "storage.conf", storage); !s.ok()) return s;
    if (netns_.empty()) {
      for (const std::string& kv : Env()) {
        const size_t eq = kv.find('=');
        if (kv.substr(0, eq) == "ASSAY_CONTAINER_ENGINE") continue;
        ::setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
        exported_.push_back(kv.substr(0, eq));
      }
      return Run({"info"}).exit_code == 0 ? absl::OkStatus() : absl::InternalError("podman info failed");
    }
    std::vector<std::string> env = {"/usr/bin/env"};
    for (const std::string& kv : Env()) env.push_back(kv);
    argv.insert(argv.begin(), env.begin(), env.end());
    argv.insert(argv.end(), {"/usr/bin/podman", "system", "service", "--time", "0", Socket()});
  }
  daemon_ = std::make_unique<Process>(argv, dir_ / (kind_ + "-daemon.log"));
  const std::vector<std::string> version = kind_ == "docker"
                                               ? std::vector<std::string>{"/usr/bin/docker", "--host", Socket(), "version"}
                                               : std::vector<std::string>{"/usr/bin/podman", "--url", Socket(), "version"};
  if (!WaitFor([&]() { return RunCommand(version, absl::Seconds(10)).exit_code == 0; }, absl::Seconds(30))) {
    return absl::DeadlineExceededError(
        absl::StrCat(kind_, " did not answer: ", ReadFile(dir_ / (kind_ + "-daemon.log")).value_or("")));
  }
  return absl::OkStatus();
}

TestEngine::~TestEngine() {
  RunResult left = Run({"ps", "--all", "--quiet"});
  for (absl::string_view id : absl::StrSplit(left.out, '\n', absl::SkipWhitespace())) {
    if (kind_ == "podman") {
      Run({"rm", "--force", "--time", "0", std::string(id)});
    } else {
      Run({"rm", "--force", std::string(id)});
    }
  }
  daemon_.reset();  // SIGTERM by pid: a daemon stops its containers and its containerd
  if (kind_ == "podman") Run({"system", "reset", "--force"});  // unmounts and removes its storage
  for (const std::string& name : exported_) ::unsetenv(name.c_str());
  RemoveEmptyEngineCgroups();
}

absl::Status TestEngine::MakeBusyboxImage(const std::string& tag, const std::string& version) {
  const fs::path root = dir_ / ("rootfs-" + version);
  std::error_code ec;
  for (const char* sub : {"bin", "etc", "tmp"}) fs::create_directories(root / sub, ec);
  fs::copy_file("/bin/busybox", root / "bin/busybox", fs::copy_options::overwrite_existing, ec);
  if (ec) return absl::InternalError(absl::StrCat("copying busybox: ", ec.message()));
  // Every applet as a relative link to busybox (what `busybox --install` would do in the image).
  RunResult applets = RunCommand({"/bin/busybox", "--list"});
  if (applets.exit_code != 0) return absl::InternalError("busybox --list failed");
  for (absl::string_view applet : absl::StrSplit(applets.out, '\n', absl::SkipWhitespace())) {
    if (applet != "busybox") fs::create_symlink("busybox", root / "bin" / std::string(applet), ec);
  }
  if (absl::Status s = WriteFile(root / "etc/version", version + "\n"); !s.ok()) return s;
  const fs::path tar = dir_ / ("rootfs-" + version + ".tar");
  if (RunCommand({"/bin/tar", "-C", root.string(), "-cf", tar.string(), "."}).exit_code != 0) {
    return absl::InternalError("tar failed");
  }
  RunResult imported = Run({"import", "--change", "ENV PATH=/bin", tar.string(), tag});
  if (imported.exit_code != 0) return absl::InternalError(absl::StrCat(kind_, " import: ", imported.err));
  return absl::OkStatus();
}

std::string TestEngine::Containers(const std::string& worker) {
  return std::string(
      absl::StripAsciiWhitespace(Run({"ps", "--all", "--quiet", "--filter", "label=assay.worker=" + worker}).out));
}

void RemoveEmptyEngineCgroups() {
  std::error_code ec;
  // Container steps with limits had parent groups beneath the worker's memory group in every
  // hierarchy: the folders above them, made where this process's group in a hierarchy is elsewhere.
  std::string memory_group;
  for (absl::string_view line : absl::StrSplit(ReadFile("/proc/self/cgroup").value_or(""), '\n')) {
    if (absl::StrContains(line, ":memory:")) memory_group = std::string(line.substr(line.rfind(':') + 1));
  }
  for (const auto& hierarchy : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    for (fs::path up = memory_group; up.has_relative_path(); up = up.parent_path()) {
      ::rmdir((hierarchy.path().string() + up.string()).c_str());  // deepest first
    }
    // The engines' default parent groups (and Podman's group for its conmons).
    for (const char* group : {"docker", "libpod_parent/conmon", "libpod_parent"}) {
      ::rmdir((hierarchy.path() / group).c_str());
    }
  }
}

}  // namespace assay::testing
