// StepLogs: a step's stdout and stderr stay in memory while small (no file in the task's folder),
// move to their file once a stream passes kMemoryBytes (every byte kept, in order), and either
// way the blob for the upload has the digest of exactly what the step printed.
#include "worker/step_logs.h"

#include <gtest/gtest.h>

#include <string>

#include "common/base/file_util.h"
#include "common/digest/digest.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;

TEST(StepLogsTest, SmallOutputStaysInMemoryAndNoFileIsMade) {
  ScopedTempDir dir("step-logs");
  StepLogs logs(dir.path());
  logs.Append(0, "hello ");
  logs.Append(1, "warning\n");
  logs.Append(0, "world\n");
  auto out = logs.TakeBlob(0);
  auto err = logs.TakeBlob(1);
  ASSERT_TRUE(out.ok() && err.ok());
  EXPECT_EQ(out->data, "hello world\n");
  EXPECT_TRUE(out->file.empty());
  EXPECT_EQ(out->digest, Digest::OfBytes("hello world\n"));
  EXPECT_EQ(err->digest, Digest::OfBytes("warning\n"));
  EXPECT_FALSE(fs::exists(dir.path() / "stdout"));
  EXPECT_FALSE(fs::exists(dir.path() / "stderr"));
}

TEST(StepLogsTest, AStreamPastTheMemoryLimitMovesToItsFileWithEveryByteInOrder) {
  ScopedTempDir dir("step-logs");
  StepLogs logs(dir.path());
  std::string printed;
  for (int i = 0; static_cast<int64_t>(printed.size()) <= 2 * StepLogs::kMemoryBytes; ++i) {
    const std::string line = std::to_string(i) + " a line of the build's output\n";
    logs.Append(0, line);
    printed += line;
  }
  logs.Append(1, "only a little on stderr\n");
  auto out = logs.TakeBlob(0);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->file, dir.path() / "stdout");
  EXPECT_TRUE(out->data.empty());
  EXPECT_EQ(ReadFile(dir.path() / "stdout").value_or(""), printed);
  EXPECT_EQ(out->digest, Digest::OfBytes(printed));
  EXPECT_FALSE(fs::exists(dir.path() / "stderr")) << "each stream moves on its own";
}

TEST(StepLogsTest, AFileThatCannotBeMadeIsAnErrorForThatStreamOnly) {
  ScopedTempDir dir("step-logs");
  StepLogs logs(dir.path() / "missing-folder");
  logs.Append(0, std::string(StepLogs::kMemoryBytes + 1, 'x'));
  logs.Append(1, "fine\n");
  auto out = logs.TakeBlob(0);
  EXPECT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("missing-folder/stdout"), std::string::npos) << out.status();
  auto err = logs.TakeBlob(1);
  ASSERT_TRUE(err.ok());
  EXPECT_EQ(err->data, "fine\n");
}

}  // namespace
}  // namespace assay::testing
