// Container engines of a test's own, for the container suites: Docker (a private dockerd with its own
// data-root, exec-root and socket, stopped by pid) or Podman (its own containers.conf and storage in
// the test's folder: runc, the cgroupfs manager, events in a file; ../shared/FACTS.md). Either can
// run inside a network namespace the test made, where its default network (a bridge) works without
// touching the host's; outside one, Docker has no bridge and Podman runs without a service.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tests/integration/process.h"

namespace assay::testing {

class TestEngine {
 public:
  // `kind`: "docker" or "podman"; `dir`: the test's folder for it; `netns`: a namespace (made by the
  // caller, with its loopback up) for the daemon or, for Podman, a `podman system service`.
  TestEngine(std::string kind, std::filesystem::path dir, std::string netns = "");
  // Removes every container, stops the daemon or service by pid, clears Podman's storage and the
  // empty cgroups the engines leave.
  ~TestEngine();
  TestEngine(const TestEngine&) = delete;
  TestEngine& operator=(const TestEngine&) = delete;

  // Starts it and waits until it answers. Podman without a namespace exports CONTAINERS_CONF and
  // CONTAINERS_STORAGE_CONF into this process (the worker inherits them, as from an admin's shell).
  absl::Status Start();
  const std::string& kind() const { return kind_; }
  // Runs the engine's CLI (against the daemon or service, if any).
  RunResult Run(std::vector<std::string> args);
  // The worker's flags for it.
  std::vector<std::string> WorkerArgs() const;
  // The variables the CLI (`assay submit` resolves images) and scripts need to reach it.
  std::vector<std::string> Env() const;
  // An image with busybox-static, every applet linked, and /etc/version holding `version`.
  absl::Status MakeBusyboxImage(const std::string& tag, const std::string& version);
  // The ids of the containers labelled assay.worker=`worker`, one per line.
  std::string Containers(const std::string& worker);

 private:
  std::string Socket() const;  // unix://... of the daemon or service ("" for daemonless Podman)

  std::string kind_;
  std::filesystem::path dir_;
  std::string netns_;
  std::unique_ptr<Process> daemon_;  // dockerd, or podman system service
  std::vector<std::string> exported_;  // names this process set for daemonless Podman
};

// Empty cgroups the engines and the worker's container steps leave behind (Docker's /docker,
// Podman's /libpod_parent, and the folders above the worker's parent groups): rmdir, so only empty
// ones go.
void RemoveEmptyEngineCgroups();

}  // namespace assay::testing
