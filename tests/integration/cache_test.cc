// Incremental reuse: every task is an REAPI action looked up in the action cache before it runs.
// Each test runs on both stores: the embedded RocksDB (the default) and the CAS and action cache in
// an S3 bucket (--cas-store, Ceph's radosgw on loopback).
#include <fstream>
#include <iostream>
#include <regex>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/farm.h"
#include "tests/integration/s3_test_base.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;
using assay::v1::Job;
using assay::v1::Task;

class CacheTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::vector<std::string> args;
    if (GetParam() == "bucket") {
      auto flags = CasStoreFlags(farm_.dir());
      ASSERT_TRUE(flags.ok()) << flags.status();
      args = *flags;
    }
    farm_.StartCoordinator(args);
    farm_.StartWorker("w1", {}, 2);
    farm_.StartWorker("w2", {}, 2);
  }
  // A private copy of the example, so it can be edited.
  fs::path CopyExample() {
    fs::path copy = farm_.dir() / "karatos-mini";
    fs::copy(SourceDir() + "/examples/karatos-mini", copy, fs::copy_options::recursive);
    fs::remove_all(copy / "out");
    return copy;
  }
  Job RunToEnd(const fs::path& tree, const std::string& pipeline = "assay.yaml") {
    auto id = farm_.Submit(tree, pipeline);
    EXPECT_TRUE(id.ok()) << id.status();
    auto job = farm_.WaitJob(id.value_or("0"));
    EXPECT_TRUE(job.ok()) << job.status();
    return job.value_or(Job());
  }
  Farm farm_;
};

TEST_P(CacheTest, UnchangedResubmissionIsAllCacheHitsAndRunsNothing) {
  fs::path tree = CopyExample();
  Job first = RunToEnd(tree);
  ASSERT_EQ(first.state(), assay::v1::JOB_SUCCEEDED) << first.DebugString();
  for (const Task& t : first.tasks()) EXPECT_FALSE(t.cached()) << t.id();

  const absl::Time start = absl::Now();
  RunResult r = farm_.Cli({"submit", tree.string(), "--wait"});
  const absl::Duration took = absl::Now() - start;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Under a sanitizer the binaries are a Debug build with every memory access checked (an all-cached
  // job took 1.28 s there on a loaded 2-core machine): the bound is wider.
#ifdef ASSAY_SANITIZED
  const absl::Duration bound = absl::Seconds(3);
#else
  const absl::Duration bound = absl::Seconds(1);
#endif
  EXPECT_LT(took, bound) << "an all-cached job must finish end to end in well under a second";
  auto second = farm_.GetJob("2");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->state(), assay::v1::JOB_SUCCEEDED);
  for (const Task& t : second->tasks()) {
    EXPECT_TRUE(t.cached()) << t.id();
    EXPECT_EQ(t.attempt(), 0) << t.id() << " was sent to a worker";
    EXPECT_EQ(t.worker(), "") << t.id();
    EXPECT_EQ(t.result().output_files_size(), FindTask(first, t.id())->result().output_files_size());
  }
  // The logs of the run that produced the result come back with the hit.
  std::string log = farm_.Log("2", "rv32imac/debug/test");
  EXPECT_TRUE(absl::StrContains(log, "cache hit")) << log;
  EXPECT_TRUE(absl::StrContains(log, "KARATOS OK: all tasks done")) << log;
  // The farm counts them: 8 misses for the first job, 8 hits for the second.
  RunResult stats = farm_.Cli({"cache", "stats"});
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_TRUE(absl::StrContains(stats.out, "hits:           8\n")) << stats.out;
  EXPECT_TRUE(absl::StrContains(stats.out, "misses:         8\n")) << stats.out;
  EXPECT_TRUE(absl::StrContains(stats.out, "action results: 8\n")) << stats.out;
  // Workers fetched the inputs of the first job's tasks and uploaded their outputs.
  std::smatch reads, writes;
  ASSERT_TRUE(std::regex_search(stats.out, reads, std::regex(R"(blob reads:\s+(\d+))"))) << stats.out;
  ASSERT_TRUE(std::regex_search(stats.out, writes, std::regex(R"(blob writes:\s+(\d+))"))) << stats.out;
  EXPECT_GT(std::stoi(reads[1]), 0);
  EXPECT_GT(std::stoi(writes[1]), 0);
  // Cached artifacts download like fresh ones.
  RunResult a = farm_.Cli({"artifacts", "2", "rv32imac/release", "--out", (farm_.dir() / "a2").string()});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_TRUE(fs::exists(farm_.dir() / "a2/rv32imac/release/build/out/rv32imac-release/karatos.elf"));
}

