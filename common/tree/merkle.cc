#include "common/tree/merkle.h"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/file_util.h"

namespace assay {
namespace fs = std::filesystem;
namespace {

struct Scanner {
  const IgnoreFn& ignore;
  fs::path top;
  LocalTree tree;
  absl::flat_hash_set<Digest> seen;

  void Add(TreeBlob blob) {
    if (seen.insert(blob.digest).second) tree.blobs.push_back(std::move(blob));
  }

  absl::StatusOr<Digest> ScanDir(const fs::path& dir, const std::string& rel) {
    reapi::Directory directory;
    std::error_code ec;
    std::vector<fs::directory_entry> entries;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(*it);
    if (ec) return absl::InternalError(absl::StrCat("cannot list ", dir.string(), ": ", ec.message()));
    for (const auto& entry : entries) {
      std::string name = entry.path().filename().string();
      std::string child_rel = rel.empty() ? name : absl::StrCat(rel, "/", name);
      fs::file_status status = entry.symlink_status(ec);
      if (ec) return absl::InternalError(absl::StrCat("cannot stat ", entry.path().string(), ": ", ec.message()));
      bool is_dir = fs::is_directory(status);
      if (ignore && ignore(child_rel, is_dir)) continue;
      if (fs::is_symlink(status)) {
        fs::path target = fs::read_symlink(entry.path(), ec);
        if (ec) return absl::InternalError(absl::StrCat("cannot read link ", entry.path().string()));
        // The target must stay inside the tree.
        fs::path resolved = (fs::path(child_rel).parent_path() / target).lexically_normal();
        if (target.is_absolute() || resolved.empty() || *resolved.begin() == "..") {
          return absl::InvalidArgumentError(
              absl::StrCat("symlink ", child_rel, " -> ", target.string(), " points outside the uploaded tree"));
        }
        auto* link = directory.add_symlinks();
        link->set_name(name);
        link->set_target(target.string());
      } else if (is_dir) {
        auto digest = ScanDir(entry.path(), child_rel);
        if (!digest.ok()) return digest.status();
        auto* node = directory.add_directories();
        node->set_name(name);
        *node->mutable_digest() = digest->ToProto();
      } else if (fs::is_regular_file(status)) {
        auto digest = DigestFile(entry.path().string());
        if (!digest.ok()) return digest.status();
        auto* node = directory.add_files();
        node->set_name(name);
        *node->mutable_digest() = digest->ToProto();
        node->set_is_executable((status.permissions() & fs::perms::owner_exec) != fs::perms::none);
        ++tree.files;
        tree.file_bytes += digest->size();
        Add(TreeBlob{*digest, "", entry.path()});
      }
      // Sockets, fifos and devices are not part of a source tree.
    }
    Canonicalize(&directory);
    std::string bytes = directory.SerializeAsString();
    Digest digest = Digest::OfBytes(bytes);
    Add(TreeBlob{digest, std::move(bytes), {}});
    return digest;
  }
};

// A directory being edited: loaded from the store only along the paths that change.
struct EditDir {
  reapi::Directory original;
  std::map<std::string, std::unique_ptr<EditDir>> children;  // subdirectories that change
};

absl::StatusOr<EditDir*> Descend(EditDir* dir, const std::string& name, const DirectoryLoader& load) {
  auto it = dir->children.find(name);
  if (it != dir->children.end()) return it->second.get();
  auto child = std::make_unique<EditDir>();
  for (const auto& node : dir->original.directories()) {
    if (node.name() == name) {
      auto digest = Digest::FromProto(node.digest());
      if (!digest.ok()) return digest.status();
      auto loaded = load(*digest);
      if (!loaded.ok()) return loaded.status();
      child->original = std::move(*loaded);
    }
  }
  // A file or symlink of the same name gives way to the directory.
  auto* files = dir->original.mutable_files();
  files->erase(std::remove_if(files->begin(), files->end(), [&](const auto& f) { return f.name() == name; }), files->end());
  auto* links = dir->original.mutable_symlinks();
  links->erase(std::remove_if(links->begin(), links->end(), [&](const auto& l) { return l.name() == name; }), links->end());
  EditDir* raw = child.get();
  dir->children[name] = std::move(child);
  return raw;
}

absl::StatusOr<Digest> Save(EditDir* dir, const BlobSaver& save) {
  reapi::Directory out = dir->original;
  for (auto& [child_name, child] : dir->children) {
    const std::string& name = child_name;  // a plain reference: lambdas may capture it
    auto digest = Save(child.get(), save);
    if (!digest.ok()) return digest.status();
    auto* dirs = out.mutable_directories();
    auto found = std::find_if(dirs->begin(), dirs->end(), [&](const auto& d) { return d.name() == name; });
    reapi::DirectoryNode* node = found != dirs->end() ? &*found : out.add_directories();
    node->set_name(name);
    *node->mutable_digest() = digest->ToProto();
  }
  Canonicalize(&out);
  std::string bytes = out.SerializeAsString();
  Digest digest = Digest::OfBytes(bytes);
  if (absl::Status s = save(digest, bytes); !s.ok()) return s;
  return digest;
}

}  // namespace

void Canonicalize(reapi::Directory* directory) {
  auto by_name = [](const auto& a, const auto& b) { return a.name() < b.name(); };
  std::sort(directory->mutable_files()->begin(), directory->mutable_files()->end(), by_name);
  std::sort(directory->mutable_directories()->begin(), directory->mutable_directories()->end(), by_name);
  std::sort(directory->mutable_symlinks()->begin(), directory->mutable_symlinks()->end(), by_name);
}

absl::StatusOr<LocalTree> ScanDirectory(const fs::path& dir, const IgnoreFn& ignore) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return absl::NotFoundError(absl::StrCat(dir.string(), " is not a directory"));
  Scanner scanner{ignore, dir, {}, {}};
  auto root = scanner.ScanDir(dir, "");
  if (!root.ok()) return root.status();
  scanner.tree.root = *root;
  return std::move(scanner.tree);
}

