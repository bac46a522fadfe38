#include "coordinator/cache_keys.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/tree/merkle.h"

namespace assay {

absl::Status TreeFiles::Load() {
  std::vector<std::pair<std::string, Digest>> pending = {{"", root_}};
  while (!pending.empty()) {
    auto [prefix, digest] = std::move(pending.back());
    pending.pop_back();
    auto dir = load_(digest);
    if (!dir.ok()) return dir.status();
    for (const auto& file : dir->files()) {
      files_.emplace_back(absl::StrCat(prefix, file.name()), file.digest().hash());
    }
    for (const auto& sub : dir->directories()) {
      auto sub_digest = Digest::FromProto(sub.digest());
      if (!sub_digest.ok()) return sub_digest.status();
      pending.emplace_back(absl::StrCat(prefix, sub.name(), "/"), *sub_digest);
    }
  }
  std::sort(files_.begin(), files_.end());
  loaded_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::string> TreeFiles::Hash(const std::vector<std::string>& patterns) {
  if (!loaded_) {
    if (absl::Status s = Load(); !s.ok()) return s;
  }
  Sha256 hash;
  bool any = false;
  for (const auto& file : files_) {  // (path, hash)
    const bool matches = std::any_of(patterns.begin(), patterns.end(),
                                     [&file](const std::string& p) { return PathMatches(p, file.first); });
    if (!matches) continue;
    hash.Update(file.second);
    any = true;
  }
  if (!any) return std::string();
  return hash.FinishHex();
}

absl::Status CheckCachePaths(const assay::v1::Job& job, const Digest& root, const DirectoryLoader& load,
                             const std::string& pipeline_path) {
  std::set<std::string> checked;  // every cell of a step has the same paths, mostly: each is walked once
  for (const assay::v1::Task& task : job.tasks()) {
    for (int c = 0; c < task.spec().caches_size(); ++c) {
      const assay::v1::StepCacheSpec& cache = task.spec().caches(c);
      for (const std::string& path : cache.paths()) {
        if (!checked.insert(path).second) continue;
        auto dir = load(root);
        std::string walked;
        for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
          if (!dir.ok() || part == ".") break;
          absl::StrAppend(&walked, walked.empty() ? "" : "/", part);
          const auto& links = dir->symlinks();
          if (std::any_of(links.begin(), links.end(), [&](const auto& l) { return l.name() == part; })) {
            return absl::InvalidArgumentError(absl::StrCat(
                pipeline_path, ":", cache.line(), ": step '", task.step(), "' caches[", c, "].paths: '", path,
                "' goes through '", walked, "', a symlink in the submitted tree; a cache path must be a folder or "
                "file inside the work directory"));
          }
          const auto& subs = dir->directories();
          auto sub = std::find_if(subs.begin(), subs.end(), [&](const auto& d) { return d.name() == part; });
          if (sub == subs.end()) break;  // not in the tree (made by the step), or a file: nothing to follow
          auto digest = Digest::FromProto(sub->digest());
          if (!digest.ok()) break;
          dir = load(*digest);
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace assay
