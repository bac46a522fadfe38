// What the tests running a real Bazel 4.2.3 offline share: the local repositories it needs in place
// of downloads (../shared/FACTS.md) and the summary line it prints.
#pragma once

#include <map>
#include <regex>
#include <string>

namespace assay::testing {

struct BuildStats {
  int processes = 0;
  int remote_hits = 0;
  int local = 0;
  int remote = 0;  // executed on the farm (--remote_executor)
};

// "INFO: 7 processes: 3 remote cache hit, 4 internal." (and "3 linux-sandbox", "3 local", "4 remote")
inline BuildStats ParseStats(const std::string& output) {
  BuildStats stats;
  std::smatch m;
  std::regex line(R"(INFO: (\d+) processes?: ([^\n]*)\.)");
  if (!std::regex_search(output, m, line)) return stats;
  stats.processes = std::stoi(m[1]);
  std::string parts = m[2];
  std::regex part(R"((\d+) ([a-z -]+))");
  for (auto it = std::sregex_iterator(parts.begin(), parts.end(), part); it != std::sregex_iterator(); ++it) {
    int n = std::stoi((*it)[1]);
    std::string kind = (*it)[2];
    if (kind == "remote cache hit") stats.remote_hits = n;
    if (kind == "remote") stats.remote = n;
    if (kind == "linux-sandbox" || kind == "local" || kind == "processwrapper-sandbox") stats.local += n;
  }
  return stats;
}

// Files (path -> content) of the local repositories Bazel needs offline: @rules_cc re-exporting the
// native rules, and an empty @remote_coverage_tools (cc_test depends on it). Pass them with
// OfflineFlags.
inline std::map<std::string, std::string> OfflineRepositories() {
  return {
      {"rules_cc/WORKSPACE", "workspace(name = \"rules_cc\")\n"},
      {"rules_cc/BUILD", ""},
      {"rules_cc/cc/BUILD", "exports_files([\"defs.bzl\"])\n"},
      {"rules_cc/cc/defs.bzl",
       "cc_binary = native.cc_binary\ncc_library = native.cc_library\ncc_test = native.cc_test\n"
       "cc_import = native.cc_import\ncc_proto_library = native.cc_proto_library\n"
       "cc_toolchain = native.cc_toolchain\ncc_toolchain_suite = native.cc_toolchain_suite\n"
       "fdo_profile = native.fdo_profile\nfdo_prefetch_hints = native.fdo_prefetch_hints\n"
       "objc_library = native.objc_library\nobjc_import = native.objc_import\n"},
      {"coverage/WORKSPACE", "workspace(name = \"remote_coverage_tools\")\n"},
      {"coverage/BUILD",
       "package(default_visibility = [\"//visibility:public\"])\n"
       "filegroup(name = \"coverage_report_generator\")\nfilegroup(name = \"lcov_merger\")\n"},
  };
}

// The flags that point Bazel at those repositories, under `root`.
inline std::vector<std::string> OfflineFlags(const std::string& root) {
  return {"--override_repository=rules_java=/usr/share/bazel/rules/java",
          "--override_repository=rules_cc=" + root + "/rules_cc",
          "--override_repository=remote_coverage_tools=" + root + "/coverage", "--nosandbox_debug"};
}

}  // namespace assay::testing