TEST_P(CacheTest, ChangingOneTargetsFileRerunsOnlyThatTargetsCells) {
  fs::path tree = CopyExample();
  ASSERT_EQ(RunToEnd(tree).state(), assay::v1::JOB_SUCCEEDED);
  {
    std::ofstream board(tree / "arch/rv32imac/board.c", std::ios::app);
    board << "/* touched */\n";
  }
  Job second = RunToEnd(tree);
  ASSERT_EQ(second.state(), assay::v1::JOB_SUCCEEDED);
  for (const Task& t : second.tasks()) {
    bool rv = absl::StartsWith(t.id(), "rv32imac/");
    EXPECT_EQ(t.cached(), !rv) << t.id();
    EXPECT_EQ(t.attempt(), rv ? 1 : 0) << t.id();
  }
}

TEST_P(CacheTest, FailuresAndOptedOutStepsAreNeverReused) {
  auto tree = farm_.WriteTree("nocache", {{"assay.yaml", R"(
steps:
  - id: flaky
    run: exit 9
  - id: always
    cache: false
    run: echo fresh
  - id: failure-kept
    run: exit 4
    cache_failures: true
)"}});
  Job first = RunToEnd(tree);
  Job second = RunToEnd(tree);
  EXPECT_FALSE(FindTask(second, "flaky")->cached());
  EXPECT_EQ(FindTask(second, "flaky")->attempt(), 1);
  EXPECT_FALSE(FindTask(second, "always")->cached());
  EXPECT_TRUE(FindTask(second, "failure-kept")->cached());
  EXPECT_EQ(FindTask(second, "failure-kept")->exit_code(), 4);
  EXPECT_EQ(FindTask(second, "failure-kept")->state(), assay::v1::TASK_FAILED);
}

// A cell's later step on the same host finds what the earlier step made in the host's cache.
TEST_P(CacheTest, ALaterStepFindsTheOutputsOfAnEarlierOneInTheHostsCache) {
  farm_.StopWorker("w2");
  auto tree = farm_.WriteTree("chain", {{"assay.yaml", R"(
steps:
  - id: make
    run: mkdir -p out && head -c 300000 /dev/urandom > out/image.bin && echo made > out/note.txt
    outputs: [out/]
  - id: use
    needs: [make]
    run: wc -c out/image.bin out/note.txt
)"}});
  Job job = RunToEnd(tree);
  ASSERT_EQ(job.state(), assay::v1::JOB_SUCCEEDED);
  std::string use = farm_.Log(job.id(), "use");
  // assay.yaml came from the coordinator for "make" too; the two outputs never leave this host again.
  EXPECT_TRUE(absl::StrContains(use, "inputs: 3 files")) << use;
  EXPECT_TRUE(absl::StrContains(use, "3 from this host's cache, 0 bytes fetched")) << use;
  EXPECT_TRUE(absl::StrContains(use, "300000 out/image.bin")) << use;
}

TEST_P(CacheTest, AHostFetchesAnInputOnce) {
  farm_.StopWorker("w2");
  std::map<std::string, std::string> files = {{"assay.yaml", R"(
steps:
  - id: first
    run: cat data/*.txt | wc -c
  - id: second
    needs: [first]
    run: cat data/*.txt | wc -c
)"}};
  for (int i = 0; i < 20; ++i) files[absl::StrCat("data/", i, ".txt")] = std::string(1000 + i, 'd');
  auto tree = farm_.WriteTree("inputs", files);
  Job job = RunToEnd(tree);
  ASSERT_EQ(job.state(), assay::v1::JOB_SUCCEEDED);
  std::string first = farm_.Log(job.id(), "first"), second = farm_.Log(job.id(), "second");
  EXPECT_TRUE(absl::StrContains(first, "inputs: 21 files")) << first;
  EXPECT_TRUE(absl::StrContains(second, "21 from this host's cache, 0 bytes fetched")) << second;
}

TEST_P(CacheTest, LargeBlobsPassThroughEveryProcessWithBoundedMemory) {
  constexpr int64_t kSize = 256LL << 20;
  // A large source file (the CLI uploads it, a worker fetches it) and a large output (the worker
  // uploads it, the CLI downloads it).
  auto tree = farm_.WriteTree("big", {{"assay.yaml", R"(
steps:
  - id: make
    inputs: [input.bin]
    run: |
      sha256sum input.bin | cut -d' ' -f1 > input.sha256
      head -c 268435456 /dev/urandom > big.bin
      sha256sum big.bin | cut -d' ' -f1 > big.sha256
    outputs: [big.bin, big.sha256, input.sha256]
    timeout: 5m
)"}});
  {
    std::ofstream big(tree / "input.bin", std::ios::binary);
    std::string block(1 << 20, '\0');
    for (int64_t i = 0; i < kSize / static_cast<int64_t>(block.size()); ++i) {
      block[0] = static_cast<char>(i);
      big.write(block.data(), static_cast<std::streamsize>(block.size()));
    }
  }
  RunResult submit = farm_.Cli({"submit", tree.string(), "--wait"}, absl::Minutes(5));
  ASSERT_EQ(submit.exit_code, 0) << submit.out << submit.err;
  fs::path out = farm_.dir() / "big-out";
  RunResult download = farm_.Cli({"artifacts", "1", "--out", out.string()});
  ASSERT_EQ(download.exit_code, 0) << download.err;
  EXPECT_EQ(fs::file_size(out / "make/big.bin"), static_cast<uintmax_t>(kSize));
  RunResult sum = RunCommand({"/usr/bin/sha256sum", (out / "make/big.bin").string()});
  EXPECT_EQ(sum.out.substr(0, 64), ReadFile(out / "make/big.sha256").value_or("").substr(0, 64));
  RunResult input_sum = RunCommand({"/usr/bin/sha256sum", (tree / "input.bin").string()});
  EXPECT_EQ(input_sum.out.substr(0, 64), ReadFile(out / "make/input.sha256").value_or("").substr(0, 64))
      << "the worker received the uploaded input intact";
  // 256 MiB went through every process; none of them held it in memory. (Not measurable under a
  // sanitizer: its runtime keeps freed memory in quarantine and adds shadow memory.)
#ifdef ASSAY_SANITIZED
  std::cout << "peak memory is checked in the unsanitized build only\n";
  return;
#endif
  // Holding the blob would take at least kSize; the coordinator's fixed costs (RocksDB block cache and
  // memtables, per-thread buffers) reach ~90-140 MiB depending on how many calls run at once.
  const int64_t limit = kSize * 3 / 4;
  std::cout << "peak RSS MiB: CLI upload " << (submit.peak_rss_bytes >> 20) << ", CLI download "
            << (download.peak_rss_bytes >> 20) << ", coordinator " << (PeakMemoryBytes(farm_.coordinator_pid()) >> 20)
            << ", workers " << (PeakMemoryBytes(farm_.worker_pid("w1")) >> 20) << " and "
            << (PeakMemoryBytes(farm_.worker_pid("w2")) >> 20) << "\n";
  EXPECT_LT(submit.peak_rss_bytes, limit) << "CLI upload";
  EXPECT_LT(download.peak_rss_bytes, limit) << "CLI download";
  EXPECT_LT(PeakMemoryBytes(farm_.coordinator_pid()), limit);
  EXPECT_LT(PeakMemoryBytes(farm_.worker_pid("w1")), limit);
  EXPECT_LT(PeakMemoryBytes(farm_.worker_pid("w2")), limit);
}

INSTANTIATE_TEST_SUITE_P(Stores, CacheTest, ::testing::Values("embedded", "bucket"), StoreName);

}  // namespace
}  // namespace assay::testing
