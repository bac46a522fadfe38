// The farm's overhead per task: N tiny tasks (`true`) through a local farm with 2 workers, against
// the same N commands run directly with the same parallelism (2), end to end (submit to done, as
// `assay submit --wait` sees it); then the marginal cost of a task, from a second job of 4N tasks
// (the difference between the two, against the same difference run directly: no fixed cost of a
// job in it). Also: time from submit to the first task's start, and how busy the machine's CPUs were.
// Run: build/bench/bench_farm_overhead [N] [process|sandbox] [limits|-] [bucket]
//   (ASSAY_BENCH_WORKER_FLAGS="--sandbox bubblewrap": more flags for the workers)
//   `bucket`: then again with the CAS in an S3 bucket (Ceph's radosgw on loopback), and the ratio
//   executor: default process; `limits`: every step has limits {cpus: 1, memory: 256MiB, pids: 256}
//   (its own cgroups, made and removed per step)
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/process_cpu.h"
#include "common/base/file_util.h"
#include "common/s3/s3_client.h"
#include "tests/integration/farm.h"
#include "tests/integration/s3_server.h"

namespace {

using assay::testing::Farm;
using assay::testing::TestS3Server;

// Runs `/bin/sh -ec true` n times, two at a time, as the workers would.
absl::Duration Direct(int n) {
  const absl::Time start = absl::Now();
  int running = 0, started = 0;
  while (started < n || running > 0) {
    while (running < 2 && started < n) {
      pid_t pid = ::fork();
      if (pid == 0) {
        ::execl("/bin/sh", "sh", "-ec", "true", nullptr);
        _exit(127);
      }
      ++running;
      ++started;
    }
    int status = 0;
    ::wait(&status);
    --running;
  }
  return absl::Now() - start;
}

double Us(const google::protobuf::Timestamp& t) { return static_cast<double>(t.seconds()) * 1e6 + t.nanos() / 1e3; }

// Where a lane's time goes, from the worker's REAPI execution metadata (one host, one clock): each
// task's phases from the worker receiving it (a prefetched task's setup and inputs overlap the run
// before it, and its wait for the slot is in "prepare"), and what a lane spends between the end of
// one step's run and the start of the next one's: the farm's whole cost per task on that lane. Means
// in ms.
void PrintTimeline(const assay::v1::Job& job) {
  std::map<std::string, std::vector<const build::bazel::remote::execution::v2::ExecutedActionMetadata*>> lanes;
  for (const auto& t : job.tasks()) {
    const auto& m = t.result().execution_metadata();
    lanes[m.worker()].push_back(&m);
  }
  double setup = 0, fetch = 0, prepare = 0, run = 0, collect = 0, upload = 0, finish = 0, between = 0;
  int n = 0, gaps = 0;
  for (auto& [worker, tasks] : lanes) {
    std::sort(tasks.begin(), tasks.end(), [](auto* a, auto* b) {
      return Us(a->execution_start_timestamp()) < Us(b->execution_start_timestamp());
    });
    for (size_t i = 0; i < tasks.size(); ++i) {
      const auto& m = *tasks[i];
      setup += Us(m.input_fetch_start_timestamp()) - Us(m.worker_start_timestamp());
      fetch += Us(m.input_fetch_completed_timestamp()) - Us(m.input_fetch_start_timestamp());
      prepare += Us(m.execution_start_timestamp()) - Us(m.input_fetch_completed_timestamp());
      run += Us(m.execution_completed_timestamp()) - Us(m.execution_start_timestamp());
      collect += Us(m.output_upload_start_timestamp()) - Us(m.execution_completed_timestamp());
      upload += Us(m.output_upload_completed_timestamp()) - Us(m.output_upload_start_timestamp());
      finish += Us(m.worker_completed_timestamp()) - Us(m.output_upload_completed_timestamp());
      ++n;
      if (i > 0) {
        between += Us(m.execution_start_timestamp()) - Us(tasks[i - 1]->execution_completed_timestamp());
        ++gaps;
      }
    }
  }
  if (n == 0 || gaps == 0) return;
  std::printf("per task on a lane (ms)       setup %.2f, inputs %.2f, prepare (and wait for the slot) %.2f, run %.2f, "
              "outputs %.2f, upload %.2f, finish %.2f\n",
              setup / n / 1e3, fetch / n / 1e3, prepare / n / 1e3, run / n / 1e3, collect / n / 1e3, upload / n / 1e3,
              finish / n / 1e3);
  std::printf("a lane between two runs (ms)  %.2f (end of one step's run -> start of the next's)\n", between / gaps / 1e3);
}

struct FarmFigures {
  double marginal_ms = 0;  // overhead per task per lane
  double large_s = 0;      // the job of 4N tasks, submit to done
};

// One farm's figures, printed; nothing on a failure.
std::optional<FarmFigures> MeasureFarm(int n, const std::string& executor, bool limits, std::vector<std::string> flags) {
  const std::string limits_yaml = limits ? "    limits: {cpus: 1, memory: 256MiB, pids: 256}\n" : "";
  Farm farm;
  farm.use_default_timings();
  flags.insert(flags.end(), {"--max-matrix-cells", "100000"});
  farm.StartCoordinator(flags);
  farm.set_executor(executor);
  // ASSAY_BENCH_WORKER_FLAGS: more worker flags (`--sandbox bubblewrap`), split on spaces.
  const char* more = std::getenv("ASSAY_BENCH_WORKER_FLAGS");
  const std::vector<std::string> worker_flags = absl::StrSplit(more != nullptr ? more : "", ' ', absl::SkipEmpty());
  farm.StartWorker("w1", {}, 1, worker_flags);
  farm.StartWorker("w2", {}, 1, worker_flags);
  auto tree_of = [&](int tasks) {
    std::string values;
    for (int i = 0; i < tasks; ++i) absl::StrAppend(&values, i == 0 ? "" : ", ", i);
    return farm.WriteTree(absl::StrCat("tiny-", tasks),
                          {{"assay.yaml", absl::StrCat("matrix:\n  i: [", values,
                                                       "]\nsteps:\n  - id: t\n    run: 'true'\n    cache: false\n", limits_yaml)}});
  };
  // One warm-up job so both workers' channels and caches are up.
  auto warm = farm.Submit(farm.WriteTree("warm", {{"assay.yaml", "steps:\n  - id: t\n    run: 'true'\n    cache: false\n"}}));
  if (!warm.ok() || !farm.WaitJob(*warm).ok()) return std::nullopt;

  struct Run {
    double seconds = 0;
    double cpu_busy = 0;  // of all CPUs, 0..1
    double coordinator_cpu = 0, workers_cpu = 0;  // seconds, over the job
    assay::v1::Job job;
  };
  auto run_farm = [&](int tasks) -> std::optional<Run> {
    const auto tree = tree_of(tasks);
    const auto [busy0, total0] = assay::bench::MachineTicksNow();
    const auto daemons = [&] {
      return std::array<double, 2>{assay::bench::CpuOf(farm.coordinator_pid()).self,
                                   assay::bench::CpuOf(farm.worker_pid("w1")).self +
                                       assay::bench::CpuOf(farm.worker_pid("w2")).self};
    };
    const std::array<double, 2> cpu0 = daemons();
    const absl::Time start = absl::Now();
    auto id = farm.Submit(tree);
    if (!id.ok()) {
      std::fprintf(stderr, "%s\n", id.status().ToString().c_str());
      return std::nullopt;
    }
    auto job = farm.WaitJob(*id, absl::Minutes(10));
    Run r;
    r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    const auto [busy1, total1] = assay::bench::MachineTicksNow();
    const std::array<double, 2> cpu1 = daemons();
    r.coordinator_cpu = cpu1[0] - cpu0[0];
    r.workers_cpu = cpu1[1] - cpu0[1];
    r.cpu_busy = total1 > total0 ? (busy1 - busy0) / (total1 - total0) : 0;
    if (!job.ok() || job->state() != assay::v1::JOB_SUCCEEDED) return std::nullopt;
    r.job = *job;
    return r;
  };
  auto small = run_farm(n);
  auto large = run_farm(4 * n);
  if (!small || !large) return std::nullopt;
  int64_t first_start = INT64_MAX;
  for (const auto& t : small->job.tasks()) first_start = std::min(first_start, t.started_at_ms());
  const int64_t submit_to_first_ms = first_start - small->job.created_at_ms();

  const double direct_small = absl::ToDoubleSeconds(Direct(n)), direct_large = absl::ToDoubleSeconds(Direct(4 * n));
  const double farm_s = small->seconds;
  std::printf("tasks                         %d and %d (`true`, cache off, 2 workers x 1 slot, %s executor%s)\n", n,
              4 * n, executor.c_str(), limits ? ", cgroup limits" : "");
  std::printf("farm, submit to job done      %.3f s  (%.0f tasks/s, %.2f ms/task); CPUs %.0f%% busy\n", farm_s,
              n / farm_s, 1000 * farm_s / n, 100 * small->cpu_busy);
  std::printf("direct, 2 at a time           %.3f s  (%.0f tasks/s)\n", direct_small, n / direct_small);
  std::printf("ratio farm / direct           %.1fx\n", farm_s / direct_small);
  std::printf("overhead per task, end to end %.2f ms per lane (%d tasks, the job's fixed costs included)\n",
              1000 * (farm_s - direct_small) / n * 2, n);
  const double marginal_ms = 1000 * ((large->seconds - farm_s) - (direct_large - direct_small)) / (3 * n) * 2;
  std::printf("overhead per task, marginal   %.2f ms per lane (jobs of %d and %d tasks: farm %.3f s and %.3f s, "
              "direct %.3f s and %.3f s; CPUs %.0f%% busy)\n",
              marginal_ms, n, 4 * n, farm_s, large->seconds, direct_small, direct_large, 100 * large->cpu_busy);
  std::printf("submit to first task start    %lld ms (job accepted -> first task running)\n",
              static_cast<long long>(submit_to_first_ms));
  std::printf("daemons' CPU per task (ms)    %.2f (coordinator %.2f + workers %.2f), the job of %d tasks\n",
              1e3 * (large->coordinator_cpu + large->workers_cpu) / (4 * n), 1e3 * large->coordinator_cpu / (4 * n),
              1e3 * large->workers_cpu / (4 * n), 4 * n);
  PrintTimeline(large->job);
  return FarmFigures{marginal_ms, large->seconds};
}

}  // namespace

