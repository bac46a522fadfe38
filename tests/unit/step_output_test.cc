// StepOutput: the first `output_limit` bytes of stdout and stderr together are kept, each piece with
// its offset in its own stream; the chunk that crosses the limit is cut there and reported once.
#include "worker/step_output.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace assay {
namespace {

TEST(StepOutputTest, KeepsTheFirstLimitBytesOfBothStreamsWithTheirOffsetsAndReportsTheLimitOnce) {
  StepOutput output(10);
  StepOutput::Kept a = output.Take(0, "abcd");
  EXPECT_EQ(a.data, "abcd");
  EXPECT_EQ(a.offset, 0);
  StepOutput::Kept e = output.Take(1, "EF");
  EXPECT_EQ(e.data, "EF");
  EXPECT_EQ(e.offset, 0) << "stderr has offsets of its own";
  StepOutput::Kept cut = output.Take(0, "ghijk");
  EXPECT_EQ(cut.data, "ghij") << "cut at the limit, stdout and stderr counted together";
  EXPECT_EQ(cut.offset, 4);
  EXPECT_TRUE(cut.limit_reached);
  StepOutput::Kept after = output.Take(1, "GH");
  EXPECT_TRUE(after.data.empty());
  EXPECT_FALSE(after.limit_reached) << "the limit is reported once";
  EXPECT_TRUE(output.exceeded());
  EXPECT_EQ(output.kept(), 10);
  // The kept output ended mid-line ("...ghij"): the note starts a line of its own.
  const std::string note = output.LimitNote(/*fails=*/false);
  EXPECT_TRUE(absl::StartsWith(note, "\n[assay] ")) << note;
  EXPECT_TRUE(absl::StrContains(note, "limit of 10 bytes (output_limit)")) << note;
  EXPECT_TRUE(absl::EndsWith(note, "the step goes on\n")) << note;
  EXPECT_TRUE(absl::StrContains(output.LimitNote(/*fails=*/true), "stopped and fails (output_limit_fails)"));
}

TEST(StepOutputTest, OutputOfExactlyTheLimitIsWholeAndOnlyTheNextByteIsBeyondIt) {
  StepOutput output(int64_t{4} << 20);
  const std::string line(1 << 20, 'a');
  for (int i = 0; i < 4; ++i) {
    StepOutput::Kept kept = output.Take(0, line);
    EXPECT_EQ(kept.data.size(), line.size());
    EXPECT_FALSE(kept.limit_reached);
  }
  EXPECT_FALSE(output.exceeded());
  StepOutput::Kept beyond = output.Take(0, "\n");
  EXPECT_TRUE(beyond.data.empty());
  EXPECT_TRUE(beyond.limit_reached);
  EXPECT_TRUE(absl::StrContains(output.LimitNote(false), "limit of 4 MiB")) << output.LimitNote(false);
}

TEST(StepOutputTest, WithoutALimitEverythingIsKept) {
  StepOutput output(0);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(output.Take(i % 2, "line\n").data, "line\n");
  EXPECT_FALSE(output.exceeded());
  EXPECT_EQ(output.kept(), 500);
  EXPECT_EQ(output.Take(0, "x").offset, 250);
}

}  // namespace
}  // namespace assay
