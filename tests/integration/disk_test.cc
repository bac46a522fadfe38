// Disk space as a resource, with the real binaries: a coordinator whose data folder is on a small
// file system (a tmpfs the test mounts) refuses an upload that does not fit, goes on serving reads
// and watches, gives the partial upload's space back and takes writes again once space is freed,
// without a restart; eviction frees space when the disk is low; a worker whose work directory's disk
// is full hands its task to another worker. The database's own use of a small disk is
// database_disk_test.cc's. Needs root (mount), as CI has.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/digest/digest.h"
#include "common/remote/cas_client.h"
#include "tests/integration/farm.h"
#include "tests/integration/tmpfs.h"

namespace assay::testing {
namespace {

namespace fs = std::filesystem;
using assay::v1::Job;

constexpr int64_t kMiB = 1 << 20;

// One try per call: a refusal is what the test looks at, not what a retry makes of it.
RetryPolicy Once() {
  RetryPolicy policy;
  policy.max_attempts = 1;
  return policy;
}

class DiskTest : public ::testing::Test {
 protected:
  // Mounts a tmpfs of `mib` MiB at `dir` (inside the farm's folder); the test fails where it cannot.
  void Mount(const fs::path& dir, int64_t mib) {
    tmpfs_.push_back(std::make_unique<Tmpfs>(dir, mib * kMiB));
    ASSERT_TRUE(tmpfs_.back()->mounted()) << tmpfs_.back()->error();
  }
  void TearDown() override {
    // The processes go before their file systems.
    for (const char* w : {"w1", "w2"}) {
      if (farm_.worker_pid(w) > 0) farm_.StopWorker(w);
    }
    farm_.StopCoordinator(SIGTERM);
    for (auto& t : tmpfs_) t->Unmount();
  }
  // Each file beneath `dir`: its size and the space it holds on the disk.
  static std::string Listing(const fs::path& dir) {
    std::string out;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      struct stat st {};
      if (e.is_regular_file() && ::stat(e.path().c_str(), &st) == 0) {
        absl::StrAppend(&out, fs::relative(e.path(), dir).string(), " ", st.st_size, " (", st.st_blocks * 512, " on disk)\n");
      }
    }
    return out;
  }
  // Space that files beneath `dir` hold beyond their size: what RocksDB reserves ahead of an open
  // write-ahead log with fallocate (about 1.1 write buffers), given back when the log is closed.
  static int64_t ReservedAhead(const fs::path& dir) {
    int64_t total = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      struct stat st {};
      if (e.is_regular_file() && ::stat(e.path().c_str(), &st) == 0) {
        total += std::max<int64_t>(0, static_cast<int64_t>(st.st_blocks) * 512 - static_cast<int64_t>(st.st_size));
      }
    }
    return total;
  }
  // Files beneath `dir` that a process still holds open after they were deleted (they keep their
  // space), with the process's pid.
  static std::string DeletedOpenFiles(const fs::path& dir) {
    std::string out;
    std::error_code ec;
    for (const auto& process : fs::directory_iterator("/proc", ec)) {
      for (const auto& e : fs::directory_iterator(process.path() / "fd", ec)) {
        std::string target = fs::read_symlink(e.path(), ec).string();
        if (absl::StartsWith(target, dir.string()) && absl::StrContains(target, "(deleted)")) {
          out += absl::StrCat(process.path().filename().string(), ": ", target, "\n");
        }
      }
      for (absl::string_view line : absl::StrSplit(ReadFile(process.path() / "maps").value_or(""), '\n')) {
        if (absl::StrContains(line, dir.string()) && absl::StrContains(line, "(deleted)")) {
          out += absl::StrCat(process.path().filename().string(), " maps: ", line, "\n");
        }
      }
    }
    return out;
  }
  std::string CoordinatorLog() { return ReadFile(farm_.dir() / "coordinator.log").value_or(""); }

  Farm farm_;
  std::vector<std::unique_ptr<Tmpfs>> tmpfs_;
};

