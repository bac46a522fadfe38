// Output limits and complete logs (issue 22), with the real coordinator, worker and CLI on loopback:
// a flood of output is cut at the step's output_limit with one note and stores at most the limit;
// output_limit_fails stops a step; a pipeline asking more than the coordinator allows is refused at
// submit; a finished step's log is its stdout byte for byte though the live link dropped it all; a
// finished job's logs go after --log-retention, and the CLI says why.
#include <algorithm>

#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {

using assay::v1::LogChunk;
using assay::v1::Task;

// A task's log as StreamLogs serves it: every chunk's text, and each stream's bytes on their own.
struct TaskLog {
  std::string text;
  std::string out;
  std::string err;
};

TaskLog ReadTaskLog(Farm& farm, const std::string& job, const std::string& task) {
  assay::v1::StreamLogsRequest request;
  request.set_job_id(job);
  request.set_task_id(task);
  grpc::ClientContext context;
  auto reader = farm.jobs()->StreamLogs(&context, request);
  LogChunk chunk;
  TaskLog log;
  while (reader->Read(&chunk)) {
    log.text += chunk.data();
    if (chunk.stream() == LogChunk::STDOUT) log.out += chunk.data();
    if (chunk.stream() == LogChunk::STDERR) log.err += chunk.data();
  }
  EXPECT_TRUE(reader->Finish().ok());
  return log;
}

// The end of a long log, for messages.
std::string Tail(const std::string& text, size_t n = 400) { return text.size() > n ? text.substr(text.size() - n) : text; }