int main(int argc, char** argv) {
  int n = 200;
  if (argc > 1 && !absl::SimpleAtoi(argv[1], &n)) return 2;
  const std::string executor = argc > 2 ? argv[2] : "process";
  const bool limits = argc > 3 && std::string(argv[3]) == "limits";
  const bool bucket = argc > 4 && std::string(argv[4]) == "bucket";
  if (bucket) std::printf("== the CAS in the embedded RocksDB (default)\n");
  const std::optional<FarmFigures> embedded = MeasureFarm(n, executor, limits, {});
  if (!embedded) return 1;
  if (!bucket) return 0;
  // The same with the CAS and action cache in a bucket: Ceph's radosgw on loopback (s3_server.h).
  TestS3Server s3;
  if (absl::Status s = s3.Start(); !s.ok()) {
    std::fprintf(stderr, "Ceph did not start: %s\n", s.ToString().c_str());
    return 1;
  }
  assay::S3Client client(assay::ParseS3Location(s3.Location("overhead")).value(),
                         assay::S3Credentials{TestS3Server::kAccessKey, TestS3Server::kSecretKey});
  if (!client.CreateBucket().ok()) return 1;
  const std::filesystem::path credentials = s3.dir() / "credentials";
  (void)assay::WriteFile(credentials, absl::StrCat("aws_access_key_id = ", TestS3Server::kAccessKey,
                                                   "\naws_secret_access_key = ", TestS3Server::kSecretKey, "\n"));
  std::printf("== the CAS in a bucket (--cas-store, radosgw on loopback)\n");
  const std::optional<FarmFigures> in_bucket = MeasureFarm(
      n, executor, limits, {"--cas-store", s3.Location("overhead", "farm"), "--cas-credentials", credentials.string()});
  if (!in_bucket) return 1;
  std::printf("== bucket / embedded: the job of %d tasks %.3f s / %.3f s = %.2fx; marginal overhead per task %.2f ms / "
              "%.2f ms per lane\n",
              4 * n, in_bucket->large_s, embedded->large_s, in_bucket->large_s / embedded->large_s,
              in_bucket->marginal_ms, embedded->marginal_ms);
  return 0;
}
