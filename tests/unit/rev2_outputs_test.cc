// REv2.0 commands (Bazel 4.2's) on a real work directory: output parents made before the run,
// output_files, output_directories (as consistent Trees) and their symlinks collected after it,
// relative to the working directory; escaping paths refused; the Command's environment over the
// worker's.
#include "worker/rev2_outputs.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "absl/strings/match.h"
#include "common/base/file_util.h"
#include "common/remote/cas_client.h"
#include "common/tree/safe_fs.h"
#include "worker/step_settings.h"

namespace assay {
namespace {
namespace fs = std::filesystem;

class Rev2OutputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDirs(exec_).ok());
    auto fd = OpenDirectory(exec_);
    ASSERT_TRUE(fd.ok()) << fd.status();
    exec_fd_ = std::move(*fd);
  }
  void Write(const std::string& rel, const std::string& content, bool executable = false) {
    ASSERT_TRUE(MakeDirs((exec_ / rel).parent_path()).ok());
    ASSERT_TRUE(WriteFile(exec_ / rel, content, executable).ok());
  }
  absl::StatusOr<CollectedOutputs> Collect(const reapi::Command& command) {
    auto work_rel = WorkingDirectoryOf(command);
    if (!work_rel.ok()) return work_rel.status();
    auto work = OpenBeneath(exec_fd_.get(), *work_rel, O_RDONLY | O_DIRECTORY);
    if (!work.ok()) return work.status();
    work_fd_ = std::move(*work);  // kept open: the uploads are opened beneath it
    return CollectRev20Outputs(work_fd_.get(), *work_rel, command);
  }
  // The in-memory blob of `digest` among `outputs`' uploads (a Tree), or "" when absent.
  static std::string BlobData(const CollectedOutputs& outputs, const reapi::Digest& digest) {
    for (const TreeBlob& blob : outputs.uploads) {
      if (blob.digest.ToProto().hash() == digest.hash() && blob.file.empty()) return blob.data;
    }
    return "";
  }
  static bool Uploads(const CollectedOutputs& outputs, const Digest& digest) {
    for (const TreeBlob& blob : outputs.uploads) {
      if (blob.digest == digest) return true;
    }
    return false;
  }

  ScopedTempDir dir_{"rev2-outputs-test"};
  fs::path exec_ = dir_.path() / "work";
  ScopedFd exec_fd_;
  ScopedFd work_fd_;
};

reapi::Command Outputs(std::vector<std::string> files, std::vector<std::string> dirs, std::string workdir = "") {
  reapi::Command command;
  command.add_arguments("true");
  for (auto& f : files) command.add_output_files(std::move(f));
  for (auto& d : dirs) command.add_output_directories(std::move(d));
  command.set_working_directory(std::move(workdir));
  return command;
}

TEST_F(Rev2OutputsTest, OutputFilesBecomeFilesAndSymlinksAndAMissingOneOnlyAWarning) {
  Write("out/a.txt", "aaa");
  Write("out/tool", "#!/bin/sh\n", /*executable=*/true);
  fs::create_symlink("a.txt", exec_ / "out/latest");
  auto out = Collect(Outputs({"out/a.txt", "out/tool", "out/latest", "out/missing.o"}, {}));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->files.size(), 2u);
  EXPECT_EQ(out->files[0].path(), "out/a.txt");
  EXPECT_EQ(Digest::FromProto(out->files[0].digest()).value(), Digest::OfBytes("aaa"));
  EXPECT_FALSE(out->files[0].is_executable());
  EXPECT_EQ(out->files[1].path(), "out/tool");
  EXPECT_TRUE(out->files[1].is_executable());
  ASSERT_EQ(out->symlinks.size(), 1u);  // the ActionResult's output_file_symlinks
  EXPECT_EQ(out->symlinks[0].path(), "out/latest");
  EXPECT_EQ(out->symlinks[0].target(), "a.txt");
  EXPECT_TRUE(out->directories.empty());
  ASSERT_EQ(out->warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(out->warnings[0], "1 declared output(s) not produced: 'out/missing.o'"))
      << out->warnings[0];
  EXPECT_TRUE(Uploads(*out, Digest::OfBytes("aaa")));
  EXPECT_TRUE(Uploads(*out, Digest::OfBytes("#!/bin/sh\n")));
}

// Every DirectoryNode of the Tree must name, by digest, a child the Tree holds: Bazel rebuilds the
// directory by those digests.
void ExpectConsistent(const reapi::Tree& tree) {
  std::map<std::string, int> position;  // child digest hash -> index in children
  for (int i = 0; i < tree.children_size(); ++i) {
    const std::string hash = Digest::OfBytes(tree.children(i).SerializeAsString()).ToProto().hash();
    EXPECT_TRUE(position.emplace(hash, i).second) << "a child is stored twice";
  }
  auto check = [&](const reapi::Directory& dir, int index) {
    for (int i = 1; i < dir.files_size(); ++i) EXPECT_LT(dir.files(i - 1).name(), dir.files(i).name());
    for (int i = 1; i < dir.directories_size(); ++i) EXPECT_LT(dir.directories(i - 1).name(), dir.directories(i).name());
    for (const auto& node : dir.directories()) {
      auto found = position.find(node.digest().hash());
      ASSERT_NE(found, position.end()) << "no child for directory " << node.name();
      EXPECT_EQ(tree.children(found->second).ByteSizeLong(), static_cast<size_t>(node.digest().size_bytes()));
      EXPECT_GT(found->second, index) << node.name() << " comes before its parent";
    }
  };
  check(tree.root(), -1);
  for (int i = 0; i < tree.children_size(); ++i) check(tree.children(i), i);
}

