// `assay report` and `assay release`, and the listing of a task's output files they share with
// `assay artifacts`.
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "cli/commands.h"
#include "cli/render.h"
#include "cli/report.h"
#include "common/base/file_util.h"
#include "common/task/task_states.h"

namespace assay::cli {
namespace fs = std::filesystem;
using assay::v1::Job;
using assay::v1::Task;

namespace {

// Walks a Tree's directories from its root; every name is checked before it becomes a path.
absl::Status WalkTree(const reapi::Directory& dir, const std::string& prefix,
                      const std::map<std::string, const reapi::Directory*>& children, int depth,
                      std::vector<OutputEntry>* out) {
  if (depth > 64) return absl::InvalidArgumentError(absl::StrCat(prefix, ": output directories nest too deep"));
  for (const auto& f : dir.files()) {
    const std::string path = absl::StrCat(prefix, "/", f.name());
    if (absl::Status s = CheckRelativePath(path, "output path"); !s.ok()) return s;
    auto digest = Digest::FromProto(f.digest());
    if (!digest.ok()) return digest.status();
    out->push_back(OutputEntry{path, *digest, f.is_executable()});
  }
  for (const auto& d : dir.directories()) {
    auto it = children.find(d.digest().hash());
    if (it == children.end()) {
      return absl::DataLossError(absl::StrCat(prefix, "/", d.name(), ": a directory missing from its output tree"));
    }
    if (absl::Status s = WalkTree(*it->second, absl::StrCat(prefix, "/", d.name()), children, depth + 1, out); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<OutputEntry>> ListOutputs(Client& client, const Task& task) {
  std::vector<OutputEntry> out;
  for (const auto& f : task.result().output_files()) {
    if (absl::Status s = CheckRelativePath(f.path(), "output path"); !s.ok()) return s;
    auto digest = Digest::FromProto(f.digest());
    if (!digest.ok()) return digest.status();
    out.push_back(OutputEntry{f.path(), *digest, f.is_executable()});
  }
  for (const auto& d : task.result().output_directories()) {
    auto digest = Digest::FromProto(d.tree_digest());
    if (!digest.ok()) return digest.status();
    auto bytes = client.cas->ReadBlob(*digest);
    if (!bytes.ok()) return bytes.status();
    reapi::Tree tree;
    if (!tree.ParseFromString(*bytes)) return absl::DataLossError(absl::StrCat(d.path(), ": an unreadable output tree"));
    std::map<std::string, const reapi::Directory*> children;
    for (const auto& child : tree.children()) children[Digest::OfBytes(child.SerializeAsString()).hash()] = &child;
    if (absl::Status s = WalkTree(tree.root(), std::string(absl::StripSuffix(d.path(), "/")), children, 0, &out);
        !s.ok()) {
      return s;
    }
  }
  std::sort(out.begin(), out.end(), [](const OutputEntry& a, const OutputEntry& b) { return a.path < b.path; });
  return out;
}

int ReportCommand(Client& client, const std::string& job_id, const ReportOptions& options) {
  auto job = GetJob(client, job_id);
  if (!job.ok()) return ReportError(job.status());
  if (!IsFinal(job->state())) {
    std::cerr << "note: job " << job_id << " is still " << StateName(job->state()) << "; this report is partial\n";
  }
  const Report report = BuildReport(*job);
  if (!options.junit.empty()) {
    if (absl::Status s = WriteFile(options.junit, JUnitXml(report, FailedLogs(client, *job))); !s.ok()) {
      return ReportError(s);
    }
  }
  if (!options.json.empty()) {
    if (absl::Status s = WriteFile(options.json, ReportJson(report)); !s.ok()) return ReportError(s);
  }
  if (!options.markdown.empty()) {
    if (absl::Status s = WriteFile(options.markdown, ReportMarkdown(report)); !s.ok()) return ReportError(s);
  }
  std::cout << (options.print_json ? ReportJson(report) : ReportTable(report));
  return job->state() == assay::v1::JOB_SUCCEEDED ? kOk : kJobFailed;
}

int Release(Client& client, const std::string& job_id, const std::string& out_dir, const std::vector<std::string>& globs) {
  auto job = GetJob(client, job_id);
  if (!job.ok()) return ReportError(job.status());
  if (!IsFinal(job->state())) {
    return ReportError(absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " is still ", StateName(job->state()), ": release a finished job")));
  }
  std::error_code ec;
  if (fs::exists(out_dir, ec) && !fs::is_empty(out_dir, ec)) {
    return ReportError(absl::InvalidArgumentError(
        absl::StrCat("--out ", out_dir, " is not empty: a release goes to a new or empty folder")));
  }
  auto chosen = [&](const std::string& full, const std::string& path) {
    if (globs.empty()) return true;
    for (const std::string& g : globs) {
      if (::fnmatch(g.c_str(), full.c_str(), 0) == 0 || ::fnmatch(g.c_str(), path.c_str(), 0) == 0) return true;
    }
    return false;
  };
  nlohmann::ordered_json manifest;
  manifest["job"] = job->id();
  manifest["name"] = job->name();
  manifest["state"] = StateName(job->state());
  manifest["labels"] = nlohmann::ordered_json::object();
  std::map<std::string, std::string> labels(job->labels().begin(), job->labels().end());
  for (const auto& [k, v] : labels) manifest["labels"][k] = v;
  manifest["artifacts"] = nlohmann::ordered_json::array();
  std::string sums;
  int64_t bytes = 0;
  // Every file gets the job's end as its time, so even an archive of the folder is reproducible.
  const int64_t mtime_ms = job->finished_at_ms() > 0 ? job->finished_at_ms() : job->created_at_ms();
  const timespec times[2] = {{mtime_ms / 1000, (mtime_ms % 1000) * 1'000'000}, {mtime_ms / 1000, (mtime_ms % 1000) * 1'000'000}};
  std::vector<const Task*> tasks;
  for (const Task& t : job->tasks()) tasks.push_back(&t);
  std::sort(tasks.begin(), tasks.end(), [](const Task* a, const Task* b) { return a->id() < b->id(); });
  for (const Task* t : tasks) {
    if (t->state() != assay::v1::TASK_SUCCEEDED) continue;  // a release holds what was built and passed
    auto outputs = ListOutputs(client, *t);
    if (!outputs.ok()) return ReportError(outputs.status());
    for (const OutputEntry& f : *outputs) {
      const std::string rel = absl::StrCat(t->id(), "/", f.path);
      if (!chosen(rel, f.path)) continue;
      if (absl::Status s = CheckRelativePath(rel, "artifact path"); !s.ok()) return ReportError(s);
      const fs::path target = fs::path(out_dir) / rel;
      if (absl::Status s = MakeDirs(target.parent_path()); !s.ok()) return ReportError(s);
      if (absl::Status s = client.cas->DownloadToFile(f.digest, target, f.executable); !s.ok()) return ReportError(s);
      nlohmann::ordered_json entry;
      entry["cell"] = t->cell();
      entry["step"] = t->step();
      entry["path"] = rel;
      entry["size"] = f.digest.size();
      entry["sha256"] = f.digest.hash();
      entry["job"] = job->id();
      entry["labels"] = manifest["labels"];
      manifest["artifacts"].push_back(entry);
      absl::StrAppend(&sums, f.digest.hash(), "  ", rel, "\n");
      bytes += f.digest.size();
    }
  }
  const size_t count = manifest["artifacts"].size();
  if (count == 0) {
    return ReportError(absl::NotFoundError(absl::StrCat(
        "job ", job_id, " has no artifacts", globs.empty() ? "" : " matching --artifacts", " in its succeeded steps")));
  }
  if (absl::Status s = WriteFile(fs::path(out_dir) / "manifest.json", manifest.dump(2) + "\n"); !s.ok()) {
    return ReportError(s);
  }
  if (absl::Status s = WriteFile(fs::path(out_dir) / "SHA256SUMS", sums); !s.ok()) return ReportError(s);
  // Folders last (writing into a folder changes its time): every entry then has the job's time.
  std::vector<fs::path> entries = {fs::path(out_dir)};
  for (const auto& entry : fs::recursive_directory_iterator(out_dir, ec)) entries.push_back(entry.path());
  std::sort(entries.begin(), entries.end(), [](const fs::path& x, const fs::path& y) { return x.string() > y.string(); });
  for (const fs::path& p : entries) ::utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW);
  std::cout << "released " << count << " artifacts (" << bytes << " bytes) of job " << job_id << " to " << out_dir
            << "\n  check them: (cd " << out_dir << " && sha256sum -c SHA256SUMS)\n";
  return kOk;
}

}  // namespace assay::cli
