#include "tests/common/hostile_trees.h"

namespace assay::testing {

Digest TreeBuilder::File(const std::string& contents) {
  Digest d = Digest::OfBytes(contents);
  blobs_[d] = contents;
  return d;
}

Digest TreeBuilder::Dir(const reapi::Directory& directory) {
  std::string bytes = directory.SerializeAsString();
  Digest d = Digest::OfBytes(bytes);
  blobs_[d] = std::move(bytes);
  return d;
}

void AddFile(reapi::Directory* d, const std::string& name, const Digest& digest, bool executable) {
  auto* f = d->add_files();
  f->set_name(name);
  *f->mutable_digest() = digest.ToProto();
  f->set_is_executable(executable);
}

void AddDir(reapi::Directory* d, const std::string& name, const Digest& digest) {
  auto* n = d->add_directories();
  n->set_name(name);
  *n->mutable_digest() = digest.ToProto();
}

void AddLink(reapi::Directory* d, const std::string& name, const std::string& target) {
  auto* l = d->add_symlinks();
  l->set_name(name);
  l->set_target(target);
}

namespace {

// A root holding assay.yaml plus what `fill` adds; entries are added in the order given.
HostileTree Make(const std::string& name, const std::string& path, TreeBuilder& b, reapi::Directory root,
                 const std::string& outside = "", absl::StatusCode code = absl::StatusCode::kInvalidArgument) {
  HostileTree t;
  t.name = name;
  t.root = b.Dir(root);
  t.blobs = b.blobs();
  t.path = path;
  t.code = code;
  t.outside_name = outside;
  return t;
}

reapi::Directory WithPipeline(TreeBuilder& b) {
  reapi::Directory root;
  AddFile(&root, "assay.yaml", b.File(kFixturePipeline));
  return root;
}

}  // namespace

std::string QuotedPath(const HostileTree& tree) {
  return tree.path.empty() ? "the root directory" : "'" + tree.path + "'";
}

void PrintTo(const HostileTree& tree, std::ostream* os) { *os << tree.name; }

HostileTree BenignTree() {
  TreeBuilder b;
  reapi::Directory sub;
  AddFile(&sub, "data.txt", b.File("data\n"));
  AddLink(&sub, "up", "../assay.yaml");
  reapi::Directory root = WithPipeline(b);
  AddDir(&root, "sub", b.Dir(sub));
  AddLink(&root, "z-link", "sub/data.txt");
  return Make("Benign", "", b, root);
}

std::vector<HostileTree> HostileTrees() {
  std::vector<HostileTree> out;
  const std::string payload = "written by a hostile tree\n";
  {  // A directory and a symlink of the same name: the symlink would redirect what goes in the dir.
    TreeBuilder b;
    reapi::Directory evil;
    AddFile(&evil, "pwned-samename", b.File(payload));
    reapi::Directory root = WithPipeline(b);
    AddDir(&root, "x", b.Dir(evil));
    AddLink(&root, "x", "../..");
    out.push_back(Make("SymlinkAndDirectoryOfTheSameName", "x", b, root, "pwned-samename"));
  }
  {  // A directory called "..": its file would land beside the work directory.
    TreeBuilder b;
    reapi::Directory evil;
    AddFile(&evil, "pwned-dotdot", b.File(payload));
    reapi::Directory root;
    AddDir(&root, "..", b.Dir(evil));
    AddFile(&root, "assay.yaml", b.File(kFixturePipeline));
    out.push_back(Make("DotDotDirectoryName", "..", b, root, "pwned-dotdot"));
  }
  {
    TreeBuilder b;
    reapi::Directory root = WithPipeline(b);
    AddFile(&root, ".", b.File(payload));
    out.push_back(Make("DotFileName", ".", b, root));
  }
  {  // A name with slashes climbing out.
    TreeBuilder b;
    reapi::Directory root;
    AddFile(&root, "../../pwned-slash", b.File(payload));
    AddFile(&root, "assay.yaml", b.File(kFixturePipeline));
    out.push_back(Make("SlashInName", "../../pwned-slash", b, root, "pwned-slash"));
  }
  {
    TreeBuilder b;
    reapi::Directory root = WithPipeline(b);
    AddFile(&root, std::string("b\0c", 3), b.File(payload));
    out.push_back(Make("NulInName", "b\\x00\\x63", b, root));
  }
  {
    TreeBuilder b;
    reapi::Directory root;
    AddFile(&root, "", b.File(payload));
    AddFile(&root, "assay.yaml", b.File(kFixturePipeline));
    out.push_back(Make("EmptyName", "", b, root));
  }
  {
    TreeBuilder b;
    reapi::Directory root = WithPipeline(b);
    AddLink(&root, "etc", "/etc");
    out.push_back(Make("AbsoluteSymlinkTarget", "etc", b, root));
  }
  {
    TreeBuilder b;
    reapi::Directory sub;
    AddLink(&sub, "out", "../../../pwned-escape");
    reapi::Directory root = WithPipeline(b);
    AddDir(&root, "sub", b.Dir(sub));
    out.push_back(Make("EscapingSymlinkTarget", "sub/out", b, root));
  }
  {  // Inside by name alone, outside in fact: d/l -> .. is the root, so m -> d/l/.. is above it.
    TreeBuilder b;
    reapi::Directory d;
    AddLink(&d, "l", "..");
    reapi::Directory root = WithPipeline(b);
    AddDir(&root, "d", b.Dir(d));
    AddLink(&root, "m", "d/l/..");
    out.push_back(Make("EscapeThroughAnotherSymlink", "m", b, root));
  }
  {
    TreeBuilder b;
    reapi::Directory root = WithPipeline(b);
    AddLink(&root, "loop-a", "loop-b");
    AddLink(&root, "loop-b", "loop-a/x");
    out.push_back(Make("SymlinkLoop", "loop-a", b, root));
  }
  {
    TreeBuilder b;
    reapi::Directory root;
    AddFile(&root, "b.txt", b.File("b"));
    AddFile(&root, "assay.yaml", b.File(kFixturePipeline));
    out.push_back(Make("UnsortedEntries", "assay.yaml", b, root));
  }
  {
    TreeBuilder b;
    reapi::Directory root = WithPipeline(b);
    AddFile(&root, "dup.txt", b.File("one"));
    AddFile(&root, "dup.txt", b.File("two"));
    out.push_back(Make("DuplicateEntries", "dup.txt", b, root));
  }
  {  // 10,000 directories deep.
    TreeBuilder b;
    reapi::Directory leaf;
    AddFile(&leaf, "deep.txt", b.File("deep"));
    Digest below = b.Dir(leaf);
    for (int i = 0; i < 10'000; ++i) {
      reapi::Directory level;
      AddDir(&level, "d", below);
      below = b.Dir(level);
    }
    reapi::Directory root = WithPipeline(b);
    AddDir(&root, "d", below);
    std::string path = "d";
    for (int i = 0; i < 256; ++i) path += "/d";
    out.push_back(Make("TenThousandDeep", path, b, root));
  }
  {  // 2,000 names each sharing one directory of 1,000 files: 2 million entries from 3 blobs.
    TreeBuilder b;
    reapi::Directory wide;
    Digest empty_file = b.File("");
    for (int i = 0; i < 1000; ++i) AddFile(&wide, "f" + std::to_string(100000 + i), empty_file);
    Digest shared = b.Dir(wide);
    reapi::Directory fan;
    for (int i = 0; i < 2000; ++i) AddDir(&fan, "d" + std::to_string(100000 + i), shared);
    reapi::Directory root = WithPipeline(b);
    AddDir(&root, "fan", b.Dir(fan));
    // The millionth entry is passed inside the 998th shared directory.
    out.push_back(Make("MillionsOfEntriesFromSharedDirectories", "fan/d100997", b, root));
  }
  {  // A directory digest the CAS does not have.
    TreeBuilder b;
    reapi::Directory ghost;
    AddFile(&ghost, "ghost.txt", b.File("boo"));
    Digest missing = b.Dir(ghost);
    b.Forget(missing);
    reapi::Directory root = WithPipeline(b);
    AddDir(&root, "ghost", missing);
    out.push_back(Make("DirectoryMissingFromCas", "ghost", b, root, "", absl::StatusCode::kFailedPrecondition));
  }
  return out;
}

}  // namespace assay::testing
