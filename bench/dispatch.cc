// Dispatch at fleet scale: the real coordinator against 64 simulated workers, all in this process,
// each speaking the worker link (hello, heartbeats with its leases, an instant result per task).
//   1. Memory: the coordinator's resident memory with 10,000 tasks queued and no worker.
//   2. Drain: 64 workers connect and run those 10,000 tasks: tasks/s.
//   3. Latency: 10,000 more tasks submitted while the workers are connected: p50/p99 from queued to
//      started (the coordinator's own timestamps).
//   4. Heartbeats: every worker holds a task running, while 256-cell jobs are submitted one after
//      another; the p99 of heartbeat handling (the coordinator's histogram, lock wait included), and
//      whether any live lease expired.
// Run: build/bench/bench_dispatch [workers=64] [tasks=10000]
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <thread>

#include <grpcpp/client_context.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "assay/v1/worker_link.grpc.pb.h"
#include "tests/integration/farm.h"

namespace {

namespace fs = std::filesystem;
using assay::testing::Farm;
using assay::v1::CoordinatorMessage;
using assay::v1::WorkerMessage;

int64_t ResidentBytes(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "VmRSS:")) {
      int64_t kb = 0;
      std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kb)) return kb * 1024;
    }
  }
  return 0;
}

// One simulated worker: a stream, a reader thread and a heartbeat thread. Tasks whose command
// mentions "hold" are kept running until Release(); every other task succeeds at once.
class SimWorker {
 public:
  SimWorker(std::shared_ptr<grpc::Channel> channel, std::string id)
      : id_(std::move(id)), stub_(assay::v1::WorkerLink::NewStub(channel)) {
    stream_ = stub_->Connect(&context_);
    WorkerMessage hello;
    hello.mutable_hello()->set_worker_id(id_);
    hello.mutable_hello()->set_hostname("bench");
    hello.mutable_hello()->set_slots(1);
    hello.mutable_hello()->add_labels("bench");
    Write(hello);
    reader_ = std::thread([this] { Read(); });
    beats_ = std::thread([this] { Beat(); });
  }
  ~SimWorker() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    context_.TryCancel();
    reader_.join();
    beats_.join();
  }
  void Release() {
    std::vector<assay::v1::LeaseRef> held;
    {
      absl::MutexLock lock(&mu_);
      held.swap(held_);
    }
    for (const auto& lease : held) Finish(lease);
  }
  int held() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(held_.size());
  }
  int lease_expired_cancels() {
    absl::MutexLock lock(&mu_);
    return expired_;
  }

 private:
  void Write(const WorkerMessage& m) {
    absl::MutexLock lock(&write_mu_);
    stream_->Write(m);
  }
  void Finish(const assay::v1::LeaseRef& lease) {
    WorkerMessage m;
    *m.mutable_result()->mutable_lease() = lease;
    m.mutable_result()->mutable_result()->set_exit_code(0);
    Write(m);
  }
  void Read() {
    CoordinatorMessage m;
    while (stream_->Read(&m)) {
      if (m.has_assign()) {
        bool hold = false;
        for (const auto& a : m.assign().command().arguments()) hold = hold || absl::StrContains(a, "hold");
        if (hold) {
          absl::MutexLock lock(&mu_);
          held_.push_back(m.assign().lease());
        } else {
          Finish(m.assign().lease());
        }
      } else if (m.has_cancel() && m.cancel().reason() == "lease expired") {
        absl::MutexLock lock(&mu_);
        ++expired_;
      } else if (m.has_welcome()) {
        absl::MutexLock lock(&mu_);
        interval_ = absl::Milliseconds(m.welcome().heartbeat_interval_ms());
      }
    }
  }
  void Beat() {
    absl::MutexLock lock(&mu_);
    while (!mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval_)) {
      WorkerMessage beat;
      for (const auto& lease : held_) *beat.mutable_heartbeat()->add_leases() = lease;
      beat.mutable_heartbeat();
      mu_.Unlock();
      Write(beat);
      mu_.Lock();
    }
  }

  const std::string id_;
  std::unique_ptr<assay::v1::WorkerLink::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<WorkerMessage, CoordinatorMessage>> stream_;
  absl::Mutex write_mu_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration interval_ ABSL_GUARDED_BY(mu_) = absl::Milliseconds(500);
  std::vector<assay::v1::LeaseRef> held_ ABSL_GUARDED_BY(mu_);
  int expired_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread reader_, beats_;
};