TEST_F(DiskTest, ACoordinatorOnASmallDiskRefusesTheUploadAsTheFarmsFailureAndKeepsServingAndWriting) {
  const fs::path data = farm_.dir() / "data";
  ASSERT_NO_FATAL_FAILURE(Mount(data, 48));
  farm_.StartCoordinator({"--min-free-disk", "4MiB"});
  farm_.StartWorker("w1");
  const pid_t coordinator = farm_.coordinator_pid();
  auto small = farm_.WriteTree("small", {{"assay.yaml", "steps:\n  - id: hello\n    run: echo hello-from-before\n"}});
  auto first = farm_.Submit(small);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(farm_.WaitJob(*first)->state(), assay::v1::JOB_SUCCEEDED);
  // Something else takes most of the disk: about 20 MiB stay free.
  const int64_t ballast = FreeBytes(data) - 20 * kMiB;
  ASSERT_GT(ballast, 0);
  WriteBallast(data / "ballast", ballast);

  // 72 MiB do not fit: refused before the upload's first chunk is stored, as the farm's failure
  // (exit 5, not 2 "bad input"), naming the store, the free space and the flag.
  auto big = farm_.WriteTree("big", {{"assay.yaml", "steps:\n  - id: big\n    run: true\n"},
                                     {"big.bin", RandomBytes(72 * kMiB)}});
  RunResult refused = farm_.Cli({"submit", big.string(), "--retry-timeout", "1"});
  EXPECT_EQ(refused.exit_code, 5) << refused.err << "\n" << CoordinatorLog();
  for (const char* part : {"coordinator CAS", "free on its disk", "--min-free-disk 4MiB"}) {
    EXPECT_TRUE(absl::StrContains(refused.err, part)) << part << " not in: " << refused.err;
  }
  EXPECT_GE(FreeBytes(data), 16 * kMiB) << "nothing of the refused upload was kept";

  // Reads and watches go on: the job, its log, a watch to its end, its output blobs.
  auto job = farm_.GetJob(*first);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), assay::v1::JOB_SUCCEEDED);
  EXPECT_TRUE(absl::StrContains(farm_.Log(*first, "hello"), "hello-from-before"));
  RunResult watched = farm_.Cli({"wait", *first});
  EXPECT_EQ(watched.exit_code, 0) << watched.err;
  RunResult artifacts = farm_.Cli({"artifacts", *first, "--out", (farm_.dir() / "a1").string()});
  EXPECT_EQ(artifacts.exit_code, 0) << artifacts.err;

  // Writes that fit go on at once (the refusal stopped nothing): a 53-byte upload, a whole job.
  CasClient cas(farm_.channel(), "", Once());
  const std::string tiny(53, 't');
  EXPECT_TRUE(cas.UploadBytes(Digest::OfBytes(tiny), tiny).ok()) << CoordinatorLog();
  auto again = farm_.Submit(farm_.WriteTree("again", {{"assay.yaml", "steps:\n  - id: again\n    run: echo after\n"}}));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(farm_.WaitJob(*again)->state(), assay::v1::JOB_SUCCEEDED);
  EXPECT_EQ(farm_.coordinator_pid(), coordinator);
  EXPECT_EQ(::kill(coordinator, 0), 0) << "the coordinator was not restarted and still runs";
}

