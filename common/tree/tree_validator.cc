#include "common/tree/tree_validator.h"

#include <deque>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace assay {
namespace {

std::string Where(absl::string_view path) { return path.empty() ? "the root directory" : absl::StrCat("'", path, "'"); }

absl::Status Invalid(absl::string_view path, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("input tree: ", Where(path), ": ", problem));
}

// Finds `name` in a list sorted by name (ValidateDirectory checked the order).
template <typename Nodes>
const auto* FindNode(const Nodes& nodes, absl::string_view name) {
  auto it = std::lower_bound(nodes.begin(), nodes.end(), name,
                             [](const auto& node, absl::string_view n) { return node.name() < n; });
  return it != nodes.end() && it->name() == name ? &*it : nullptr;
}

class Validator {
 public:
  Validator(const DirectoryLoader& load, const TreeLimits& limits) : load_(load), limits_(limits) {}

  absl::StatusOr<TreeSummary> Run(const Digest& root) {
    auto top = Load(root, "");
    if (!top.ok()) return top.status();
    if (absl::Status s = Walk(*top, "", 0); !s.ok()) return s;
    if (summary_.symlinks > 0) {
      std::vector<Entry*> stack{*top};
      if (absl::Status s = CheckLinks(&stack, ""); !s.ok()) return s;
    }
    return summary_;
  }

 private:
  struct Entry {
    reapi::Directory directory;
    std::vector<Digest> children;  // digests of `directory.directories()`, in order
    bool has_links = false;        // a symlink here or below
    bool links_known = false;
  };

  // Loads (once per digest) and validates a directory found at `path`.
  absl::StatusOr<Entry*> Load(const Digest& digest, absl::string_view path) {
    auto it = cache_.find(digest);
    if (it != cache_.end()) return it->second.get();
    auto directory = load_(digest);
    if (!directory.ok()) {
      if (absl::IsNotFound(directory.status())) {
        return absl::FailedPreconditionError(absl::StrCat("input tree: directory ", Where(path), " (", digest.ToString(),
                                                          ") is not in the CAS"));
      }
      return absl::Status(directory.status().code(),
                          absl::StrCat("input tree: directory ", Where(path), ": ", directory.status().message()));
    }
    if (absl::Status s = ValidateDirectory(*directory, path); !s.ok()) return s;
    auto entry = std::make_unique<Entry>();
    entry->directory = std::move(*directory);
    for (const auto& node : entry->directory.directories()) entry->children.push_back(*Digest::FromProto(node.digest()));
    Entry* raw = entry.get();
    cache_.emplace(digest, std::move(entry));
    return raw;
  }

