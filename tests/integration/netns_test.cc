// A farm across a real network: the coordinator, three workers and the CLI each in a network
// namespace of their own, joined by veth links to a bridge in a namespace of its own, talking mutual
// TLS with tokens. The host's namespace gets no address and no route to them and never connects to
// them: every call, the CLI's included, runs inside a namespace (../shared/FACTS.md, "Network rules
// for tests"). Faults are real: a worker's link is cut at the bridge mid-task, a worker is killed.
#include <signal.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <set>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "assay/v1/job.pb.h"
#include "tests/integration/client.h"
#include "tests/integration/farm.h"
#include "tests/integration/pki.h"

namespace assay::testing {
namespace {

namespace fs = std::filesystem;
using assay::v1::Job;
using assay::v1::Task;

constexpr char kSubnet[] = "10.213.0.";
constexpr int kPort = 7171;
constexpr char kWorkerToken[] = "worker-token-0123456789abcdef0123";
constexpr char kClientToken[] = "client-token-0123456789abcdef0123";

RunResult Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/sbin/ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, absl::Seconds(20));
}

class NetnsTest : public ::testing::Test {
 protected:
  // Node i (1: coordinator, 2-4: workers w1-w3, 5: client) is at 10.213.0.i in namespace ns(i).
  static constexpr int kCoordinator = 1, kClient = 5;
  static std::string WorkerName(int node) { return absl::StrCat("w", node - 1); }
  std::string Ns(const std::string& role) const { return absl::StrCat("assay", ::getpid(), "-", role); }
  std::string NodeNs(int node) const { return Ns(absl::StrCat("n", node)); }
  std::string Address() const { return absl::StrCat(kSubnet, kCoordinator, ":", kPort); }

  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "network namespaces need root";
    ASSERT_TRUE(fs::exists("/usr/sbin/ip")) << "iproute2 is missing (scripts/install-deps.sh installs it)";
    MakeNetwork();
    if (HasFatalFailure()) return;
    pki_ = std::make_unique<TestPki>(dir() / "pki", std::vector<std::string>{absl::StrCat(kSubnet, kCoordinator)});
    ASSERT_TRUE(WriteFile(dir() / "tokens", absl::StrCat(kWorkerToken, " worker,cache-read,cache-write\n", kClientToken,
                                                         " submit,read,admin,cache-read,cache-write\n")).ok());
    ASSERT_TRUE(WriteFile(dir() / "worker-token", absl::StrCat(kWorkerToken, "\n")).ok());
    ASSERT_TRUE(WriteFile(dir() / "client-token", absl::StrCat(kClientToken, "\n")).ok());
    coordinator_ = std::make_unique<Process>(
        InNs(kCoordinator, {BinaryPath("assay-coordinator"), "--listen", Address(), "--data",
                            (dir() / "data").string(), "--tls-cert", pki_->Path("server.pem"), "--tls-key",
                            pki_->Path("server.key"), "--tls-client-ca", pki_->Path("ca.pem"), "--token-file",
                            (dir() / "tokens").string(), "--lease-seconds", "2", "--heartbeat-seconds", "0.5"}),
        dir() / "coordinator.log");
    for (int node = 2; node <= 4; ++node) StartWorker(node);
    ASSERT_TRUE(WaitFor([&]() { return ConnectedWorkers() == 3; }, absl::Seconds(30)))
        << ReadFile(dir() / "coordinator.log").value_or("");
  }

  void TearDown() override {
    for (auto& [node, worker] : workers_) worker->Kill(SIGINT);
    workers_.clear();
    coordinator_.reset();  // SIGTERM, then SIGKILL, by pid
    for (int node = 1; node <= kClient; ++node) Ip({"netns", "del", NodeNs(node)});
    Ip({"netns", "del", Ns("br")});
  }

  // A bridge in a namespace of its own, and a veth from each node's namespace to it. No route out.
  void MakeNetwork() {
    auto must = [](const std::vector<std::string>& args) {
      RunResult r = Ip(args);
      ASSERT_EQ(r.exit_code, 0) << "ip " << absl::StrJoin(args, " ") << ": " << r.err;
    };
    const std::string br = Ns("br");
    must({"netns", "add", br});
    must({"-n", br, "link", "add", "br0", "type", "bridge"});
    must({"-n", br, "link", "set", "br0", "up"});
    for (int node = 1; node <= kClient; ++node) {
      const std::string ns = NodeNs(node), port = absl::StrCat("v", node);
      must({"netns", "add", ns});
      must({"-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", br});
      must({"-n", br, "link", "set", port, "master", "br0", "up"});
      must({"-n", ns, "addr", "add", absl::StrCat(kSubnet, node, "/24"), "dev", "eth0"});
      must({"-n", ns, "link", "set", "eth0", "up"});
      must({"-n", ns, "link", "set", "lo", "up"});
    }
  }

  std::vector<std::string> InNs(int node, std::vector<std::string> argv) const {
    argv.insert(argv.begin(), {"/usr/sbin/ip", "netns", "exec", NodeNs(node)});
    return argv;
  }

  std::vector<std::string> Tls(const std::string& token_file) const {
    return {"--tls-ca", pki_->Path("ca.pem"), "--tls-cert", pki_->Path("client.pem"), "--tls-key",
            pki_->Path("client.key"), "--token-file", (dir() / token_file).string()};
  }

  void StartWorker(int node) {
    std::vector<std::string> argv = {BinaryPath("assay-worker"), "--coordinator", Address(), "--id", WorkerName(node),
                                     "--slots", "2", "--executor", "process", "--work-dir",
                                     (dir() / ("work-" + WorkerName(node))).string()};
    for (const auto& a : Tls("worker-token")) argv.push_back(a);
    workers_[node] = std::make_unique<Process>(InNs(node, argv), dir() / ("worker-" + WorkerName(node) + ".log"));
  }

  // The CLI, run in the client's namespace.
  CliClient Client() const {
    CliClient::Options options;
    options.address = Address();
    options.security_args = Tls("client-token");
    options.prefix = InNs(kClient, {});
    options.timeout = absl::Seconds(120);
    return CliClient(std::move(options));
  }
  RunResult Cli(const std::vector<std::string>& args) { return Client().Run(args); }
  absl::StatusOr<Job> GetJob(const std::string& id) { return Client().GetJob(id); }
  absl::StatusOr<Job> WaitJob(const std::string& id) { return Client().WaitJob(id); }
  int ConnectedWorkers() { return Client().ConnectedWorkers(); }

  // Submits a matrix of `cells` cells whose one step takes `seconds` (and cannot come from the cache).
  std::string SubmitMatrix(const std::string& name, int cells, double seconds) {
    std::string values;
    for (int n = 0; n < cells; ++n) absl::StrAppend(&values, n == 0 ? "" : ", ", n);
    const fs::path tree = dir() / name;
    fs::create_directories(tree);
    EXPECT_TRUE(WriteFile(tree / "assay.yaml", absl::StrCat("name: ", name, "\nmatrix:\n  n: [", values,
                                                            "]\nsteps:\n  - id: s\n    run: sleep ", seconds,
                                                            "; echo cell ${{ matrix.n }}\n    cache: false\n")).ok());
    RunResult r = Cli({"submit", tree.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::string(absl::StripAsciiWhitespace(r.out));
  }

  // Waits until `worker` runs at least one task of `job`; returns those tasks.
  std::set<std::string> RunningOn(const std::string& job_id, const std::string& worker) {
    std::set<std::string> running;
    WaitFor(
        [&]() {
          auto job = GetJob(job_id);
          running.clear();
          if (!job.ok()) return false;
          for (const Task& t : job->tasks()) {
            if (t.state() == assay::v1::TASK_RUNNING && t.worker() == worker) running.insert(t.id());
          }
          return !running.empty();
        },
        absl::Seconds(30));
    return running;
  }

  // Every task succeeded, once: one final result each, and `done` counts each task once.
  static void ExpectAllSucceededOnce(const Job& job, int cells) {
    EXPECT_EQ(job.state(), assay::v1::JOB_SUCCEEDED);
    ASSERT_EQ(job.tasks_size(), cells);
    EXPECT_EQ(job.tasks_done(), cells);
    for (const Task& t : job.tasks()) {
      EXPECT_EQ(t.state(), assay::v1::TASK_SUCCEEDED) << t.id() << ": " << t.message();
    }
  }

  const fs::path& dir() const { return dir_.path(); }

  ScopedTempDir dir_{"assay-netns"};
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<Process> coordinator_;
  std::map<int, std::unique_ptr<Process>> workers_;
};

TEST_F(NetnsTest, ThreeWorkersOnTheirOwnHostsRunAFiftyCellMatrixOverMutualTls) {
  const std::string id = SubmitMatrix("fifty", 50, 0.1);
  auto job = WaitJob(id);
  ASSERT_TRUE(job.ok()) << job.status();
  ExpectAllSucceededOnce(*job, 50);
  std::set<std::string> workers;
  for (const Task& t : job->tasks()) workers.insert(t.worker());
  EXPECT_EQ(workers, (std::set<std::string>{"w1", "w2", "w3"}));
}

TEST_F(NetnsTest, ACutLinksTasksFinishElsewhereAndItsLateResultsAreFenced) {
  const std::string id = SubmitMatrix("cut", 50, 1.0);
  std::set<std::string> stranded = RunningOn(id, "w1");
  ASSERT_FALSE(stranded.empty());
  // Cut w1's cable at the bridge: its packets are dropped, its TCP connection does not know yet.
  ASSERT_EQ(Ip({"-n", Ns("br"), "link", "set", "v2", "down"}).exit_code, 0);
  auto job = WaitJob(id);
  ASSERT_TRUE(job.ok()) << job.status();
  ExpectAllSucceededOnce(*job, 50);
  // Stranded: what w1 ran when the cable went down and the coordinator had not received. A task it
  // finished between the snapshot and the cut is w1's at attempt 1 (nothing from w1 can arrive after
  // the cut, and a late result cannot change the job: checked below) and rightly stays so.
  for (const Task& t : job->tasks()) {
    if (t.worker() == "w1" && t.attempt() == 1) stranded.erase(t.id());
  }
  ASSERT_FALSE(stranded.empty()) << "w1 finished everything it ran before the cut: nothing was tested";
  for (const Task& t : job->tasks()) {
    if (stranded.contains(t.id())) {
      EXPECT_NE(t.worker(), "w1") << t.id() << " was taken from w1 when its lease expired";
      EXPECT_EQ(t.attempt(), 2) << t.id();
    }
  }

  // The cable back: w1's results of the leases it lost arrive late and are refused; the job is as it was.
  ASSERT_EQ(Ip({"-n", Ns("br"), "link", "set", "v2", "up"}).exit_code, 0);
  const fs::path log = dir() / "coordinator.log";
  EXPECT_TRUE(WaitFor(
      [&]() {
        const std::string text = ReadFile(log).value_or("");
        return absl::StrContains(text, "result from worker w1 not taken") ||
               absl::StrContains(text, "refusing result from worker w1");
      },
      absl::Seconds(60)))
      << ReadFile(log).value_or("");
  EXPECT_TRUE(WaitFor([&]() { return ConnectedWorkers() == 3; }, absl::Seconds(60)));
  auto after = GetJob(id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->SerializeAsString(), job->SerializeAsString()) << "a fenced result changed the job";
}

TEST_F(NetnsTest, AWorkerKilledMidTaskLosesNothing) {
  const std::string id = SubmitMatrix("killed", 50, 0.5);
  std::set<std::string> stranded = RunningOn(id, "w2");
  ASSERT_FALSE(stranded.empty());
  ::kill(workers_[3]->pid(), SIGKILL);
  workers_[3]->Wait();
  workers_.erase(3);
  auto job = WaitJob(id);
  ASSERT_TRUE(job.ok()) << job.status();
  ExpectAllSucceededOnce(*job, 50);
  // Stranded: what w2 ran at the snapshot and the coordinator never received from it. A task w2
  // finished between the snapshot and the kill is w2's at attempt 1 and rightly stays so; a job
  // snapshot taken after the kill would not tell (the result w2 sent just before dying may still be
  // unread in the coordinator's socket), the final job does: nothing from w2 can arrive later.
  for (const Task& t : job->tasks()) {
    if (t.worker() == "w2" && t.attempt() == 1) stranded.erase(t.id());
  }
  ASSERT_FALSE(stranded.empty()) << "w2 finished everything it ran before it was killed: nothing was tested";
  for (const Task& t : job->tasks()) {
    if (stranded.contains(t.id())) {
      EXPECT_NE(t.worker(), "w2") << t.id() << " was taken from w2 when it died";
    }
  }
}

}  // namespace
}  // namespace assay::testing
