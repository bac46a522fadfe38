// A worker's work directory's disk: no task starts below the reserve, and a failure with the disk
// full is the host's problem, not the step's.
#include "worker/work_disk.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace assay {
namespace {

struct FakeDisk {
  int64_t free = 100 << 20;
  DiskProbe probe() {
    return [this](const std::filesystem::path&) -> absl::StatusOr<DiskFree> { return DiskFree{free, 1000 << 20}; };
  }
};

TEST(WorkDiskTest, NoTaskStartsWhileTheDiskIsBelowTheReserveAndTheReasonSaysSo) {
  FakeDisk disk;
  FakeClock clock;
  WorkDisk work("/work", ParseMinFreeDisk("50MiB").value(), &clock, disk.probe());
  EXPECT_EQ(work.BeforeTask(), "");
  disk.free = 20 << 20;
  clock.Advance(absl::Seconds(1));
  const std::string why = work.BeforeTask();
  EXPECT_TRUE(absl::StrContains(why, "work directory's disk is full")) << why;
  EXPECT_TRUE(absl::StrContains(why, "--min-free-disk 50MiB")) << why;
}

TEST(WorkDiskTest, AFailureWithTheDiskFullIsAHostProblemNamingTheFailure) {
  FakeDisk disk;
  FakeClock clock;
  WorkDisk work("/work", ParseMinFreeDisk("0").value(), &clock, disk.probe());
  disk.free = 4096;  // no time passes: AfterFailure reads the disk now
  const std::string problem = work.AfterFailure("fetching inputs: write big.bin: No space left on device");
  EXPECT_TRUE(absl::StrContains(problem, "work directory's disk is full (/work: 4 KiB free")) << problem;
  EXPECT_TRUE(absl::StrContains(problem, "fetching inputs")) << problem;
}

TEST(WorkDiskTest, AFailureWithRoomOnTheDiskIsTheSteps) {
  FakeDisk disk;
  FakeClock clock;
  WorkDisk work("/work", ParseMinFreeDisk("5%").value(), &clock, disk.probe());
  EXPECT_EQ(work.AfterFailure("the step exited with 1"), "");
}

}  // namespace
}  // namespace assay