namespace {

// The directory (opened for editing along the way) that will hold `path`, and the entry's name in
// it; a file or symlink already of that name is dropped, to be replaced by the caller's entry.
absl::StatusOr<std::pair<EditDir*, std::string>> PlaceFor(EditDir* top, const std::string& path, absl::string_view what,
                                                           const DirectoryLoader& load) {
  if (absl::Status s = CheckRelativePath(path, what); !s.ok()) return s;
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part != ".") parts.emplace_back(part);
  }
  if (parts.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "' names no entry"));
  EditDir* dir = top;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto next = Descend(dir, parts[i], load);
    if (!next.ok()) return next.status();
    dir = *next;
  }
  const std::string& name = parts.back();
  auto drop = [&](auto* nodes) {
    nodes->erase(std::remove_if(nodes->begin(), nodes->end(), [&](const auto& n) { return n.name() == name; }),
                 nodes->end());
  };
  drop(dir->original.mutable_files());
  drop(dir->original.mutable_symlinks());
  return std::make_pair(dir, name);
}

}  // namespace

absl::StatusOr<Digest> AddFilesToTree(const Digest& root, const std::vector<reapi::OutputFile>& files,
                                      const std::vector<reapi::OutputSymlink>& symlinks, const DirectoryLoader& load,
                                      const BlobSaver& save) {
  if (files.empty() && symlinks.empty()) return root;
  EditDir top;
  auto loaded = load(root);
  if (!loaded.ok()) return loaded.status();
  top.original = std::move(*loaded);
  for (const auto& file : files) {
    auto place = PlaceFor(&top, file.path(), "output path", load);
    if (!place.ok()) return place.status();
    auto* node = place->first->original.add_files();
    node->set_name(place->second);
    *node->mutable_digest() = file.digest();
    node->set_is_executable(file.is_executable());
  }
  for (const auto& link : symlinks) {
    auto place = PlaceFor(&top, link.path(), "output symlink", load);
    if (!place.ok()) return place.status();
    auto* node = place->first->original.add_symlinks();
    node->set_name(place->second);
    node->set_target(link.target());
  }
  return Save(&top, save);
}

