#include "worker/host_facts.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace assay {
namespace fs = std::filesystem;

std::string Hostname() {
  char name[256] = {0};
  ::gethostname(name, sizeof(name) - 1);
  return name;
}

std::vector<std::string> DetectEmulators() {
  std::set<std::string> names;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':', absl::SkipEmpty())) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(fs::path(std::string(dir)), ec)) {
      const std::string name = entry.path().filename().string();
      const bool plain = std::all_of(name.begin(), name.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
      });
      if (plain && absl::StartsWith(name, "qemu-system-") && ::access(entry.path().c_str(), X_OK) == 0) {
        names.insert(name);
      }
    }
  }
  // Every `--version` runs at once (a host with qemu-system-misc has about 20 emulators).
  std::vector<std::pair<std::string, FILE*>> queries;
  for (const std::string& name : names) {
    queries.emplace_back(name, ::popen(absl::StrCat(name, " --version 2>/dev/null").c_str(), "r"));
  }
  std::vector<std::string> labels;
  for (auto& [name, p] : queries) {
    // "QEMU emulator version 7.2.11 (Debian 1:7.2+dfsg-7+deb12u7)" -> "qemu-system-arm=7.2.11"
    std::string version = "unknown";
    if (p != nullptr) {
      char line[256] = {0};
      if (std::fgets(line, sizeof(line), p) != nullptr) {
        std::vector<std::string> words = absl::StrSplit(absl::StripAsciiWhitespace(line), ' ');
        for (size_t i = 0; i + 1 < words.size(); ++i) {
          if (words[i] == "version") version = words[i + 1];
        }
      }
      ::pclose(p);
    }
    labels.push_back(absl::StrCat(name, "=", version));
  }
  return labels;
}

std::vector<std::string> DetectLabels(const std::string& executor) {
  struct utsname u{};
  ::uname(&u);
  std::vector<std::string> labels = {"os=linux", absl::StrCat("arch=", u.machine), absl::StrCat("executor=", executor),
                                     absl::StrCat("host=", Hostname())};
  // The REAPI platform lexicon's names, which Bazel's exec properties use (docs/bazel.md).
  const std::string machine = u.machine;
  const std::string isa = machine == "x86_64" ? "x86-64" : machine == "aarch64" ? "arm-a64" : machine;
  labels.push_back("OSFamily=Linux");
  labels.push_back(absl::StrCat("ISA=", isa));
  for (std::string& emulator : DetectEmulators()) labels.push_back(std::move(emulator));
  return labels;
}

}  // namespace assay