// The real ENOSPC path (no reserve): RocksDB stops; once space is freed the maintenance thread resumes
// it, or, when the write-ahead log was the file that failed (which RocksDB 7.8 cannot resume in
// place), the coordinator reopens its database by restarting in place: same process, same port. The
// refused upload's chunks are dropped (at once, or when the database is reopened) and their ranges
// compacted, so their files go; a file a failed flush left behind is found by RocksDB's scan for
// untracked files (every 10 s).
TEST_F(DiskTest, ACoordinatorWithAFullDiskRefusesTheUploadKeepsServingAndTakesWritesAgainByItself) {
  const fs::path data = farm_.dir() / "data";
  ASSERT_NO_FATAL_FAILURE(Mount(data, 48));
  farm_.StartCoordinator({"--min-free-disk", "0"});  // no reserve: the disk really fills up
  farm_.StartWorker("w1");
  const pid_t coordinator = farm_.coordinator_pid();
  auto small = farm_.WriteTree("small", {{"assay.yaml", "steps:\n  - id: hello\n    run: echo hello-from-before\n"}});
  auto first = farm_.Submit(small);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(farm_.WaitJob(*first)->state(), assay::v1::JOB_SUCCEEDED);

  // Something else takes most of the disk: about 20 MiB stay free.
  const int64_t ballast = FreeBytes(data) - 20 * kMiB;
  ASSERT_GT(ballast, 0);
  WriteBallast(data / "ballast", ballast);
  const int64_t free_before = FreeBytes(data);

  // 72 MiB do not fit: refused as the farm's failure (exit 5), naming the full disk.
  auto big = farm_.WriteTree("big", {{"assay.yaml", "steps:\n  - id: big\n    run: true\n"},
                                     {"big.bin", RandomBytes(72 * kMiB)}});
  RunResult refused = farm_.Cli({"submit", big.string(), "--retry-timeout", "1"});
  EXPECT_EQ(refused.exit_code, 5) << refused.err << "\n" << CoordinatorLog();
  EXPECT_TRUE(absl::StrContains(refused.err, "disk is full")) << refused.err;

  // Reads and watches go on: the job, its log, a watch to its end, its output blobs.
  auto job = farm_.GetJob(*first);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), assay::v1::JOB_SUCCEEDED);
  EXPECT_TRUE(absl::StrContains(farm_.Log(*first, "hello"), "hello-from-before"));
  RunResult watched = farm_.Cli({"wait", *first});
  EXPECT_EQ(watched.exit_code, 0) << watched.err;
  RunResult artifacts = farm_.Cli({"artifacts", *first, "--out", (farm_.dir() / "a1").string()});
  EXPECT_EQ(artifacts.exit_code, 0) << artifacts.err;

  // Space comes back: a 53-byte upload is taken again, then a whole job, with nobody restarting anything.
  fs::remove(data / "ballast");
  CasClient cas(farm_.channel(), "", Once());
  const std::string tiny(53, 't');
  absl::Status last;
  EXPECT_TRUE(WaitFor([&] { return (last = cas.UploadBytes(Digest::OfBytes(tiny), tiny)).ok(); }, absl::Seconds(20)))
      << last << "\n" << CoordinatorLog();
  auto again = farm_.Submit(farm_.WriteTree("again", {{"assay.yaml", "steps:\n  - id: again\n    run: echo after\n"}}));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(farm_.WaitJob(*again)->state(), assay::v1::JOB_SUCCEEDED);
  // The refused upload's space is given back: what was free before it, and the ballast (but for the
  // space reserved ahead of the open write-ahead log, which is not the upload's).
  int64_t free_now = 0, reserved = 0;
  EXPECT_TRUE(WaitFor([&] { return (free_now = FreeBytes(data)) + (reserved = ReservedAhead(data)) >= free_before + ballast - 6 * kMiB; },
                      absl::Seconds(20)))
      << "free " << free_now << " and " << reserved << " reserved ahead, of an expected " << free_before + ballast << "\n"
      << Listing(data) << "deleted, still open:\n" << DeletedOpenFiles(data);
  EXPECT_EQ(farm_.coordinator_pid(), coordinator);
  EXPECT_EQ(::kill(coordinator, 0), 0) << "the coordinator was not restarted and still runs";
}

TEST_F(DiskTest, AnUploadThatWouldCrossTheReserveIsRefusedWithResourceExhaustedNamingTheFlag) {
  const fs::path data = farm_.dir() / "data";
  ASSERT_NO_FATAL_FAILURE(Mount(data, 48));
  farm_.StartCoordinator({"--min-free-disk", "16MiB"});
  CasClient cas(farm_.channel(), "", Once());
  const std::string blob = RandomBytes(40 * kMiB);
  absl::Status refused = cas.UploadBytes(Digest::OfBytes(blob), blob);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "coordinator CAS")) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "--min-free-disk 16MiB")) << refused;
  const std::string small = RandomBytes(kMiB);
  EXPECT_TRUE(cas.UploadBytes(Digest::OfBytes(small), small).ok()) << "what fits is still taken";
}

