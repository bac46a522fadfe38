// deploy/: the Kubernetes manifests and the compose file parse, and carry what makes them work: the
// coordinator's data on a persistent volume, TLS and tokens when it listens beyond loopback, health
// probes that run `assay health`, workers drained before they stop (preStop, grace periods longer
// than the drain's), worker pools each scaled on the queued tasks it can run (by the scheduler's own
// label rule), and only flags the binaries have.
#include <gtest/gtest.h>
#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <regex>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "coordinator/queued_requirements.h"
#include "coordinator/scheduler.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {

std::string Deploy(const std::string& path) { return SourceDir() + "/deploy/" + path; }

// Every document of a multi-document YAML file, by kind.
std::multimap<std::string, YAML::Node> Documents(const std::string& path) {
  std::multimap<std::string, YAML::Node> out;
  for (const YAML::Node& doc : YAML::LoadAllFromFile(path)) out.emplace(doc["kind"].as<std::string>(), doc);
  return out;
}

YAML::Node Only(const std::multimap<std::string, YAML::Node>& docs, const std::string& kind) {
  EXPECT_EQ(docs.count(kind), 1u) << kind;
  auto it = docs.find(kind);
  return it == docs.end() ? YAML::Node() : it->second;
}

std::vector<std::string> Strings(const YAML::Node& list) {
  std::vector<std::string> out;
  for (const auto& item : list) out.push_back(item.as<std::string>());
  return out;
}

// The value of --name=VALUE among `args` ("" if absent).
std::string Flag(const std::vector<std::string>& args, const std::string& name) {
  for (const std::string& a : args) {
    if (absl::StartsWith(a, "--" + name + "=")) return a.substr(name.size() + 3);
  }
  return "";
}

// Each --flag in `args` is one the program's --help lists.
void ExpectKnownFlags(const std::string& program, const std::vector<std::string>& args) {
  const std::string help = RunCommand({BinaryPath(program), "--help"}).out;
  ASSERT_FALSE(help.empty()) << program;
  for (const std::string& a : args) {
    if (!absl::StartsWith(a, "--")) continue;
    const std::string flag = a.substr(0, a.find('='));
    EXPECT_TRUE(std::regex_search(help, std::regex(flag + "[ =,]"))) << program << " has no flag " << flag;
  }
}

TEST(DeployTest, TheCoordinatorIsOneReplicaOnAPersistentVolumeWithTlsTokensAndHealthProbes) {
  auto docs = Documents(Deploy("k8s/coordinator.yaml"));
  YAML::Node set = Only(docs, "StatefulSet");
  ASSERT_TRUE(set.IsDefined());
  EXPECT_EQ(set["spec"]["replicas"].as<int>(), 1) << "one coordinator owns its database";
  YAML::Node container = set["spec"]["template"]["spec"]["containers"][0];
  const std::vector<std::string> args = Strings(container["args"]);
  ExpectKnownFlags("assay-coordinator", args);
  EXPECT_EQ(Flag(args, "listen"), "0.0.0.0:7171");
  EXPECT_FALSE(Flag(args, "tls-cert").empty() || Flag(args, "tls-key").empty() || Flag(args, "token-file").empty())
      << "beyond loopback the coordinator needs TLS and tokens";

  // The data volume is a claim template mounted where the image keeps its database.
  const std::string claim = set["spec"]["volumeClaimTemplates"][0]["metadata"]["name"].as<std::string>();
  EXPECT_FALSE(set["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"].as<std::string>().empty());
  std::string data_mount;
  for (const auto& mount : container["volumeMounts"]) {
    if (mount["name"].as<std::string>() == claim) data_mount = mount["mountPath"].as<std::string>();
  }
  EXPECT_EQ(data_mount, "/var/lib/assay");
  const std::string dockerfile = ReadFile(Deploy("docker/Dockerfile.coordinator")).value_or("");
  EXPECT_TRUE(absl::StrContains(dockerfile, R"("--data", "/var/lib/assay")")) << dockerfile;

  for (const char* probe : {"readinessProbe", "livenessProbe"}) {
    const std::vector<std::string> command = Strings(container[probe]["exec"]["command"]);
    ASSERT_FALSE(command.empty()) << probe;
    EXPECT_EQ(command.front(), "assay") << probe;
    EXPECT_EQ(command.back(), "health") << probe;
    ExpectKnownFlags("assay", command);
  }
  YAML::Node service = Only(docs, "Service");
  bool grpc_port = false;
  for (const auto& port : service["spec"]["ports"]) grpc_port |= port["port"].as<int>() == 7171;
  EXPECT_TRUE(grpc_port);
}

