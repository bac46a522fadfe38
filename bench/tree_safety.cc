// What safety costs on the path of every task: validating an input tree (vs only loading its
// directories) and writing it through directory descriptors with every file hashed and checked
// (vs plain path-based writes with std::filesystem and no checks). Same tree, same run; medians.
//   build/bench/bench_tree_safety [DIRS] [FILES_PER_DIR] [BYTES_PER_FILE] [REPS]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/file_util.h"
#include "common/tree/tree_validator.h"
#include "common/tree/tree_writer.h"

namespace assay {
namespace {
namespace fs = std::filesystem;

struct Tree {
  Digest root;
  std::map<Digest, reapi::Directory> dirs;
  std::map<Digest, std::string> files;
};

Tree Make(int dirs, int files_per_dir, int bytes) {
  Tree t;
  reapi::Directory root;
  for (int d = 0; d < dirs; ++d) {
    reapi::Directory dir;
    for (int f = 0; f < files_per_dir; ++f) {
      std::string data(static_cast<size_t>(bytes), static_cast<char>('a' + (d + f) % 26));
      absl::StrAppend(&data, d, "/", f);
      Digest digest = Digest::OfBytes(data);
      t.files[digest] = data;
      auto* node = dir.add_files();
      node->set_name(absl::StrCat("file", 1000 + f, ".c"));
      *node->mutable_digest() = digest.ToProto();
    }
    auto* link = dir.add_symlinks();
    link->set_name("zz-first");
    link->set_target("file1000.c");
    Digest digest = Digest::OfMessage(dir);
    t.dirs[digest] = dir;
    auto* node = root.add_directories();
    node->set_name(absl::StrCat("dir", 1000 + d));
    *node->mutable_digest() = digest.ToProto();
  }
  t.root = Digest::OfMessage(root);
  t.dirs[t.root] = root;
  return t;
}

double MedianMs(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace
}  // namespace assay

int main(int argc, char** argv) {
  using namespace assay;
  const int dirs = argc > 1 ? std::atoi(argv[1]) : 100;
  const int per_dir = argc > 2 ? std::atoi(argv[2]) : 100;
  const int bytes = argc > 3 ? std::atoi(argv[3]) : 1024;
  const int reps = argc > 4 ? std::atoi(argv[4]) : 7;
  Tree tree = Make(dirs, per_dir, bytes);
  DirectoryLoader load = [&](const Digest& d) -> absl::StatusOr<reapi::Directory> { return tree.dirs.at(d); };
  std::printf("tree: %d directories x %d files of ~%d bytes (+1 symlink each), %d reps, medians\n", dirs, per_dir,
              bytes, reps);

  std::vector<double> walk, validate;
  for (int r = 0; r < reps; ++r) {
    absl::Time t0 = absl::Now();
    int64_t entries = 0;
    std::vector<Digest> todo{tree.root};
    while (!todo.empty()) {
      auto d = load(todo.back());
      todo.pop_back();
      entries += d->files_size() + d->directories_size() + d->symlinks_size();
      for (const auto& sub : d->directories()) todo.push_back(*Digest::FromProto(sub.digest()));
    }
    walk.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    t0 = absl::Now();
    auto summary = ValidateTree(tree.root, load, TreeLimits{});
    validate.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    if (!summary.ok() || summary->files + summary->directories + summary->symlinks != entries) {
      std::fprintf(stderr, "validation disagrees: %s\n", summary.status().ToString().c_str());
      return 1;
    }
  }
  std::printf("validate     %8.2f ms   load-only walk %8.2f ms   ratio %.2fx\n", MedianMs(validate), MedianMs(walk),
              MedianMs(validate) / MedianMs(walk));

  ScopedTempDir scratch("bench-tree-safety");
  std::vector<double> plain, safe;
  for (int r = 0; r < reps; ++r) {
    const fs::path a = scratch.path() / absl::StrCat("plain", r), b = scratch.path() / absl::StrCat("safe", r);
    absl::Time t0 = absl::Now();
    for (const auto& node : tree.dirs.at(tree.root).directories()) {
      const fs::path dir = a / node.name();
      fs::create_directories(dir);
      const auto& d = tree.dirs.at(*Digest::FromProto(node.digest()));
      for (const auto& f : d.files()) {
        std::ofstream out(dir / f.name(), std::ios::binary);
        const std::string& data = tree.files.at(*Digest::FromProto(f.digest()));
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
      }
      for (const auto& l : d.symlinks()) fs::create_symlink(l.target(), dir / l.name());
    }
    plain.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));

    fs::create_directories(b);
    t0 = absl::Now();
    auto writer = TreeWriter::Open(b);
    auto files = (*writer)->Layout(tree.root, load);
    for (const auto& f : *files) {
      auto out = (*writer)->CreateFile(f);
      if (!out.ok() || !out->Append(tree.files.at(f.digest)).ok() || !out->Commit().ok()) return 1;
    }
    if (!(*writer)->FinishSymlinks().ok()) return 1;
    safe.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
  }
  std::printf("TreeWriter   %8.2f ms   plain path writes %8.2f ms   ratio %.2fx   (%d files, verified)\n",
              MedianMs(safe), MedianMs(plain), MedianMs(safe) / MedianMs(plain), dirs * per_dir);
  return 0;
}