  // Counts the tree as it would be written, within the limits.
  absl::Status Walk(Entry* entry, const std::string& path, int depth) {
    const reapi::Directory& d = entry->directory;
    summary_.files += d.files_size();
    summary_.symlinks += d.symlinks_size();
    summary_.directories += d.directories_size();
    for (const auto& f : d.files()) summary_.file_bytes += f.digest().size_bytes();
    if (summary_.files + summary_.symlinks + summary_.directories > limits_.max_entries) {
      return Invalid(path, absl::StrCat("the tree has more than ", limits_.max_entries,
                                        " entries (the limit; coordinator and worker flag --max-tree-entries)"));
    }
    if (summary_.file_bytes > limits_.max_total_bytes) {
      return Invalid(path, absl::StrCat("the tree's files add up to more than ", limits_.max_total_bytes,
                                        " bytes (the limit; flag --max-tree-bytes)"));
    }
    if (d.directories_size() > 0 && depth + 1 > limits_.max_depth) {
      return Invalid(PrintablePath(path, d.directories(0).name()),
                     absl::StrCat("the tree is deeper than ", limits_.max_depth,
                                  " directories (the limit; flag --max-tree-depth)"));
    }
    summary_.depth = std::max(summary_.depth, depth);
    for (int i = 0; i < d.directories_size(); ++i) {
      std::string child_path = PrintablePath(path, d.directories(i).name());
      auto child = Load(entry->children[static_cast<size_t>(i)], child_path);
      if (!child.ok()) return child.status();
      if (absl::Status s = Walk(*child, child_path, depth + 1); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  bool HasLinks(Entry* entry) {
    if (entry->links_known) return entry->has_links;
    bool has = entry->directory.symlinks_size() > 0;
    for (const Digest& child : entry->children) has = has || HasLinks(cache_.at(child).get());
    entry->has_links = has;
    entry->links_known = true;
    return has;
  }

  // Checks every symlink below stack->back(), whose path is `path`.
  absl::Status CheckLinks(std::vector<Entry*>* stack, const std::string& path) {
    Entry* entry = stack->back();
    if (!HasLinks(entry)) return absl::OkStatus();
    for (const auto& link : entry->directory.symlinks()) {
      if (absl::Status s = Resolve(*stack, PrintablePath(path, link.name()), link.target()); !s.ok()) return s;
    }
    for (size_t i = 0; i < entry->children.size(); ++i) {
      stack->push_back(cache_.at(entry->children[i]).get());
      absl::Status s = CheckLinks(stack, PrintablePath(path, entry->directory.directories(static_cast<int>(i)).name()));
      stack->pop_back();
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // Checks `target` from the directory at the top of `stack` (a copy) two ways: by name alone, and
  // followed as the kernel would through the tree's own symlinks; fails if either climbs above the
  // root. Past a name the tree does not have (or a file) the rest is followed by name alone.
  absl::Status Resolve(std::vector<Entry*> stack, const std::string& link_path, const std::string& target) {
    auto escape = [&](absl::string_view why) {
      return Invalid(link_path, absl::StrCat("symlink target '", absl::CHexEscape(target), "' ", why));
    };
    // By name alone from where the link stands (the writer checks this too).
    const std::string link_dir = link_path.substr(0, link_path.find_last_of('/') == std::string::npos
                                                         ? 0
                                                         : link_path.find_last_of('/'));
    if (std::string why = SymlinkEscapesByName(link_dir, target); !why.empty()) return escape(why);
    // And followed through the tree's own symlinks, as the kernel would.
    std::deque<std::string> parts = absl::StrSplit(target, '/');
    int hops = 0;
    int past_tree = 0;  // names walked below something the tree does not have
    while (!parts.empty()) {
      std::string part = std::move(parts.front());
      parts.pop_front();
      if (part.empty() || part == ".") continue;
      if (part == "..") {
        if (past_tree > 0) {
          --past_tree;
        } else if (stack.size() == 1) {
          return escape("points outside the input tree");
        } else {
          stack.pop_back();
        }
        continue;
      }
      if (past_tree > 0) {
        ++past_tree;
        continue;
      }
      const reapi::Directory& here = stack.back()->directory;
      if (const auto* dir = FindNode(here.directories(), part)) {
        stack.push_back(cache_.at(*Digest::FromProto(dir->digest())).get());
      } else if (const auto* link = FindNode(here.symlinks(), part)) {
        if (++hops > TreeLimits::kMaxSymlinkHops) return escape("goes through too many symlinks (a loop?)");
        if (!link->target().empty() && link->target().front() == '/') return escape("goes through an absolute symlink");
        std::vector<std::string> more = absl::StrSplit(link->target(), '/');
        parts.insert(parts.begin(), more.begin(), more.end());
      } else {
        past_tree = 1;
      }
    }
    return absl::OkStatus();
  }

  const DirectoryLoader& load_;
  const TreeLimits& limits_;
  absl::flat_hash_map<Digest, std::unique_ptr<Entry>> cache_;
  TreeSummary summary_;
};

}  // namespace

std::string SymlinkEscapesByName(absl::string_view dir, absl::string_view target) {
  if (target.empty()) return "is empty";
  if (target.front() == '/') return "is absolute (absolute symlinks are not allowed)";
  if (target.find('\0') != absl::string_view::npos) return "contains a NUL byte";
  int depth = 0;
  for (absl::string_view part : absl::StrSplit(dir, '/', absl::SkipEmpty())) depth += part == "." ? 0 : 1;
  for (absl::string_view part : absl::StrSplit(target, '/')) {
    if (part.empty() || part == ".") continue;
    depth += part == ".." ? -1 : 1;
    if (depth < 0) return "points outside the input tree";
  }
  return "";
}

std::string PrintablePath(absl::string_view parent, absl::string_view name) {
  std::string escaped = absl::CHexEscape(name);
  return parent.empty() ? escaped : absl::StrCat(parent, "/", escaped);
}

absl::Status CheckEntryName(absl::string_view name, absl::string_view path) {
  if (name.empty()) return Invalid(path, "an entry has an empty name");
  if (name == "." || name == "..") return Invalid(path, "'.' and '..' are not allowed as names");
  if (name.find('/') != absl::string_view::npos) return Invalid(path, "a name must be one path segment (no '/')");
  if (name.find('\0') != absl::string_view::npos) return Invalid(path, "a name contains a NUL byte");
  if (name.size() > 255) return Invalid(path, "a name is longer than 255 bytes");
  return absl::OkStatus();
}

absl::Status ValidateDirectory(const reapi::Directory& directory, absl::string_view path) {
  // Every name once, each list strictly increasing.
  absl::flat_hash_map<absl::string_view, const char*> seen;
  auto check = [&](const auto& nodes, const char* kind) -> absl::Status {
    const std::string* previous = nullptr;
    for (const auto& node : nodes) {
      if (node.name().empty()) return Invalid(path, absl::StrCat("a ", kind, " has an empty name"));
      const std::string entry_path = PrintablePath(path, node.name());
      if (absl::Status s = CheckEntryName(node.name(), entry_path); !s.ok()) return s;
      if (previous != nullptr && !(*previous < node.name())) {
        return Invalid(entry_path, *previous == node.name()
                                       ? absl::StrCat("the ", kind, " appears twice")
                                       : absl::StrCat("the ", kind, "s of this directory are not sorted by name"));
      }
      previous = &node.name();
      auto [it, inserted] = seen.emplace(node.name(), kind);
      if (!inserted) return Invalid(entry_path, absl::StrCat("is both a ", it->second, " and a ", kind));
    }
    return absl::OkStatus();
  };
  if (absl::Status s = check(directory.files(), "file"); !s.ok()) return s;
  if (absl::Status s = check(directory.directories(), "directory"); !s.ok()) return s;
  if (absl::Status s = check(directory.symlinks(), "symlink"); !s.ok()) return s;
  for (const auto& f : directory.files()) {
    if (auto d = Digest::FromProto(f.digest()); !d.ok()) {
      return Invalid(PrintablePath(path, f.name()), absl::StrCat("bad digest: ", d.status().message()));
    }
  }
  for (const auto& sub : directory.directories()) {
    if (auto d = Digest::FromProto(sub.digest()); !d.ok()) {
      return Invalid(PrintablePath(path, sub.name()), absl::StrCat("bad digest: ", d.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TreeSummary> ValidateTree(const Digest& root, const DirectoryLoader& load, const TreeLimits& limits) {
  Validator validator(load, limits);
  return validator.Run(root);
}

}  // namespace assay