// The labels a worker pod of `deployment` offers: what the worker detects in the image on an amd64
// node (worker/host_facts.cc; the executor is the image's ENTRYPOINT's), and its --label flags.
std::vector<std::string> PodLabels(const YAML::Node& deployment) {
  const std::string pod = deployment["metadata"]["name"].as<std::string>() + "-7c9f5d-x2x4q";
  std::vector<std::string> labels = {"os=linux",   "arch=x86_64", "executor=process", "OSFamily=Linux",
                                     "ISA=x86-64", "host=" + pod};
  // qemu-system-arm brings arm and aarch64, qemu-system-misc riscv32, riscv64 and others.
  for (const char* emulator : {"aarch64", "arm", "riscv32", "riscv64", "m68k", "xtensa"}) {
    labels.push_back(absl::StrCat("qemu-system-", emulator, "=7.2.11"));
  }
  for (const std::string& a : Strings(deployment["spec"]["template"]["spec"]["containers"][0]["args"])) {
    if (absl::StartsWith(a, "--label=")) labels.push_back(a.substr(8));
  }
  return labels;
}

TEST(DeployTest, WorkerPoolsDrainBeforeTheyStopAndEachScalesOnItsOwnQueue) {
  auto coordinator = Documents(Deploy("k8s/coordinator.yaml"));
  auto docs = Documents(Deploy("k8s/worker.yaml"));
  auto scaled = Documents(Deploy("k8s/scaledobject.yaml"));
  EXPECT_EQ(docs.count("Deployment"), 2u) << "a general pool and a qemu pool";
  EXPECT_EQ(scaled.count("ScaledObject"), docs.count("Deployment")) << "one ScaledObject per pool";
  std::set<std::string> targets, selectors;
  for (const auto& [kind, deployment] : docs) {
    const std::string name = deployment["metadata"]["name"].as<std::string>();
    SCOPED_TRACE(name);
    YAML::Node pod = deployment["spec"]["template"]["spec"];
    YAML::Node container = pod["containers"][0];
    const std::vector<std::string> args = Strings(container["args"]);
    ExpectKnownFlags("assay-worker", args);
    EXPECT_EQ(Flag(args, "coordinator"), Only(coordinator, "Service")["metadata"]["name"].as<std::string>() + ":7171");
    EXPECT_EQ(pod["nodeSelector"]["kubernetes.io/arch"].as<std::string>(), "amd64") << "PodLabels says arch=x86_64";
    EXPECT_EQ(deployment["spec"]["selector"]["matchLabels"]["pool"].as<std::string>(),
              deployment["spec"]["template"]["metadata"]["labels"]["pool"].as<std::string>());
    EXPECT_TRUE(selectors.insert(deployment["spec"]["selector"]["matchLabels"]["pool"].as<std::string>()).second)
        << "two Deployments would fight over the same pods";

    // preStop: SIGTERM to the worker (its own drain), then wait for it to exit.
    const std::string pre_stop = absl::StrJoin(Strings(container["lifecycle"]["preStop"]["exec"]["command"]), " ");
    EXPECT_TRUE(absl::StrContains(pre_stop, "kill -TERM 1")) << pre_stop;
    EXPECT_TRUE(absl::StrContains(pre_stop, "while kill -0 1")) << pre_stop;
    int grace = 0;
    ASSERT_TRUE(absl::SimpleAtoi(Flag(args, "drain-grace-seconds"), &grace));
    EXPECT_GT(pod["terminationGracePeriodSeconds"].as<int>(), grace) << "Kubernetes would kill a draining worker";

    // KEDA scales this Deployment, and only it, on the coordinator's queued tasks.
    int scaling = 0;
    for (const auto& [k, object] : scaled) {
      if (object["spec"]["scaleTargetRef"]["name"].as<std::string>() != name) continue;
      ++scaling;
      YAML::Node trigger = object["spec"]["triggers"][0];
      EXPECT_EQ(trigger["type"].as<std::string>(), "prometheus");
      EXPECT_TRUE(absl::StrContains(trigger["metadata"]["query"].as<std::string>(), "sum(assay_tasks_queued{requires=~"));
      EXPECT_GE(object["spec"]["minReplicaCount"].as<int>(), 1) << "queued tasks need a worker to be seen at all";
    }
    EXPECT_EQ(scaling, 1);
    targets.insert(name);
  }
  EXPECT_EQ(targets, (std::set<std::string>{"assay-worker-general", "assay-worker-qemu"}));
  const std::string dockerfile = ReadFile(Deploy("docker/Dockerfile.worker")).value_or("");
  EXPECT_TRUE(absl::StrContains(dockerfile, R"("--executor", "process")")) << "PodLabels says executor=process";
}