bool PathMatches(absl::string_view pattern, absl::string_view path) {
  std::string p(pattern);
  while (absl::ConsumePrefix(&pattern, "./")) p = std::string(pattern);
  if (absl::EndsWith(p, "/**")) p.resize(p.size() - 2);
  if (!p.empty() && p.back() == '/') return absl::StartsWith(path, p);
  if (p == path) return true;
  // A plain folder name selects what is under it.
  if (absl::StartsWith(path, p + "/") && p.find_first_of("*?[") == std::string::npos) return true;
  return ::fnmatch(p.c_str(), std::string(path).c_str(), FNM_PATHNAME) == 0;
}

namespace {

absl::StatusOr<std::optional<Digest>> FilterDir(const Digest& digest, const std::string& prefix,
                                                const std::vector<std::string>& patterns, const DirectoryLoader& load,
                                                const BlobSaver& save) {
  auto dir = load(digest);
  if (!dir.ok()) return dir.status();
  reapi::Directory out;
  for (const auto& f : dir->files()) {
    std::string path = prefix + f.name();
    if (std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return PathMatches(p, path); })) {
      *out.add_files() = f;
    }
  }
  for (const auto& l : dir->symlinks()) {
    std::string path = prefix + l.name();
    if (std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return PathMatches(p, path); })) {
      *out.add_symlinks() = l;
    }
  }
  for (const auto& sub : dir->directories()) {
    auto sub_digest = Digest::FromProto(sub.digest());
    if (!sub_digest.ok()) return sub_digest.status();
    auto kept = FilterDir(*sub_digest, prefix + sub.name() + "/", patterns, load, save);
    if (!kept.ok()) return kept.status();
    if (!kept->has_value()) continue;
    auto* node = out.add_directories();
    node->set_name(sub.name());
    *node->mutable_digest() = (*kept)->ToProto();
  }
  if (out.files_size() == 0 && out.directories_size() == 0 && out.symlinks_size() == 0 && !prefix.empty()) {
    return std::optional<Digest>();
  }
  Canonicalize(&out);
  std::string bytes = out.SerializeAsString();
  Digest d = Digest::OfBytes(bytes);
  if (absl::Status s = save(d, bytes); !s.ok()) return s;
  return std::optional<Digest>(d);
}

}  // namespace

absl::StatusOr<Digest> FilterTree(const Digest& root, const std::vector<std::string>& patterns,
                                  const DirectoryLoader& load, const BlobSaver& save) {
  if (patterns.empty()) return root;
  auto kept = FilterDir(root, "", patterns, load, save);
  if (!kept.ok()) return kept.status();
  return kept->value();
}

absl::StatusOr<reapi::FileNode> FindFile(const Digest& root, absl::string_view path, const DirectoryLoader& load) {
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  if (parts.empty()) return absl::InvalidArgumentError("empty path");
  Digest current = root;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto dir = load(current);
    if (!dir.ok()) return dir.status();
    bool last = i + 1 == parts.size();
    bool found = false;
    if (last) {
      for (const auto& f : dir->files()) {
        if (f.name() == parts[i]) return f;
      }
    } else {
      for (const auto& d : dir->directories()) {
        if (d.name() == parts[i]) {
          auto digest = Digest::FromProto(d.digest());
          if (!digest.ok()) return digest.status();
          current = *digest;
          found = true;
        }
      }
    }
    if (!found) break;
  }
  return absl::NotFoundError(absl::StrCat("no file '", path, "' in the submitted tree"));
}

}  // namespace assay