// Jobs of `cells` one-step cells each, `count` jobs, each tree distinct; returns the job ids.
std::vector<std::string> SubmitJobs(Farm& farm, const std::string& name, int count, int cells, const std::string& run) {
  std::vector<std::string> ids;
  std::string values;
  for (int i = 0; i < cells; ++i) absl::StrAppend(&values, i == 0 ? "" : ", ", i);
  for (int j = 0; j < count; ++j) {
    auto tree = farm.WriteTree(absl::StrCat(name, j),
                               {{"assay.yaml", absl::StrCat("name: ", name, j, "\nmatrix:\n  i: [", values, "]\nsteps:\n",
                                                            "  - id: t\n    run: ", run, "\n    cache: false\n",
                                                            "    requires: [bench]\n")}});
    auto id = farm.Submit(tree);
    if (!id.ok()) {
      std::fprintf(stderr, "submit failed: %s\n", std::string(id.status().message()).c_str());
      std::exit(1);
    }
    ids.push_back(*id);
  }
  return ids;
}

bool AllDone(Farm& farm, const std::vector<std::string>& ids, std::vector<assay::v1::Job>* jobs) {
  jobs->clear();
  for (const auto& id : ids) {
    auto job = farm.GetJob(id);
    if (!job.ok() || job->state() != assay::v1::JOB_SUCCEEDED) return false;
    jobs->push_back(std::move(*job));
  }
  return true;
}

int64_t Queued(Farm& farm, const std::vector<std::string>& ids) {
  int64_t n = 0;
  for (const auto& id : ids) {
    auto job = farm.GetJob(id);
    if (!job.ok()) return -1;
    for (const auto& t : job->tasks()) n += t.state() == assay::v1::TASK_QUEUED;
  }
  return n;
}

// The heartbeat histogram from /metrics: cumulative counts per bound (the last is +Inf).
std::vector<std::pair<double, double>> HeartbeatBuckets(int metrics_port) {
  std::vector<std::pair<double, double>> out;
  auto text = assay::testing::HttpGet(metrics_port, "/metrics");
  if (!text.ok()) return out;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (!absl::ConsumePrefix(&line, "assay_worker_heartbeat_seconds_bucket{le=\"")) continue;
    size_t quote = line.find('"');
    std::string le(line.substr(0, quote));
    double bound = le == "+Inf" ? 1e9 : 0, count = 0;
    if (le != "+Inf") absl::SimpleAtod(le, &bound);
    absl::SimpleAtod(absl::StripAsciiWhitespace(line.substr(line.rfind(' ') + 1)), &count);
    out.emplace_back(bound, count);
  }
  return out;
}

// The bound under which quantile `q` of the observations between two scrapes fall.
double QuantileBound(const std::vector<std::pair<double, double>>& before,
                     const std::vector<std::pair<double, double>>& after, double q, double* count) {
  *count = after.empty() ? 0 : after.back().second - (before.empty() ? 0 : before.back().second);
  for (size_t i = 0; i < after.size(); ++i) {
    double n = after[i].second - (i < before.size() ? before[i].second : 0);
    if (n >= q * *count) return after[i].first;
  }
  return -1;
}

double Percentile(std::vector<int64_t> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))]);
}

}  // namespace

