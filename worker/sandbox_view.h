// What a step sees of the host in the sandbox, whichever maker makes it (the worker itself:
// namespace_sandbox.cc; bubblewrap: SandboxExecutor::Wrap). One list, so the two cannot drift apart;
// the sandbox tests run every check against both.
#pragma once

namespace assay::sandbox_view {

// A path bound from the host into the sandbox at the same path, read-only.
struct HostPath {
  const char* path;
  bool optional;  // absent on the host: left out
};

// The host's programs and libraries (merged-/usr symlinks give /bin, /lib, ... ).
inline constexpr HostPath kTools[] = {{"/usr", false}};

// What tools read from /etc: Debian's alternatives (awk, cc, ...), the loader cache, users, the time zone.
inline constexpr HostPath kEtcFiles[] = {{"/etc/alternatives", true},
                                         {"/etc/ld.so.cache", true},
                                         {"/etc/passwd", true},
                                         {"/etc/group", true},
                                         {"/etc/localtime", true}};

// The kernel's settings, over the sandbox's own /proc: a root worker's step is the host's root user
// (without capabilities), whom the kernel lets write any sysctl (core_pattern: a program the host
// runs as root).
inline constexpr HostPath kKernelSettings[] = {{"/proc/sys", false}, {"/proc/sysrq-trigger", true}};

}  // namespace assay::sandbox_view