TEST_F(DiskTest, EvictionFreesSpaceWhenTheDiskIsLowWithoutAByteBudget) {
  const fs::path data = farm_.dir() / "data";
  ASSERT_NO_FATAL_FAILURE(Mount(data, 48));
  farm_.StartCoordinator({"--min-free-disk", "8MiB"});  // eviction below 16 MiB free
  const int64_t ballast = FreeBytes(data) - 24 * kMiB;
  ASSERT_GT(ballast, 0);
  WriteBallast(data / "ballast", ballast);
  CasClient cas(farm_.channel(), "", Once());
  std::vector<Digest> digests;
  for (int i = 0; i < 4; ++i) {
    const std::string blob = RandomBytes(3 * kMiB);
    digests.push_back(Digest::OfBytes(blob));
    // An upload may be refused (RESOURCE_EXHAUSTED, nothing acknowledged) while the evicted blobs'
    // space is still being given back (on a busy machine RocksDB's own flush can find the disk full
    // first); it must be taken once eviction has made room.
    absl::Status last;
    ASSERT_TRUE(WaitFor([&] { return (last = cas.UploadBytes(digests.back(), blob)).ok(); }, absl::Seconds(20)))
        << i << ": " << last << "\n" << CoordinatorLog();
  }
  auto evicted_oldest = [&] {
    auto missing = cas.FindMissing({digests.front()});
    return missing.ok() && missing->size() == 1;
  };
  EXPECT_TRUE(WaitFor([&] { return evicted_oldest() && FreeBytes(data) >= 16 * kMiB; }, absl::Seconds(20)))
      << "free " << FreeBytes(data) << "\n" << CoordinatorLog();
  EXPECT_TRUE(cas.FindMissing({digests.back()})->empty())
      << "the newest blob stays; free " << FreeBytes(data) << "\n" << Listing(data) << CoordinatorLog();
  // The pass says so once it has given the space back, which the free space can show a moment before.
  EXPECT_TRUE(WaitFor([&] { return absl::StrContains(CoordinatorLog(), "disk space was low"); }, absl::Seconds(10)))
      << CoordinatorLog();
  // A reserve below what RocksDB needs to flush is allowed (this test needs one) but said at start.
  EXPECT_TRUE(absl::StrContains(CoordinatorLog(), "--min-free-disk 8MiB keeps 8 MiB free, less than the 32 MiB"))
      << CoordinatorLog();
}

TEST_F(DiskTest, AWorkerWhoseWorkDiskIsFullHandsTheTaskToAnotherWorkerAndSaysWhy) {
  farm_.StartCoordinator();
  ASSERT_NO_FATAL_FAILURE(Mount(farm_.dir() / "work-w1", 1));  // smaller than the task's inputs
  farm_.StartWorker("w1", {}, 1, {"--cache-dir", (farm_.dir() / "cache-w1").string()});
  auto tree = farm_.WriteTree("inputs", {{"assay.yaml", "steps:\n  - id: count\n    retry: 3\n    run: wc -c < big.bin\n"},
                                         {"big.bin", RandomBytes(3 * kMiB)}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(farm_.Log(*id, "count"), "could not run the task"); },
                      absl::Seconds(30)))
      << farm_.Log(*id, "count");
  farm_.StopWorker("w1");
  farm_.StartWorker("w2");
  auto job = farm_.WaitJob(*id);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), assay::v1::JOB_SUCCEEDED) << farm_.Log(*id, "count");
  EXPECT_EQ(FindTask(*job, "count")->worker(), "w2");
  const std::string log = farm_.Log(*id, "count");
  EXPECT_TRUE(absl::StrContains(log, "worker w1 could not run the task: its work directory's disk is full")) << log;
  EXPECT_TRUE(absl::StrContains(log, "3145728")) << "w2 ran the step: " << log;
}

}  // namespace
}  // namespace assay::testing
