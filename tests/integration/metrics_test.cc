// The coordinator's Prometheus endpoint, scraped over HTTP from the real binary: job, task, worker
// and cache figures after real jobs (one run, one answered from the action cache).
#include <gtest/gtest.h>

#include <cstdlib>

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

  // Figures are read at scrape time: a worker that leaves is gone from the next scrape.
  farm.StopWorker("w1");
  EXPECT_TRUE(WaitFor([&] { return Sample(HttpGet(port, "/metrics").value_or(""), "assay_workers_connected") == 0; },
                      absl::Seconds(10)));
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
