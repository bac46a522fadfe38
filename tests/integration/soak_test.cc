// The soak test: a coordinator (its data on a small file system of the test's own), three workers and a
// submitter run together while a fault loop, at random, kills a worker or the coordinator with SIGKILL
// (and starts it again), fills the coordinator's disk to the last byte and frees it, and every job has a
// step that floods its output far past the farm's output limit. At the end every job the CLI
// acknowledged is finished, each of its tasks final and counted once, and no process grew without
// bound (resident memory sampled through the run; the figures are printed).
//
// Kept short in the suite (about a minute); ASSAY_SOAK_SECONDS runs it longer on demand:
//   ASSAY_SOAK_SECONDS=600 build/ci/tests/soak_test --gtest_also_run_disabled_tests
// ASSAY_SOAK_KEEP=DIR copies a failed run's folder (every life's coordinator log, the workers' logs)
// to DIR/SEED for a post-mortem.
#include <signal.h>
#include <sys/mount.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/integration/farm.h"
#include "tests/integration/tmpfs.h"

namespace assay::testing {
namespace {

// The resident memory no process may pass. Under AddressSanitizer the binaries keep up to 256 MiB of
// freed memory in quarantine (ASan's default quarantine_size_mb) and pad every allocation, so the
// same bounded process measures higher there.
#ifdef ASSAY_SANITIZED_ADDRESS
constexpr int64_t kMemoryBound = int64_t{768} << 20;
#else
constexpr int64_t kMemoryBound = int64_t{512} << 20;
#endif

namespace fs = std::filesystem;
using assay::v1::Job;
using assay::v1::Task;

constexpr int kWorkers = 3;
constexpr int64_t kDiskBytes = 96ll << 20;
constexpr const char* kOutputLimit = "1MiB";

absl::Duration SoakDuration() {
  int seconds = 45;
  if (const char* env = std::getenv("ASSAY_SOAK_SECONDS")) (void)absl::SimpleAtoi(env, &seconds);
  return absl::Seconds(seconds);
}

// Each job a distinct tree (a comment), so jobs are not served from one another's action cache.
std::string Pipeline(int n) {
  return absl::StrCat(R"(name: soak
matrix:
  board: [a, b]
  profile: [debug, release]
steps:
  - id: build
    run: echo "${{ matrix.board }}-${{ matrix.profile }}" > fw.bin && sleep 0.0$((RANDOM % 5))
    outputs: [fw.bin]
  - id: flood
    needs: [build]
    run: head -c 20000000 /dev/zero | tr '\0' a && cat fw.bin
  - id: test
    needs: [build]
    run: cat fw.bin > tested.txt && echo ok >> tested.txt
    outputs: [tested.txt]
# job )", n, "\n");
}

// Fills a file system to its last byte; the bytes go when the object does (or at Free()).
class DiskFiller {
 public:
  explicit DiskFiller(fs::path file) : file_(std::move(file)) {}
  ~DiskFiller() { Free(); }
  int64_t Fill() {
    std::ofstream out(file_, std::ios::binary);
    const std::string chunk(1 << 20, 'x');
    int64_t written = 0;
    while (out.write(chunk.data(), chunk.size())) written += chunk.size();
    out.close();
    std::error_code ec;
    return std::max<int64_t>(written, fs::file_size(file_, ec));
  }
  void Free() {
    std::error_code ec;
    fs::remove(file_, ec);
  }

 private:
  fs::path file_;
};

struct MemoryFigures {
  int64_t first = -1;  // the first sample after the warm-up
  int64_t peak = 0;
  int64_t last = 0;
  void Add(int64_t bytes, bool warm) {
    if (bytes <= 0) return;
    if (warm && first < 0) first = bytes;
    peak = std::max(peak, bytes);
    last = bytes;
  }
};

int64_t ResidentBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    int64_t kb = 0;
    if (line.rfind("VmRSS:", 0) == 0 && absl::SimpleAtoi(absl::StripSuffix(absl::StripAsciiWhitespace(line.substr(6)), "kB"), &kb)) {
      return kb * 1024;
    }
  }
  return -1;
}

std::string Mib(int64_t bytes) { return absl::StrCat(bytes >> 20, " MiB"); }

int Occurrences(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(SoakTest, JobsSurviveKilledProcessesAFullDiskAndFloodedOutputAndNothingGrowsWithoutBound) {
  Farm farm;
  Tmpfs disk(farm.dir() / "data", kDiskBytes);
  ASSERT_TRUE(disk.mounted()) << disk.error();
  const std::vector<std::string> coordinator_args = {"--step-output-limit", kOutputLimit, "--min-free-disk", "8MiB"};
  farm.StartCoordinator(coordinator_args);
  ASSERT_FALSE(::testing::Test::HasFatalFailure()) << "the coordinator did not start";
  for (int i = 1; i <= kWorkers; ++i) farm.StartWorker(absl::StrCat("w", i), {}, 2);
  ASSERT_FALSE(::testing::Test::HasFatalFailure()) << "a worker did not connect";

  const uint64_t seed = std::random_device{}();
  std::mt19937_64 random(seed);
  std::cout << "[ seed     ] " << seed << "\n";
  absl::Cleanup keep_if_failed = [&] {
    const char* keep = std::getenv("ASSAY_SOAK_KEEP");
    if (keep == nullptr || !::testing::Test::HasFailure()) return;
    const fs::path to = fs::path(keep) / std::to_string(seed);
    std::error_code ec;
    fs::create_directories(to, ec);
    fs::copy(farm.dir(), to, fs::copy_options::recursive | fs::copy_options::skip_symlinks, ec);
    std::cout << "[ kept     ] " << to << (ec ? " (incomplete: " + ec.message() + ")" : "") << "\n";
  };

  std::atomic<bool> stop{false};
  std::vector<std::string> accepted;
  int refused = 0;
  std::thread submitter([&] {
    for (int n = 0; !stop.load(); ++n) {
      auto tree = farm.WriteTree(absl::StrCat("job", n), {{"assay.yaml", Pipeline(n)}});
      auto id = farm.Submit(tree);  // refused while the coordinator is down or its disk is full
      if (id.ok()) {
        accepted.push_back(*id);
      } else {
        ++refused;
      }
      const absl::Time next = absl::Now() + absl::Milliseconds(300);
      WaitFor([&] { return stop.load() || absl::Now() >= next; }, absl::Seconds(1));
    }
  });

  DiskFiller filler(farm.dir() / "data" / "filler");
  std::map<std::string, MemoryFigures> memory;
  auto sample = [&](bool warm) {
    memory["coordinator"].Add(ResidentBytes(farm.coordinator_pid()), warm);
    for (int i = 1; i <= kWorkers; ++i) {
      const std::string id = absl::StrCat("w", i);
      memory[id].Add(ResidentBytes(farm.worker_pid(id)), warm);
    }
  };
  std::map<std::string, int> faults;
  const absl::Time start = absl::Now();
  const absl::Time end = start + SoakDuration();
  int crashed = 0;
  int restarted_in_place = 0;  // a write-ahead log that failed on the full disk: reopened in place
  int opened_on_full_disk = 0;  // no room to write the logs' changes to tables at a start: kept in the logs
  int lives = 0;
  auto count_restarts = [&] {  // before the coordinator's log is started anew; the old one is kept
    const std::string log = ReadFile(farm.dir() / "coordinator.log").value_or("");
    restarted_in_place += Occurrences(log, "restarting in place");
    opened_on_full_disk += Occurrences(log, "opened on a full disk");
    std::error_code ec;
    fs::rename(farm.dir() / "coordinator.log", farm.dir() / absl::StrCat("coordinator.", ++lives, ".log"), ec);
  };
  auto restart_if_crashed = [&] {
    // The coordinator must never end by itself, here where the disk fills to its last byte mid-write
    // (RocksDB as Debian builds it keeps its assertions: docs/operations.md, "Disk space"). If it
    // does, it is counted, its last words printed, and the test fails once all jobs are checked.
    if (PidAlive(farm.coordinator_pid())) return;
    ++crashed;
    {
      std::string log = ReadFile(farm.dir() / "coordinator.log").value_or("");
      std::cout << "[ aborted  ] the coordinator's last words:\n" << log.substr(log.size() > 3000 ? log.size() - 3000 : 0) << "\n";
    }
    count_restarts();
    farm.StopCoordinator(SIGKILL);
    farm.StartCoordinator(coordinator_args);
  };
  while (absl::Now() < end) {
    restart_if_crashed();
    sample(absl::Now() - start > absl::Seconds(10));
    const absl::Time until = absl::Now() + absl::Milliseconds(std::uniform_int_distribution<int>(200, 1500)(random));
    WaitFor([&] { return absl::Now() >= until; }, absl::Seconds(2));
    switch (std::uniform_int_distribution<int>(0, 3)(random)) {
      case 0: {  // a worker dies and comes back
        const std::string id = absl::StrCat("w", std::uniform_int_distribution<int>(1, kWorkers)(random));
        farm.StopWorker(id, SIGKILL);
        farm.StartWorker(id, {}, 2);
        ++faults["worker killed"];
        break;
      }
      case 1:  // the coordinator dies and comes back on the same data
        count_restarts();
        farm.StopCoordinator(SIGKILL);
        farm.StartCoordinator(coordinator_args);
        ++faults["coordinator killed"];
        break;
      case 2: {  // the coordinator's disk fills to the last byte for a moment, then is freed
        filler.Fill();
        const absl::Time full_until = absl::Now() + absl::Milliseconds(std::uniform_int_distribution<int>(300, 2000)(random));
        WaitFor([&] { return absl::Now() >= full_until; }, absl::Seconds(3));
        filler.Free();
        ++faults["disk filled"];
        break;
      }
      default:
        ++faults["quiet"];
        break;
    }
  }
  stop = true;
  submitter.join();
  filler.Free();
  restart_if_crashed();
  sample(true);
  count_restarts();

  ASSERT_FALSE(accepted.empty()) << "no job was accepted in " << SoakDuration();
  int succeeded = 0;
  for (const std::string& id : accepted) {
    auto job = farm.WaitJob(id, absl::Seconds(180));
    ASSERT_TRUE(job.ok()) << "job " << id << ": " << job.status();
    ASSERT_TRUE(job->state() == assay::v1::JOB_SUCCEEDED || job->state() == assay::v1::JOB_FAILED)
        << "job " << id << " did not finish: " << assay::v1::JobState_Name(job->state());
    succeeded += job->state() == assay::v1::JOB_SUCCEEDED;
    EXPECT_EQ(job->task_count(), 12) << "job " << id;
    EXPECT_EQ(job->tasks_done(), job->task_count()) << "job " << id << ": a task counted twice or never";
    std::set<std::string> ids;
    for (const Task& t : job->tasks()) {
      EXPECT_TRUE(ids.insert(t.id()).second) << "job " << id << " lists " << t.id() << " twice";
      EXPECT_TRUE(t.state() == assay::v1::TASK_SUCCEEDED || t.state() == assay::v1::TASK_FAILED ||
                  t.state() == assay::v1::TASK_SKIPPED)
          << "job " << id << " " << t.id() << " is not final (" << assay::v1::TaskState_Name(t.state()) << ": " << t.message() << ")";
      // A step's own commands never fail here: a failure can only be the farm's (lost too often).
      if (t.state() == assay::v1::TASK_FAILED) {
        EXPECT_EQ(t.message().find("exit code"), std::string::npos) << "job " << id << " " << t.id() << ": " << t.message();
      }
    }
  }

  std::cout << "[ figures  ] " << absl::FormatDuration(absl::Now() - start) << ": " << accepted.size()
            << " jobs accepted (" << succeeded << " succeeded), " << refused << " submits refused; the coordinator restarted itself in place " << restarted_in_place
            << " times and opened its database on a full disk " << opened_on_full_disk
            << " times and aborted " << crashed << " times; faults:";
  for (const auto& [kind, count] : faults) std::cout << " " << kind << " " << count << ",";
  std::cout << "\n";
  for (const auto& [process, m] : memory) {
    std::cout << "[ memory   ] " << process << ": after warm-up " << Mib(m.first) << ", peak " << Mib(m.peak)
              << ", at the end " << Mib(m.last) << "\n";
  }
  // Bounded growth: the coordinator restarts often, so its figures cover short lives; a worker's
  // resident memory stays within a fixed budget (its cache is bounded; outputs stream).
  for (const auto& [process, m] : memory) {
    EXPECT_LT(m.peak, kMemoryBound) << process << " grew to " << Mib(m.peak);
  }
  EXPECT_GT(succeeded, 0);
  EXPECT_EQ(crashed, 0) << "the coordinator ended by itself (its last words are printed above)";
}

}  // namespace
}  // namespace assay::testing
