// The coordinator's Prometheus endpoint, scraped over HTTP from the real binary: job, task, worker
// and cache figures after real jobs (one run, one answered from the action cache), and the queued
// tasks by the labels they require.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {

namespace fs = std::filesystem;

// The value of the sample whose name and labels are exactly `series`, or NaN when absent.
double Sample(const std::string& scrape, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(scrape, '\n')) {
    if (absl::ConsumePrefix(&line, series) && absl::ConsumePrefix(&line, " ")) {
      double v = 0;
      if (absl::SimpleAtod(line, &v)) return v;
    }
  }
  return std::nan("");
}

TEST(MetricsTest, ScrapeShowsJobsTasksWorkersAndTheCache) {
  Farm farm;
  const fs::path port_file = farm.dir() / "metrics-port";
  farm.StartCoordinator({"--metrics-listen", "127.0.0.1:0", "--metrics-port-file", port_file.string()});
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(port_file).value_or("")), &port));
  const fs::path worker_port_file = farm.dir() / "worker-metrics-port";
  farm.StartWorker("w1", {}, 2, {"--metrics-listen", "127.0.0.1:0", "--metrics-port-file", worker_port_file.string()});
  int worker_port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(worker_port_file).value_or("")), &worker_port));

  auto tree = farm.WriteTree("two", {{"assay.yaml", R"(
steps:
  - id: make
    run: echo made > made.txt
    outputs: [made.txt]
  - id: use
    needs: [make]
    run: cat made.txt
)"}});
  for (int i = 0; i < 2; ++i) {
    RunResult r = farm.Cli({"submit", tree.string(), "--wait"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  auto scrape = HttpGet(port, "/metrics");
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  const std::string& m = *scrape;
  EXPECT_EQ(Sample(m, R"(assay_tasks_finished_total{cached="false",state="succeeded"})"), 2) << m;
  EXPECT_EQ(Sample(m, R"(assay_tasks_finished_total{cached="true",state="succeeded"})"), 2) << m;
  EXPECT_EQ(Sample(m, R"(assay_jobs_finished_total{state="succeeded"})"), 2) << m;
  EXPECT_EQ(Sample(m, "assay_jobs_active"), 0) << m;
  EXPECT_EQ(Sample(m, R"(assay_tasks{state="queued"})"), 0) << m;
  EXPECT_EQ(Sample(m, R"(assay_tasks{state="running"})"), 0) << m;
  EXPECT_EQ(Sample(m, "assay_workers_connected"), 1) << m;
  EXPECT_EQ(Sample(m, "assay_worker_slots"), 2) << m;
  EXPECT_EQ(Sample(m, "assay_worker_slots_busy"), 0) << m;
  EXPECT_EQ(Sample(m, "assay_action_cache_misses_total"), 2) << m;  // the first job's two steps
  EXPECT_EQ(Sample(m, "assay_action_cache_hits_total"), 2) << m;    // the second job's
  EXPECT_GT(Sample(m, "assay_cas_blobs"), 0) << m;
  EXPECT_GT(Sample(m, "assay_cas_bytes"), 0) << m;
  EXPECT_EQ(Sample(m, "assay_cas_evicted_blobs_total"), 0) << m;
  EXPECT_GT(Sample(m, R"(assay_state_writes_total{synced="true"})"), 0) << "results are fsynced\n" << m;
  EXPECT_GE(Sample(m, "assay_state_bytes_waiting"), 0) << m;  // (NaN when absent)
  EXPECT_TRUE(m.find("# HELP assay_tasks_finished_total") != std::string::npos) << m;

  // The worker's own figures: it ran the first job's two steps (the second job was all cache hits);
  // `use` took made.txt from this host's cache, where `make` left it, so nothing was fetched.
  auto worker_scrape = HttpGet(worker_port, "/metrics");
  ASSERT_TRUE(worker_scrape.ok()) << worker_scrape.status();
  const std::string& w = *worker_scrape;
  EXPECT_EQ(Sample(w, R"(assay_worker_up{worker="w1"})"), 1) << w;
  EXPECT_EQ(Sample(w, R"(assay_worker_slots{worker="w1"})"), 2) << w;
  EXPECT_EQ(Sample(w, R"(assay_worker_running_tasks{worker="w1"})"), 0) << w;
  EXPECT_EQ(Sample(w, R"(assay_worker_tasks_finished_total{worker="w1"})"), 2) << w;
  EXPECT_EQ(Sample(w, R"(assay_worker_executor_failures_total{worker="w1"})"), 0) << w;
  EXPECT_GE(Sample(w, R"(assay_worker_local_cache_hits_total{worker="w1"})"), 1) << w;
  EXPECT_GE(Sample(w, R"(assay_worker_input_files_total{worker="w1"})"),
            Sample(w, R"(assay_worker_local_cache_hits_total{worker="w1"})")) << w;
  EXPECT_TRUE(w.find("# HELP assay_worker_fetched_bytes_total") != std::string::npos) << w;
  EXPECT_EQ(Sample(w, R"(assay_worker_step_cache_bytes_total{worker="w1",kind="restored"})"), 0) << "no caches: " << w;
  EXPECT_EQ(Sample(w, R"(assay_worker_input_copies_checked_total{worker="w1",how="dropped"})"), 0) << w;
  EXPECT_GE(Sample(w, R"(assay_worker_input_copies_checked_total{worker="w1",how="unchanged"})"), 0) << w;

  // Figures are read at scrape time: a worker that leaves is gone from the next scrape.
  farm.StopWorker("w1");
  EXPECT_TRUE(WaitFor([&] { return Sample(HttpGet(port, "/metrics").value_or(""), "assay_workers_connected") == 0; },
                      absl::Seconds(10)));
}

// Every sample of `family` that has labels, by its labels as written ("{requires=\"qemu\"}" -> 2).
std::map<std::string, double> Samples(const std::string& scrape, const std::string& family) {
  std::map<std::string, double> out;
  for (absl::string_view line : absl::StrSplit(scrape, '\n')) {
    if (!absl::StartsWith(line, family + "{")) continue;
    const size_t space = line.rfind(' ');
    double v = std::nan("");
    EXPECT_TRUE(space != absl::string_view::npos && absl::SimpleAtod(line.substr(space + 1), &v)) << line;
    out[std::string(line.substr(family.size(), space - family.size()))] = v;
  }
  return out;
}

// The queue-depth gauge the worker pools scale on (deploy/k8s/scaledobject.yaml): one sample per set
// of required labels, sorted and joined, the sets of tasks no worker can run yet included.
TEST(MetricsTest, QueuedTasksAreCountedByTheLabelsTheyRequire) {
  Farm farm;
  const fs::path port_file = farm.dir() / "metrics-port";
  farm.StartCoordinator({"--metrics-listen", "127.0.0.1:0", "--metrics-port-file", port_file.string()});
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(port_file).value_or("")), &port));
  auto scrape = [&] { return HttpGet(port, "/metrics").value_or(""); };
  EXPECT_TRUE(Samples(scrape(), "assay_tasks_queued").empty()) << "nothing queued, no sample: " << scrape();

  // No worker yet, so every task stays queued: three require nothing, two `qemu`, one `qemu` and
  // `arm` (written in that order: the label sorts them).
  auto tree = farm.WriteTree("pools", {{"assay.yaml", R"(
steps:
  - {id: plain1, run: echo 1}
  - {id: plain2, run: echo 2}
  - {id: plain3, run: echo 3}
  - {id: emulated1, run: echo 4, requires: [qemu]}
  - {id: emulated2, run: echo 5, requires: [qemu]}
  - {id: arm, run: echo 6, requires: [qemu, arm]}
)"}});
  auto job = farm.Submit(tree);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(WaitFor([&] { return Sample(scrape(), R"(assay_tasks{state="queued"})") == 6; }, absl::Seconds(30)))
      << scrape();
  std::string m = scrape();
  EXPECT_EQ(Samples(m, "assay_tasks_queued"),
            (std::map<std::string, double>{{R"({requires=""})", 3}, {R"({requires="qemu"})", 2},
                                           {R"({requires="arm,qemu"})", 1}}))
      << m;
  EXPECT_TRUE(absl::StrContains(m, "# TYPE assay_tasks_queued gauge")) << m;
  EXPECT_EQ(Sample(m, R"(assay_tasks{state="queued"})"), 6) << "the state gauge is as it was: " << m;

  // A worker offering `qemu` (and not `arm`) runs the first five; their sets leave the gauge, the
  // task it cannot run stays in it.
  farm.StartWorker("emu", {"qemu"}, 2);
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string now = scrape();
        return Sample(now, R"(assay_tasks{state="queued"})") == 1 && Sample(now, R"(assay_tasks{state="running"})") == 0;
      },
      absl::Seconds(60)))
      << scrape();
  m = scrape();
  EXPECT_EQ(Samples(m, "assay_tasks_queued"), (std::map<std::string, double>{{R"({requires="arm,qemu"})", 1}})) << m;
  auto tasks = farm.GetJob(*job);
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  EXPECT_EQ(tasks->tasks_size(), 6);
  for (const auto& t : tasks->tasks()) {
    EXPECT_EQ(t.state(), t.id() == "arm" ? assay::v1::TASK_QUEUED : assay::v1::TASK_SUCCEEDED) << t.DebugString();
  }
}

TEST(MetricsTest, AnAddressInUseIsAClearErrorAtStart) {
  Farm farm;
  const fs::path port_file = farm.dir() / "metrics-port";
  farm.StartCoordinator({"--metrics-listen", "127.0.0.1:0", "--metrics-port-file", port_file.string()});
  const std::string taken = absl::StrCat("127.0.0.1:", absl::StripAsciiWhitespace(ReadFile(port_file).value_or("")));
  RunResult second = RunCommand({BinaryPath("assay-coordinator"), "--data", (farm.dir() / "other").string(), "--listen",
                                 "127.0.0.1:0", "--metrics-listen", taken},
                                absl::Seconds(30));
  EXPECT_NE(second.exit_code, 0);
  EXPECT_NE((second.out + second.err).find("cannot serve metrics on " + taken), std::string::npos)
      << second.out << second.err;
}

}  // namespace
}  // namespace assay::testing