TEST_F(Rev2OutputsTest, AnOutputDirectoryBecomesATreeWhoseDigestsMatchItsChildren) {
  Write("bazel-out/bin/pkg/tree/run.sh", "#!/bin/sh\necho hi\n", /*executable=*/true);
  Write("bazel-out/bin/pkg/tree/lib/nested/deep.txt", "deep");
  Write("bazel-out/bin/pkg/tree/a/same/x.txt", "same");  // two identical folders: one child
  Write("bazel-out/bin/pkg/tree/b/same/x.txt", "same");
  ASSERT_TRUE(MakeDirs(exec_ / "bazel-out/bin/pkg/tree/empty").ok());
  fs::create_symlink("../run.sh", exec_ / "bazel-out/bin/pkg/tree/lib/run");
  auto out = Collect(Outputs({}, {"bazel-out/bin/pkg/tree"}));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->directories.size(), 1u);
  EXPECT_EQ(out->directories[0].path(), "bazel-out/bin/pkg/tree");
  const std::string bytes = BlobData(*out, out->directories[0].tree_digest());
  ASSERT_FALSE(bytes.empty()) << "the Tree blob is not among the uploads";
  EXPECT_EQ(Digest::OfBytes(bytes).ToProto().size_bytes(), out->directories[0].tree_digest().size_bytes());
  reapi::Tree tree;
  ASSERT_TRUE(tree.ParseFromString(bytes));
  ExpectConsistent(tree);

  const reapi::Directory& root = tree.root();
  ASSERT_EQ(root.files_size(), 1);
  EXPECT_EQ(root.files(0).name(), "run.sh");
  EXPECT_TRUE(root.files(0).is_executable());
  ASSERT_EQ(root.directories_size(), 4);
  EXPECT_EQ(root.directories(0).name(), "a");
  EXPECT_EQ(root.directories(1).name(), "b");
  EXPECT_EQ(root.directories(2).name(), "empty");
  EXPECT_EQ(root.directories(3).name(), "lib");
  EXPECT_EQ(root.directories(0).digest().hash(), root.directories(1).digest().hash());
  // a, b (one Directory), a/same (= b/same), empty, lib, lib/nested.
  EXPECT_EQ(tree.children_size(), 5);
  bool link_found = false;
  for (const auto& child : tree.children()) {
    for (const auto& link : child.symlinks()) {
      link_found |= link.name() == "run" && link.target() == "../run.sh";
    }
  }
  EXPECT_TRUE(link_found);
  // The files inside go up with the result, opened beneath the work directory.
  for (const char* content : {"deep", "same", "#!/bin/sh\necho hi\n"}) {
    EXPECT_TRUE(Uploads(*out, Digest::OfBytes(content))) << content;
  }
  for (const TreeBlob& blob : out->uploads) {
    if (blob.file.empty()) continue;
    EXPECT_TRUE(OpenBlobFile(blob).ok()) << blob.file;
  }
}

TEST_F(Rev2OutputsTest, SymlinkedOutputsAndWrongKindsFollowREAPI) {
  ASSERT_TRUE(MakeDirs(exec_ / "real").ok());
  fs::create_directory_symlink("real", exec_ / "dir-link");
  auto linked = Collect(Outputs({}, {"dir-link"}));
  ASSERT_TRUE(linked.ok()) << linked.status();
  ASSERT_EQ(linked->directory_symlinks.size(), 1u);
  EXPECT_EQ(linked->directory_symlinks[0].target(), "real");
  EXPECT_TRUE(linked->directories.empty());

  Write("file.o", "o");
  auto dir_as_file = Collect(Outputs({"real"}, {}));
  EXPECT_EQ(dir_as_file.status().code(), absl::StatusCode::kFailedPrecondition) << dir_as_file.status();
  auto file_as_dir = Collect(Outputs({}, {"file.o"}));
  EXPECT_EQ(file_as_dir.status().code(), absl::StatusCode::kFailedPrecondition) << file_as_dir.status();

  fs::create_symlink("/etc/passwd", exec_ / "real/abs");
  auto absolute = Collect(Outputs({}, {"real"}));
  ASSERT_FALSE(absolute.ok());
  EXPECT_TRUE(absl::StrContains(absolute.status().message(), "symlink to '/etc/passwd'")) << absolute.status();
}