// The regular expression of `requires=~"..."` in a query, as Prometheus matches it: anchored at both
// ends (RE2's full match).
std::unique_ptr<RE2> RequiresPattern(const std::string& query) {
  const std::string open = R"(requires=~")";
  const size_t start = query.find(open);
  const size_t end = start == std::string::npos ? start : query.find(R"("})", start);
  if (end == std::string::npos) return nullptr;
  auto re = std::make_unique<RE2>(query.substr(start + open.size(), end - start - open.size()));
  return re->ok() ? std::move(re) : nullptr;
}

// Every set of at most `n` of `labels`, as RequirementsKey writes it, with the set itself.
std::vector<std::pair<std::string, std::vector<std::string>>> Sets(const std::vector<std::string>& labels, size_t n) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  std::vector<std::string> chosen;
  std::function<void(size_t)> extend = [&](size_t from) {
    google::protobuf::RepeatedPtrField<std::string> field(chosen.begin(), chosen.end());
    out.emplace_back(RequirementsKey(field), chosen);
    if (chosen.size() == n) return;
    for (size_t i = from; i < labels.size(); ++i) {
      chosen.push_back(labels[i]);
      extend(i + 1);
      chosen.pop_back();
    }
  };
  extend(0);
  return out;
}

// What KEDA sums for each pool, checked against the scheduler's own rule (LabelsMatch): a pool is
// never grown for tasks its workers cannot run, no set is counted twice, and every set the queries
// promise (all but emulator versions and emulators the queries do not name) is counted, by the
// general pool when it can run it, else by the qemu pool.
TEST(DeployTest, EachQueuedSetOfLabelsIsCountedByOnePoolThatCanRunIt) {
  struct Pool {
    std::vector<std::string> labels;
    std::unique_ptr<RE2> requires_pattern;
  };
  std::map<std::string, Pool> pools;
  for (const auto& [kind, deployment] : Documents(Deploy("k8s/worker.yaml"))) {
    pools[deployment["metadata"]["name"].as<std::string>()].labels = PodLabels(deployment);
  }
  for (const auto& [kind, object] : Documents(Deploy("k8s/scaledobject.yaml"))) {
    const std::string query = object["spec"]["triggers"][0]["metadata"]["query"].as<std::string>();
    auto pattern = RequiresPattern(query);
    ASSERT_NE(pattern, nullptr) << "no requires=~\"REGEX\" in " << query;
    pools[object["spec"]["scaleTargetRef"]["name"].as<std::string>()].requires_pattern = std::move(pattern);
  }
  ASSERT_EQ(pools.size(), 2u);
  const Pool& general = pools.at("assay-worker-general");
  const Pool& qemu = pools.at("assay-worker-qemu");
  ASSERT_TRUE(general.requires_pattern && qemu.requires_pattern);
  EXPECT_TRUE(LabelsMatch({"qemu"}, qemu.labels) && !LabelsMatch({"qemu"}, general.labels));
  auto counted_by = [&](const std::string& key) {
    std::vector<std::string> names;
    for (const auto& [name, pool] : pools) {
      if (RE2::FullMatch(key, *pool.requires_pattern)) names.push_back(name);
    }
    return absl::StrJoin(names, " ");
  };
  // The brief's cases, and a few that read as documentation.
  EXPECT_EQ(counted_by(""), "assay-worker-general");
  EXPECT_EQ(counted_by("arch=x86_64,os=linux"), "assay-worker-general");
  EXPECT_EQ(counted_by("qemu-system-arm"), "assay-worker-general") << "every pod has the image's emulators";
  EXPECT_EQ(counted_by("qemu"), "assay-worker-qemu");
  EXPECT_EQ(counted_by("ISA=x86-64,OSFamily=Linux,qemu"), "assay-worker-qemu");
  EXPECT_EQ(counted_by("arm,qemu"), "") << "no pod offers arm";
  EXPECT_EQ(counted_by("gpu"), "");
  EXPECT_EQ(counted_by("other"), "") << "the sets beyond the metric's bound of 50";

  const std::vector<std::string> universe = {
      "os", "os=linux", "os=windows", "arch", "arch=x86_64", "arch=aarch64", "executor", "executor=process",
      "executor=sandbox", "host", "host=elsewhere", "OSFamily", "OSFamily=Linux", "ISA", "ISA=x86-64", "qemu",
      "qemu=8", "qemu-system-arm", "qemu-system-riscv32", "qemu-system-arm=7.2.11", "qemu-system-m68k",
      "qemu-system-x86_64", "arm", "gpu", "container", "docker", "other"};
  const std::set<std::string> unpromised = {"qemu-system-arm=7.2.11", "qemu-system-m68k"};
  for (const auto& [key, set] : Sets(universe, 3)) {
    const std::string by = counted_by(key);
    for (const auto& [name, pool] : pools) {
      if (absl::StrContains(" " + by + " ", " " + name + " ")) {
        EXPECT_TRUE(LabelsMatch(set, pool.labels)) << name << " would grow for tasks it cannot run: " << key;
      }
    }
    if (std::any_of(set.begin(), set.end(), [&](const std::string& l) { return unpromised.contains(l); })) {
      EXPECT_TRUE(by.empty() || by.find(' ') == std::string::npos) << key << " counted twice: " << by;
    } else if (LabelsMatch(set, general.labels)) {
      EXPECT_EQ(by, "assay-worker-general") << key;
    } else if (LabelsMatch(set, qemu.labels)) {
      EXPECT_EQ(by, "assay-worker-qemu") << key;
    } else {
      EXPECT_EQ(by, "") << key << ": no pool runs it";
    }
  }
}

