// deploy/: the Kubernetes manifests and the compose file parse, and carry what makes them work: the
// coordinator's data on a persistent volume, TLS and tokens when it listens beyond loopback, health
// probes that run `assay health`, workers drained before they stop (preStop, grace periods longer
// than the drain's), scaling on the coordinator's queue metric, and only flags the binaries have.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <regex>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
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

TEST(DeployTest, WorkersDrainBeforeTheyStopAndScaleOnTheQueue) {
  auto coordinator = Documents(Deploy("k8s/coordinator.yaml"));
  auto docs = Documents(Deploy("k8s/worker.yaml"));
  YAML::Node deployment = Only(docs, "Deployment");
  ASSERT_TRUE(deployment.IsDefined());
  YAML::Node pod = deployment["spec"]["template"]["spec"];
  YAML::Node container = pod["containers"][0];
  const std::vector<std::string> args = Strings(container["args"]);
  ExpectKnownFlags("assay-worker", args);
  EXPECT_EQ(Flag(args, "coordinator"),
            Only(coordinator, "Service")["metadata"]["name"].as<std::string>() + ":7171");

  // preStop: SIGTERM to the worker (its own drain), then wait for it to exit.
  const std::string pre_stop = absl::StrJoin(Strings(container["lifecycle"]["preStop"]["exec"]["command"]), " ");
  EXPECT_TRUE(absl::StrContains(pre_stop, "kill -TERM 1")) << pre_stop;
  EXPECT_TRUE(absl::StrContains(pre_stop, "while kill -0 1")) << pre_stop;
  int grace = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Flag(args, "drain-grace-seconds"), &grace));
  EXPECT_GT(pod["terminationGracePeriodSeconds"].as<int>(), grace) << "Kubernetes would kill a draining worker";

  // KEDA scales that Deployment on the coordinator's queued tasks.
  YAML::Node scaled = Only(Documents(Deploy("k8s/scaledobject.yaml")), "ScaledObject");
  ASSERT_TRUE(scaled.IsDefined());
  EXPECT_EQ(scaled["spec"]["scaleTargetRef"]["name"].as<std::string>(), deployment["metadata"]["name"].as<std::string>());
  YAML::Node trigger = scaled["spec"]["triggers"][0];
  EXPECT_EQ(trigger["type"].as<std::string>(), "prometheus");
  EXPECT_TRUE(absl::StrContains(trigger["metadata"]["query"].as<std::string>(), R"(assay_tasks{state="queued"})"));
  EXPECT_GE(scaled["spec"]["minReplicaCount"].as<int>(), 1) << "queued tasks need a worker to be seen at all";
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