TEST_F(Rev2OutputsTest, ParentsOfOutputsAreMadeBeforeTheRunButNotOutputDirectories) {
  reapi::Command command = Outputs({"bazel-out/bin/a/b.o"}, {"bazel-out/bin/gen/tree", "whole/."});
  ASSERT_TRUE(PrepareOutputParents(exec_fd_.get(), command).ok());
  EXPECT_TRUE(fs::is_directory(exec_ / "bazel-out/bin/a"));
  EXPECT_FALSE(fs::exists(exec_ / "bazel-out/bin/a/b.o"));
  EXPECT_TRUE(fs::is_directory(exec_ / "bazel-out/bin/gen"));
  EXPECT_FALSE(fs::exists(exec_ / "bazel-out/bin/gen/tree"));
  EXPECT_FALSE(fs::exists(exec_ / "whole"));

  // output_paths (v2.1, pipeline steps): nothing is made.
  reapi::Command v21;
  v21.add_output_paths("dist/app");
  v21.add_output_files("ignored/x");
  EXPECT_FALSE(UsesRev20Outputs(v21));
  ASSERT_TRUE(PrepareOutputParents(exec_fd_.get(), v21).ok());
  EXPECT_FALSE(fs::exists(exec_ / "ignored"));
}

TEST_F(Rev2OutputsTest, OutputsAreRelativeToTheWorkingDirectory) {
  Write("pkg/BUILD", "");
  reapi::Command command = Outputs({"gen/out.txt", "gen/up"}, {"gen/dir"}, "pkg");
  ASSERT_TRUE(PrepareOutputParents(exec_fd_.get(), command).ok());
  EXPECT_TRUE(fs::is_directory(exec_ / "pkg/gen"));
  Write("pkg/gen/out.txt", "out");
  Write("top.txt", "top");
  fs::create_symlink("../../top.txt", exec_ / "pkg/gen/up");  // leaves pkg, stays in the input root
  Write("pkg/gen/dir/f", "f");
  fs::create_symlink("../../../top.txt", exec_ / "pkg/gen/dir/top");
  auto out = Collect(command);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->files.size(), 1u);
  EXPECT_EQ(out->files[0].path(), "gen/out.txt");
  ASSERT_EQ(out->symlinks.size(), 1u);
  EXPECT_EQ(out->symlinks[0].target(), "../../top.txt");
  ASSERT_EQ(out->directories.size(), 1u);
  EXPECT_EQ(out->directories[0].path(), "gen/dir");
}

TEST_F(Rev2OutputsTest, EscapingPathsAndWorkingDirectoriesAreRefused) {
  for (const char* path : {"/etc/evil", "../evil", "a/../../evil"}) {
    absl::Status file = PrepareOutputParents(exec_fd_.get(), Outputs({path}, {}));
    EXPECT_EQ(file.code(), absl::StatusCode::kInvalidArgument) << path << ": " << file;
    absl::Status dir = PrepareOutputParents(exec_fd_.get(), Outputs({}, {path}));
    EXPECT_EQ(dir.code(), absl::StatusCode::kInvalidArgument) << path << ": " << dir;
  }
  for (const char* workdir : {"/tmp", "..", "pkg/../.."}) {
    reapi::Command command = Outputs({"out"}, {}, workdir);
    EXPECT_FALSE(WorkingDirectoryOf(command).ok()) << workdir;
    EXPECT_FALSE(PrepareOutputParents(exec_fd_.get(), command).ok()) << workdir;
  }
  absl::Status absent = PrepareOutputParents(exec_fd_.get(), Outputs({"out"}, {}, "no-such-dir"));
  EXPECT_EQ(absent.code(), absl::StatusCode::kFailedPrecondition) << absent;
  // A symlink in the way (to a folder outside the work directory) is never followed.
  ASSERT_TRUE(MakeDirs(dir_.path() / "outside").ok());
  fs::create_directory_symlink(dir_.path() / "outside", exec_ / "bazel-out");
  absl::Status through = PrepareOutputParents(exec_fd_.get(), Outputs({"bazel-out/bin/x.o"}, {}));
  EXPECT_EQ(through.code(), absl::StatusCode::kFailedPrecondition) << through;
  EXPECT_TRUE(absl::StrContains(through.message(), "'bazel-out' is not a directory")) << through;
  EXPECT_FALSE(fs::exists(dir_.path() / "outside/bin"));
  absl::Status workdir_link = PrepareOutputParents(exec_fd_.get(), Outputs({"x"}, {}, "bazel-out"));
  EXPECT_EQ(workdir_link.code(), absl::StatusCode::kFailedPrecondition) << workdir_link;
}

TEST(StepEnvironmentTest, TheCommandsVariablesWinOverTheWorkersDefaults) {
  reapi::Command command;
  for (const auto& [name, value] : {std::pair{"PATH", "/bazel/bin:/usr/bin"}, std::pair{"CC", "gcc"},
                                    std::pair{"CC", "clang"}}) {
    auto* var = command.add_environment_variables();
    var->set_name(name);
    var->set_value(value);
  }
  const EnvironmentVars env = StepEnvironment(command, {{"PATH", "/usr/bin:/bin"}, {"HOME", "/work"}});
  const EnvironmentVars want = {{"PATH", "/bazel/bin:/usr/bin"}, {"HOME", "/work"}, {"CC", "clang"}};
  EXPECT_EQ(env, want);
}

}  // namespace
}  // namespace assay