TEST(DeployTest, TheComposeFileStartsHealthyCoordinatorThenDrainableWorkers) {
  YAML::Node compose = YAML::LoadFile(Deploy("compose/docker-compose.yml"));
  YAML::Node coordinator = compose["services"]["coordinator"];
  YAML::Node worker = compose["services"]["worker"];
  ASSERT_TRUE(coordinator.IsDefined() && worker.IsDefined());
  const std::vector<std::string> coordinator_args = Strings(coordinator["command"]);
  ExpectKnownFlags("assay-coordinator", coordinator_args);
  EXPECT_FALSE(Flag(coordinator_args, "tls-cert").empty() || Flag(coordinator_args, "token-file").empty());
  bool data_volume = false;
  for (const auto& v : coordinator["volumes"]) data_volume |= absl::EndsWith(v.as<std::string>(), ":/var/lib/assay");
  EXPECT_TRUE(data_volume);
  for (const auto& port : coordinator["ports"]) {
    EXPECT_TRUE(absl::StartsWith(port.as<std::string>(), "127.0.0.1:")) << "published beyond the host's loopback";
  }
  const std::vector<std::string> health = Strings(coordinator["healthcheck"]["test"]);
  EXPECT_EQ(health.back(), "health");
  ExpectKnownFlags("assay", health);

  const std::vector<std::string> worker_args = Strings(worker["command"]);
  ExpectKnownFlags("assay-worker", worker_args);
  EXPECT_EQ(Flag(worker_args, "coordinator"), "coordinator:7171");
  EXPECT_EQ(worker["depends_on"]["coordinator"]["condition"].as<std::string>(), "service_healthy");
  int grace = 0, stop = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Flag(worker_args, "drain-grace-seconds"), &grace));
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripSuffix(worker["stop_grace_period"].as<std::string>(), "s"), &stop));
  EXPECT_GT(stop, grace);
}

}  // namespace
}  // namespace assay::testing
