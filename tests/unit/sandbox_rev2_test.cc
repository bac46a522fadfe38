// A Bazel-style (REv2.0) Command through the worker's own pieces, in the real bubblewrap sandbox:
// output parents made beforehand, the Command's PATH and working directory in force, then its
// outputs collected and uploaded (OutputUploader) into a real coordinator's CAS on loopback, the
// ActionResult filled the v2.0 way with a Tree Bazel can rebuild.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <filesystem>

#include <grpcpp/create_channel.h>

#include "absl/strings/match.h"
#include "common/base/file_util.h"
#include "common/tree/safe_fs.h"
#include "coordinator/server.h"
#include "worker/executor.h"
#include "worker/input_fetcher.h"
#include "worker/output_uploader.h"
#include "worker/rev2_outputs.h"
#include "worker/step_settings.h"

namespace assay {
namespace {
namespace fs = std::filesystem;

constexpr const char* kScript = R"sh(set -e
test "$PATH" = /usr/bin:/bin
test "$(env | grep -c '^PATH=')" = 1
echo "$GREETING $(cat src.txt)" > bazel-out/bin/gen.txt
printf '#!/bin/sh\n' > bazel-out/bin/tool
chmod +x bazel-out/bin/tool
ln -s gen.txt bazel-out/bin/link
mkdir -p bazel-out/bin/tree/sub
head -c 200000 /dev/zero > bazel-out/bin/tree/sub/big.bin
ln -s sub/big.bin bazel-out/bin/tree/alias
pwd
)sh";

reapi::Command BazelStyleCommand() {
  reapi::Command command;
  for (const char* arg : {"/bin/sh", "-c", kScript}) command.add_arguments(arg);
  for (const auto& [name, value] : {std::pair{"GREETING", "hello"}, std::pair{"PATH", "/usr/bin:/bin"}}) {
    auto* var = command.add_environment_variables();
    var->set_name(name);
    var->set_value(value);
  }
  for (const char* file : {"bazel-out/bin/gen.txt", "bazel-out/bin/link", "bazel-out/bin/missing",
                           "bazel-out/bin/tool"}) {
    command.add_output_files(file);
  }
  command.add_output_directories("bazel-out/bin/tree");
  command.set_working_directory("pkg");
  return command;
}

TEST(SandboxRev2Test, ABazelCommandRunsInItsWorkingDirectoryAndItsOutputsComeBackTheV20Way) {
  auto sandbox = SandboxExecutor::Create();
  // scripts/install-deps.sh installs bubblewrap: a host without a working sandbox is a failure here.
  ASSERT_TRUE(sandbox.ok()) << "no sandbox on this host: " << sandbox.status();
  ScopedTempDir dir("sandbox-rev2-test");
  const fs::path task_dir = dir.path() / "task";
  const fs::path exec_dir = task_dir / "work";
  ASSERT_TRUE(MakeDirs(exec_dir / "pkg").ok());
  ASSERT_TRUE(WriteFile(exec_dir / "pkg/src.txt", "world").ok());
  const reapi::Command command = BazelStyleCommand();

  auto exec_fd = OpenDirectory(exec_dir);
  ASSERT_TRUE(exec_fd.ok());
  ASSERT_TRUE(PrepareOutputParents(exec_fd->get(), command).ok());
  ExecRequest request;
  request.argv.assign(command.arguments().begin(), command.arguments().end());
  request.env = StepEnvironment(command, {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", exec_dir.string()}});
  request.workdir = exec_dir;
  request.cwd = WorkingDirectoryOf(command).value();
  request.timeout = absl::Seconds(60);
  std::string said;
  CancelToken never;
  auto run = (*sandbox)->Run(request, [&](OutputStream, absl::string_view data) { said.append(data.data(), data.size()); }, never);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->exit_code, 0) << said;
  EXPECT_TRUE(absl::StrContains(said, (exec_dir / "pkg").string())) << said;
  StepLogs logs(task_dir);
  logs.Append(0, said);

  CoordinatorServer coordinator;
  CoordinatorServer::Options options;
  options.listen = "127.0.0.1:0";
  options.data_dir = (dir.path() / "coordinator").string();
  ASSERT_TRUE(coordinator.Start(options).ok());
  CasClient cas(grpc::CreateChannel(absl::StrCat("127.0.0.1:", coordinator.port()), grpc::InsecureChannelCredentials()),
                "");
  InputFetcher local(&cas, nullptr, TreeLimits{});
  OutputUploader uploader(&cas, &local);
  assay::v1::TaskResult out;
  std::string notes;
  ASSERT_TRUE(uploader.Upload(command, exec_dir, logs, &out, [&](absl::string_view l) { notes.append(l.data(), l.size()); }).ok());
  EXPECT_TRUE(absl::StrContains(notes, "1 declared output(s) not produced: 'bazel-out/bin/missing'")) << notes;

  const reapi::ActionResult& result = out.result();
  ASSERT_EQ(result.output_files_size(), 2);
  EXPECT_EQ(result.output_files(0).path(), "bazel-out/bin/gen.txt");
  EXPECT_EQ(Digest::FromProto(result.output_files(0).digest()).value(), Digest::OfBytes("hello world\n"));
  EXPECT_EQ(result.output_files(1).path(), "bazel-out/bin/tool");
  EXPECT_TRUE(result.output_files(1).is_executable());
  ASSERT_EQ(result.output_file_symlinks_size(), 1);
  EXPECT_EQ(result.output_file_symlinks(0).target(), "gen.txt");
  EXPECT_EQ(result.output_symlinks_size(), 0);  // v2.1's field: not for an REv2.0 command
  ASSERT_EQ(result.output_directories_size(), 1);
  EXPECT_EQ(result.output_directories(0).path(), "bazel-out/bin/tree");

  // The Tree travels inline (small); the 200 kB file went to the CAS.
  reapi::Tree tree;
  for (const auto& blob : out.inline_blobs()) {
    if (blob.digest().hash() == result.output_directories(0).tree_digest().hash()) {
      ASSERT_TRUE(tree.ParseFromString(blob.data()));
    }
  }
  ASSERT_EQ(tree.root().directories_size(), 1);
  ASSERT_EQ(tree.root().symlinks_size(), 1);
  EXPECT_EQ(tree.root().symlinks(0).target(), "sub/big.bin");
  ASSERT_EQ(tree.children_size(), 1);
  EXPECT_EQ(tree.root().directories(0).digest().hash(),
            Digest::OfBytes(tree.children(0).SerializeAsString()).ToProto().hash());
  ASSERT_EQ(tree.children(0).files_size(), 1);
  const Digest big = Digest::FromProto(tree.children(0).files(0).digest()).value();
  EXPECT_EQ(big, Digest::OfBytes(std::string(200000, '\0')));
  auto missing = cas.FindMissing({big});
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_TRUE(missing->empty());
  coordinator.Shutdown();
}

}  // namespace
}  // namespace assay
