#include <spdlog/spdlog.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "worker/executor.h"
#include "worker/namespace_sandbox.h"
#include "worker/sandbox_view.h"

namespace assay {

std::vector<std::string> SandboxExecutor::Wrap(const std::vector<std::string>& argv, const std::filesystem::path& workdir,
                                               const std::string& cwd) {
  const std::string start = cwd.empty() ? workdir.string() : (workdir / cwd).string();
  std::vector<std::string> out = {
      kBwrap, "--die-with-parent", "--unshare-all",
      // No capabilities, not even in the sandbox's own namespaces. A worker run as root would
      // otherwise give its steps every capability there, enough to remount the read-only /usr
      // writable (bubblewrap keeps a privileged caller's capabilities unless told).
      "--cap-drop", "ALL"};
  auto bind = [&out](const sandbox_view::HostPath& host) {
    out.insert(out.end(), {host.optional ? "--ro-bind-try" : "--ro-bind", host.path, host.path});
  };
  for (const auto& host : sandbox_view::kTools) bind(host);
  out.insert(out.end(), {"--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin",
                         "/bin", "--symlink", "usr/sbin", "/sbin"});
  for (const auto& host : sandbox_view::kEtcFiles) bind(host);
  out.insert(out.end(), {"--proc", "/proc"});
  for (const auto& host : sandbox_view::kKernelSettings) bind(host);  // over the new /proc
  // The step's own directory, writable, at the same path as on the host (after /tmp, which it may be under).
  out.insert(out.end(), {"--dev", "/dev", "--tmpfs", "/tmp", "--bind", workdir.string(), workdir.string(), "--chdir",
                         start, "--"});
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

absl::StatusOr<std::unique_ptr<SandboxExecutor>> SandboxExecutor::Create(const std::string& which) {
  if (which != "auto" && which != "namespaces" && which != "bubblewrap") {
    return absl::InvalidArgumentError(absl::StrCat("unknown sandbox \"", which, "\": auto, namespaces or bubblewrap"));
  }
  std::string why_not;
  if (which != "bubblewrap") {
    std::unique_ptr<SandboxExecutor> executor(new SandboxExecutor(Kind::kNamespaces));
    absl::Status works = executor->Probe();
    if (works.ok()) return executor;
    if (which == "namespaces") return works;
    why_not = absl::StrCat(works.message(), "; ");
  }
  if (::access(kBwrap, X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(why_not, kBwrap, " not found (Debian package bubblewrap)"));
  }
  std::unique_ptr<SandboxExecutor> executor(new SandboxExecutor(Kind::kBubblewrap));
  absl::Status works = executor->Probe();
  if (!works.ok()) return absl::FailedPreconditionError(absl::StrCat(why_not, works.message()));
  if (!why_not.empty()) spdlog::warn("sandboxes are made by bubblewrap: {}", why_not.substr(0, why_not.size() - 2));
  return executor;
}

// A real command in the sandbox, so a host that forbids namespaces is found now, not per step.
absl::Status SandboxExecutor::Probe() {
  ExecRequest probe;
  probe.argv = {"/bin/sh", "-c", "test -d /proc/self && test -r /usr"};
  probe.workdir = std::filesystem::temp_directory_path();
  probe.timeout = absl::Seconds(20);
  std::string said;
  CancelToken never;
  auto result = Run(probe, [&](OutputStream, absl::string_view text) { said.append(text.data(), text.size()); }, never);
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::FailedPreconditionError(absl::StrCat(kind_ == Kind::kNamespaces ? "the kernel's namespaces" : "bubblewrap",
                                                      " cannot make a sandbox here (exit ", result->exit_code, "): ", said));
  }
  return absl::OkStatus();
}

absl::StatusOr<ExecResult> SandboxExecutor::Run(const ExecRequest& request, const OutputFn& output,
                                                const CancelToken& cancel) {
  if (request.argv.empty()) return absl::InvalidArgumentError("empty command");
  if (kind_ == Kind::kNamespaces) {
    // A network namespace of the pool's, lent until the sandbox's pid 1 is reaped (RunIn returns);
    // should none be made, the sandbox makes its own.
    auto network = networks_.Acquire();
    if (!network.ok()) spdlog::debug("a sandbox makes its own network namespace: {}", network.status().ToString());
    NamespaceSandbox sandbox(request.workdir, network.ok() ? &*network : nullptr);  // read by its first process
    return process_.RunIn(&sandbox, request, output, cancel);
  }
  ExecRequest wrapped = request;
  wrapped.argv = Wrap(request.argv, request.workdir, request.cwd);
  return process_.Run(wrapped, output, cancel);
}

}  // namespace assay
