// A real S3 server for tests: a one-node Ceph cluster with its S3 gateway (radosgw) on 127.0.0.1, in
// a temporary folder, as ../shared/FACTS.md ("S3 on this machine") describes. One monitor, one OSD
// on memstore (its data lives in the OSD's memory and goes with it), pools of size 1, no manager,
// auth none (with `ms mon client mode = crc secure`, without which radosgw waits forever), fast paxos
// settings, and a block of free loopback ports of its own so that tests can run side by side. Every
// daemon runs in the foreground (-f) as a child of the test, its stdin /dev/null and its output in a
// log file of the folder, and is stopped by pid: the destructor stops the gateway, the OSD and the
// monitor, in that order. Needs ceph-mon, ceph-osd, radosgw and ceph-common (scripts/install-deps.sh).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/base/file_util.h"
#include "tests/integration/process.h"

namespace assay::testing {

class TestS3Server {
 public:
  static constexpr char kAccessKey[] = "ASSAYTESTACCESSKEY01";
  static constexpr char kSecretKey[] = "assay-test-secret-key-0123456789abcdef0123";

  // `memstore_bytes`: what the in-memory OSD holds (RAM it may take), 1 GiB by default.
  explicit TestS3Server(int64_t memstore_bytes = int64_t{1} << 30);
  ~TestS3Server();
  TestS3Server(const TestS3Server&) = delete;
  TestS3Server& operator=(const TestS3Server&) = delete;

  // Makes the cluster, starts its daemons, waits until the gateway answers and creates the S3 user
  // (kAccessKey / kSecretKey). The error names the step that failed and quotes its log.
  absl::Status Start();
  // Stops the gateway alone (SIGKILL by pid), as an outage of the S3 service; StartGateway brings
  // it back on the same port and waits until it answers.
  void StopGateway();
  absl::Status StartGateway();

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(gateway_port_); }
  // s3://BUCKET/PREFIX?endpoint=...&region=us-east-1
  std::string Location(const std::string& bucket, const std::string& prefix = "") const;
  const std::filesystem::path& dir() const { return dir_.path(); }
  // How long Start() took, and each of its steps ("mkfs 0.1s, ...").
  absl::Duration start_time() const { return start_time_; }
  const std::string& start_steps() const { return start_steps_; }

 private:
  absl::Status WriteConfig();
  absl::Status StartMonitor();
  absl::Status StartOsd();
  // Runs a Ceph tool with this cluster's configuration; its output, or an error quoting it.
  absl::StatusOr<std::string> Tool(const std::string& program, std::vector<std::string> args);
  std::string LogTail(const std::string& name) const;

  const int64_t memstore_bytes_;
  ScopedTempDir dir_;
  std::filesystem::path conf_;
  std::string fsid_;
  int monitor_port_ = 0;
  int gateway_port_ = 0;
  int first_daemon_port_ = 0;  // the OSD's range (ms bind port min/max)
  int last_daemon_port_ = 0;
  std::unique_ptr<Process> monitor_, osd_, gateway_;
  absl::Duration start_time_;
  std::string start_steps_;
};

}  // namespace assay::testing
