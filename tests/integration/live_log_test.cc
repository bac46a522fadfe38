// A step's live output in batches (--live-log-batch-ms), with the real coordinator, workers and CLI
// on loopback: whatever the batching, a finished task's log holds every byte the step printed, in
// order, up to the line it printed right before it exited, also when the live link dropped most of it.
#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {

using assay::v1::LogChunk;

// A task's stdout as StreamLogs serves it once the job has ended.
std::string ServedStdout(Farm& farm, const std::string& job, const std::string& task) {
  assay::v1::StreamLogsRequest request;
  request.set_job_id(job);
  request.set_task_id(task);
  grpc::ClientContext context;
  auto reader = farm.jobs()->StreamLogs(&context, request);
  LogChunk chunk;
  std::string out;
  while (reader->Read(&chunk)) {
    if (chunk.stream() == LogChunk::STDOUT) out += chunk.data();
  }
  EXPECT_TRUE(reader->Finish().ok());
  return out;
}

// What each cell's step prints: a line, lines in pieces (as an emulator's console writes them), a
// line on stderr, then its last line right before it exits.
constexpr char kPipeline[] = R"(matrix:
  n: [1, 2, 3, 4, 5, 6, 7, 8]
steps:
  - id: talk
    cache: false
    run: |
      echo "cell ${{ matrix.n }} first"
      for i in 0 1 2; do printf '[blink] tick '; printf '%s\n' "$i"; done
      echo "cell ${{ matrix.n }} to stderr" >&2
      printf 'cell ${{ matrix.n }} last\n'
)";

std::string Expected(int n) {
  return absl::StrCat("cell ", n, " first\n[blink] tick 0\n[blink] tick 1\n[blink] tick 2\ncell ", n, " last\n");
}

void EveryLineOfEveryCellIsInItsLog(int batch_ms, int rounds) {
  Farm farm;
  farm.StartCoordinator();
  const std::vector<std::string> batching = {"--live-log-batch-ms", std::to_string(batch_ms)};
  farm.StartWorker("w1", {}, 2, batching);
  farm.StartWorker("w2", {}, 2, batching);
  const auto tree = farm.WriteTree("talk", {{"assay.yaml", kPipeline}});
  for (int round = 0; round < rounds; ++round) {
    RunResult r = farm.Cli({"submit", tree.string(), "--wait"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const std::string job = std::to_string(round + 1);
    for (int n = 1; n <= 8; ++n) {
      const std::string task = absl::StrCat(n, "/talk");
      EXPECT_EQ(ServedStdout(farm, job, task), Expected(n)) << "job " << job << " " << task;
    }
  }
}

TEST(LiveLogTest, EveryByteAStepPrintedIsInItsFinishedLogInOrderWithOutputInBatches) {
  EveryLineOfEveryCellIsInItsLog(250, 3);
}

// A link too slow for the output (a tiny live queue): most chunks are dropped, the rest held and
// joined; the finished log is the step's stdout byte for byte all the same.
TEST(LiveLogTest, AFloodTheLiveLinkCannotCarryIsWholeInTheFinishedLogWithOutputInBatches) {
  Farm farm;
  farm.StartCoordinator();
  farm.StartWorker("w1", {}, 2, {"--live-log-batch-ms", "250", "--live-log-queue-bytes", "100000"});
  const auto tree = farm.WriteTree("flood", {{"assay.yaml", R"(matrix:
  n: [1, 2, 3, 4]
steps:
  - id: flood
    cache: false
    run: for i in $(seq 1 20); do seq 1 20000; printf x; done; echo last
)"}});
  std::string want;
  for (int i = 0; i < 20; ++i) {
    for (int k = 1; k <= 20000; ++k) absl::StrAppend(&want, k, "\n");
    want += "x";
  }
  want += "last\n";
  RunResult r = farm.Cli({"submit", tree.string(), "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (int n = 1; n <= 4; ++n) {
    const std::string out = ServedStdout(farm, "1", absl::StrCat(n, "/flood"));
    EXPECT_EQ(out.size(), want.size()) << "cell " << n;
    EXPECT_TRUE(out == want) << "cell " << n;
  }
}

TEST(LiveLogTest, EveryByteAStepPrintedIsInItsFinishedLogInOrderWithEveryChunkSentAtOnce) {
  EveryLineOfEveryCellIsInItsLog(0, 2);
}

}  // namespace
}  // namespace assay::testing