int Count(const std::string& text, const std::string& part) {
  int n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

TEST(OutputLimitTest, AFloodOfOutputIsCutAtTheLimitWithOneNoteAndStoresAtMostTheLimit) {
  Farm farm;
  farm.StartCoordinator();
  farm.StartWorker("w1");
  const auto tree = farm.WriteTree("flood", {{"assay.yaml", R"(steps:
  - id: flood
    run: head -c 300000000 /dev/zero | tr '\0' a
    output_limit: 4MiB
  - id: endless
    run: yes
    output_limit: 1MiB
    output_limit_fails: true
    timeout: 120s
)"}});
  auto id = farm.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  auto job = farm.WaitJob(*id);
  ASSERT_TRUE(job.ok()) << job.status();

  // 300 MB printed: the step went on to its end and succeeded; 4 MiB of it kept, in the CAS too.
  const Task* flood = FindTask(*job, "flood");
  ASSERT_NE(flood, nullptr);
  EXPECT_EQ(flood->state(), assay::v1::TASK_SUCCEEDED) << flood->message();
  EXPECT_EQ(flood->result().stdout_digest().size_bytes(), 4 << 20);
  EXPECT_EQ(flood->result().stderr_digest().size_bytes(), 0);
  TaskLog log = ReadTaskLog(farm, *id, "flood");
  EXPECT_EQ(log.out, std::string(4 << 20, 'a'));
  EXPECT_EQ(Count(log.text, "went beyond its limit"), 1) << Tail(log.text);
  EXPECT_TRUE(absl::StrContains(
      log.text, "\n[assay] the step's output went beyond its limit of 4 MiB (output_limit): the rest of it is not "
                "kept; the step goes on\n"))
      << Tail(log.text);

  // `yes` never ends by itself: output_limit_fails stopped it at its first byte beyond 1 MiB.
  const Task* endless = FindTask(*job, "endless");
  ASSERT_NE(endless, nullptr);
  EXPECT_EQ(endless->state(), assay::v1::TASK_FAILED);
  EXPECT_TRUE(absl::StrContains(endless->message(), "its output went beyond output_limit (1 MiB)")) << endless->message();
  EXPECT_FALSE(endless->timed_out());
  EXPECT_EQ(endless->result().stdout_digest().size_bytes(), 1 << 20);
  TaskLog stopped = ReadTaskLog(farm, *id, "endless");
  EXPECT_EQ(Count(stopped.text, "the step was stopped and fails (output_limit_fails)"), 1) << Tail(stopped.text);
}

TEST(OutputLimitTest, TheCoordinatorsDefaultAppliesAndAPipelineAskingBeyondItsMaximumIsRefusedAtSubmit) {
  Farm farm;
  farm.StartCoordinator({"--step-output-limit", "1MiB", "--max-step-output-limit", "8MiB"});
  farm.StartWorker("w1");
  const auto greedy = farm.WriteTree("greedy", {{"assay.yaml", "steps:\n  - id: big\n    run: 'true'\n"
                                                               "    output_limit: 16MiB\n"}});
  auto refused = farm.Submit(greedy);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.status().message(),
                                "assay.yaml:4:19: step 'big'.output_limit 16MiB is more than this coordinator allows "
                                "(8 MiB, --max-step-output-limit)"))
      << refused.status();
  EXPECT_FALSE(farm.GetJob("1").ok()) << "a refused pipeline creates no job";

  const auto plain = farm.WriteTree("plain", {{"assay.yaml", "steps:\n  - id: chatty\n    run: head -c 3000000 /dev/zero\n"}});
  auto id = farm.Submit(plain);
  ASSERT_TRUE(id.ok()) << id.status();
  auto job = farm.WaitJob(*id);
  ASSERT_TRUE(job.ok()) << job.status();
  const Task* chatty = FindTask(*job, "chatty");
  ASSERT_NE(chatty, nullptr);
  EXPECT_EQ(chatty->state(), assay::v1::TASK_SUCCEEDED) << chatty->message();
  EXPECT_EQ(chatty->result().stdout_digest().size_bytes(), 1 << 20) << "the coordinator's --step-output-limit";
}

TEST(OutputLimitTest, AFinishedStepsLogIsItsStdoutByteForByteThoughTheLiveLinkDroppedIt) {
  Farm farm;
  farm.StartCoordinator();
  // A live queue of one byte: the link drops every chunk of the step's output (never the worker's lines).
  farm.StartWorker("w1", {}, 1, {"--live-log-queue-bytes", "1"});
  const auto tree = farm.WriteTree("numbers", {{"assay.yaml", R"(steps:
  - id: count
    run: seq 1 300000; echo 'half a line' >&2; printf 'no newline at the end'
)"}});
  auto id = farm.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  auto job = farm.WaitJob(*id);
  ASSERT_TRUE(job.ok()) << job.status();
  const Task* count = FindTask(*job, "count");
  ASSERT_NE(count, nullptr);
  ASSERT_EQ(count->state(), assay::v1::TASK_SUCCEEDED) << count->message();
  std::string expected;
  for (int i = 1; i <= 300000; ++i) absl::StrAppend(&expected, i, "\n");
  expected += "no newline at the end";

  // The live link did drop the output (the worker says so)...
  const std::string worker_log = ReadFile(farm.dir() / "worker-w1.log").value_or("");
  EXPECT_TRUE(absl::StrContains(worker_log, "bytes of live output dropped")) << worker_log;
  // ...and the finished log is whole all the same: no note, stdout byte for byte, stderr too.
  TaskLog log = ReadTaskLog(farm, *id, "count");
  EXPECT_EQ(static_cast<int64_t>(log.out.size()), count->result().stdout_digest().size_bytes());
  EXPECT_TRUE(log.out == expected) << "stdout differs: " << log.out.size() << " bytes against " << expected.size();
  EXPECT_EQ(log.err, "half a line\n");
  const std::string head = log.text.substr(0, std::min<size_t>(300, log.text.size()));
  EXPECT_FALSE(absl::StrContains(log.text, "were dropped")) << head;
  EXPECT_TRUE(absl::StartsWith(log.text, "[assay] ")) << "the worker's lines are kept: " << head;
  // `assay logs` prints the same.
  RunResult cli = farm.Cli({"logs", *id, "count"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(cli.out, log.text);
}

// Log retention: a finished job's logs older than --log-retention are removed by the coordinator on
// its own; the job stays, and `assay logs` says when and why its log went.
TEST(LogRetentionFarmTest, AFinishedJobsLogsGoAfterTheRetentionAndTheCliSaysWhy) {
  Farm farm;
  farm.StartCoordinator({"--log-retention", "1s"});
  farm.StartWorker("w1");
  auto id = farm.Submit(farm.WriteTree("hello", {{"assay.yaml", "steps:\n  - id: hello\n    run: echo retained-line\n"}}));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_EQ(farm.WaitJob(*id)->state(), assay::v1::JOB_SUCCEEDED);
  EXPECT_TRUE(absl::StrContains(farm.Log(*id, "hello"), "retained-line"));
  // A pass every 10 s removes it once the job finished more than 1 s ago.
  RunResult logs;
  EXPECT_TRUE(WaitFor(
      [&] {
        logs = farm.Cli({"logs", *id});
        return absl::StrContains(logs.out, "this job's logs were removed at");
      },
      absl::Seconds(30)))
      << logs.out << logs.err;
  EXPECT_TRUE(absl::StrContains(logs.out, "older than --log-retention 1s")) << logs.out;
  EXPECT_FALSE(absl::StrContains(logs.out, "retained-line")) << logs.out;
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_EQ(farm.GetJob(*id)->state(), assay::v1::JOB_SUCCEEDED) << "the job itself stays";
}

}  // namespace
}  // namespace assay::testing