int main(int argc, char** argv) {
  int workers = 64, tasks = 10000;
  if (argc > 1 && !absl::SimpleAtoi(argv[1], &workers)) return 2;
  if (argc > 2 && !absl::SimpleAtoi(argv[2], &tasks)) return 2;
  const int cells = 250, jobs = std::max(1, tasks / cells);
  tasks = jobs * cells;
  Farm farm;
  fs::path metrics_port_file = farm.dir() / "metrics-port";
  farm.StartCoordinator({"--metrics-listen", "127.0.0.1:0", "--metrics-port-file", metrics_port_file.string()});
  int metrics_port = 0;
  absl::SimpleAtoi(absl::StripAsciiWhitespace(assay::ReadFile(metrics_port_file).value_or("0")), &metrics_port);
  const pid_t coordinator = farm.coordinator_pid();
  std::printf("%d simulated workers x 1 slot, %d tasks (%d jobs x %d cells), real coordinator on loopback\n", workers,
              tasks, jobs, cells);

  // 1. Memory with everything queued and nobody to run it.
  const int64_t rss_before = ResidentBytes(coordinator);
  auto first = SubmitJobs(farm, "drain", jobs, cells, "'true'");
  assay::testing::WaitFor([&] { return Queued(farm, first) == tasks; }, absl::Minutes(5));
  const int64_t rss_queued = ResidentBytes(coordinator);
  std::printf("coordinator memory         %.1f MiB before, %.1f MiB with %d tasks queued (%.1f KiB per task)\n",
              static_cast<double>(rss_before) / (1 << 20), static_cast<double>(rss_queued) / (1 << 20), tasks,
              static_cast<double>(rss_queued - rss_before) / 1024.0 / tasks);

  // 2. Drain: the workers connect and take everything.
  auto channel = farm.channel();
  std::vector<std::unique_ptr<SimWorker>> sims;
  const absl::Time drain_start = absl::Now();
  for (int i = 0; i < workers; ++i) sims.push_back(std::make_unique<SimWorker>(channel, absl::StrCat("sim-", i)));
  std::vector<assay::v1::Job> done;
  if (!assay::testing::WaitFor([&] { return AllDone(farm, first, &done); }, absl::Minutes(10))) return 1;
  int64_t last_finish = 0;
  for (const auto& j : done) last_finish = std::max(last_finish, j.finished_at_ms());
  const double drain_s = static_cast<double>(last_finish - absl::ToUnixMillis(drain_start)) / 1000.0;
  std::printf("drain, %d queued tasks     %.2f s  (%.0f tasks/s)\n", tasks, drain_s, tasks / drain_s);

  // 3. Latency from queued to started, with the workers connected.
  const absl::Time live_start = absl::Now();
  auto second = SubmitJobs(farm, "live", jobs, cells, "'true'");
  if (!assay::testing::WaitFor([&] { return AllDone(farm, second, &done); }, absl::Minutes(10))) return 1;
  std::vector<int64_t> waits;
  int64_t finish = 0;
  for (const auto& j : done) {
    finish = std::max(finish, j.finished_at_ms());
    for (const auto& t : j.tasks()) waits.push_back(t.started_at_ms() - t.queued_at_ms());
  }
  const double live_s = static_cast<double>(finish - absl::ToUnixMillis(live_start)) / 1000.0;
  std::printf("submitted live             %.2f s from first submit to last result (%.0f tasks/s)\n", live_s,
              tasks / live_s);
  std::printf("queued -> started          p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", Percentile(waits, 0.5),
              Percentile(waits, 0.99), Percentile(waits, 1.0));

  // 4. Heartbeats while 256-cell jobs are submitted: every worker holds one leased task.
  auto held = SubmitJobs(farm, "hold", 1, workers, "'echo hold'");
  assay::testing::WaitFor(
      [&] {
        int n = 0;
        for (auto& s : sims) n += s->held();
        return n == workers;
      },
      absl::Minutes(1));
  auto before = HeartbeatBuckets(metrics_port);
  const absl::Time burst_start = absl::Now();
  auto burst = SubmitJobs(farm, "burst", 30, 256, "'true'");
  const absl::Duration burst_time = absl::Now() - burst_start;
  auto after = HeartbeatBuckets(metrics_port);
  double count = 0;
  const double p50 = QuantileBound(before, after, 0.5, &count);
  const double p99 = QuantileBound(before, after, 0.99, &count);
  int expired = 0;
  for (auto& s : sims) expired += s->lease_expired_cancels();
  std::printf("heartbeats during 30 x 256-cell submits (%.1f s): %.0f handled, p50 <= %.3g ms, p99 <= %.3g ms "
              "(histogram bounds); live leases expired: %d\n",
              absl::ToDoubleSeconds(burst_time), count, p50 * 1000, p99 * 1000, expired);
  for (auto& s : sims) s->Release();
  auto all = held;
  all.insert(all.end(), burst.begin(), burst.end());
  // The burst's tasks need the 'bench' label too: the simulated workers run them.
  assay::testing::WaitFor([&] { return AllDone(farm, all, &done); }, absl::Minutes(5));
  sims.clear();
  return expired == 0 ? 0 : 1;
}
