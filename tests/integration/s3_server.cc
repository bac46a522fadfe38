#include "tests/integration/s3_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/base/status_util.h"

namespace assay::testing {
namespace fs = std::filesystem;

namespace {

constexpr int kPorts = 16;  // monitor, gateway, and the OSD's range

bool PortFree(int port, std::vector<int>& held) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr = LoopbackAddress(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return false;
  }
  held.push_back(fd);
  return true;
}

// The first of kPorts consecutive ports free on 127.0.0.1, below the kernel's ephemeral range
// (32768 and up here) so that no outgoing connection takes one meanwhile; 0 when none was found.
int FreePortBlock() {
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> base(20000, 32700 - kPorts);
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int first = base(random);
    std::vector<int> held;
    bool free = true;
    for (int port = first; free && port < first + kPorts; ++port) free = PortFree(port, held);
    for (int fd : held) ::close(fd);
    if (free) return first;
  }
  return 0;
}

std::string NewUuid() {
  return std::string(absl::StripAsciiWhitespace(ReadFile("/proc/sys/kernel/random/uuid").value_or("")));
}

std::string Seconds(absl::Duration d) { return absl::StrFormat("%.2fs", absl::ToDoubleSeconds(d)); }

}  // namespace

TestS3Server::TestS3Server(int64_t memstore_bytes) : memstore_bytes_(memstore_bytes), dir_("assay-s3") {}

TestS3Server::~TestS3Server() {
  // The gateway first: while it shuts down it talks to the cluster, which must still be there.
  StopGateway();
  osd_.reset();  // SIGTERM by pid (Process), SIGKILL if it still runs 10 s later
  monitor_.reset();
}

std::string TestS3Server::Location(const std::string& bucket, const std::string& prefix) const {
  return absl::StrCat("s3://", bucket, prefix.empty() ? "" : "/", prefix, "?endpoint=", endpoint(),
                      "&region=us-east-1");
}

std::string TestS3Server::LogTail(const std::string& name) const {
  const std::string text = ReadFile(dir() / name).value_or("(no log)");
  return text.size() > 3000 ? "..." + text.substr(text.size() - 3000) : text;
}

absl::StatusOr<std::string> TestS3Server::Tool(const std::string& program, std::vector<std::string> args) {
  args.insert(args.begin(), {program, "-c", conf_.string()});
  RunResult result = RunCommand(args, absl::Seconds(60));
  if (result.exit_code != 0) {
    return absl::InternalError(absl::StrCat(absl::StrJoin(args, " "), " exited with ", result.exit_code, ": ",
                                            result.err, result.out));
  }
  return result.out;
}

absl::Status TestS3Server::WriteConfig() {
  const int first = FreePortBlock();
  if (first == 0) return absl::UnavailableError("no block of free ports on 127.0.0.1");
  monitor_port_ = first;
  gateway_port_ = first + 1;
  first_daemon_port_ = first + 2;
  last_daemon_port_ = first + kPorts - 1;
  const std::string d = dir().string();
  fsid_ = NewUuid();
  conf_ = dir() / "ceph.conf";
  for (const char* sub : {"mon", "osd", "run", "log", "rgw"}) fs::create_directories(dir() / sub);
  // Misspelt keys are ignored silently (`ceph-conf -D` lists the real ones).
  const std::string conf = absl::StrCat(
      "[global]\nfsid = ", fsid_, "\nmon host = v2:127.0.0.1:", monitor_port_,
      "\nmon initial members = a\n"
      "auth cluster required = none\nauth service required = none\nauth client required = none\n"
      "ms mon client mode = crc secure\nms bind msgr1 = false\n",
      // Every daemon on loopback only (an OSD binds every address otherwise).
      "public addr = 127.0.0.1\ncluster addr = 127.0.0.1\npublic network = 127.0.0.0/8\ncluster network = 127.0.0.0/8\n",
      "ms bind port min = ", first_daemon_port_, "\nms bind port max = ", last_daemon_port_, "\n",
      "run dir = ", d, "/run\nadmin socket = ", d, "/run/$name.asok\nlog file = ", d, "/log/$name.log\n",
      "mon data = ", d, "/mon/$cluster-$id\nosd data = ", d, "/osd/$cluster-$id\n",
      "osd objectstore = memstore\nmemstore device bytes = ", memstore_bytes_, "\n"
      "osd pool default size = 1\nosd pool default min size = 1\n"
      "osd pool default pg num = 1\nosd pool default pgp num = 1\n"
      "osd pool default pg autoscale mode = off\nmon allow pool size one = true\n"
      "mon warn on pool no redundancy = false\n"
      "paxos propose interval = 0.05\npaxos min wait = 0.01\n"
      // A killed gateway's watches expire soon, or the next one's metadata writes (a new bucket)
      // wait for them (30 s by default) after StopGateway/StartGateway.
      "osd client watch timeout = 3\n",
      // tcp_nodelay: without it beast sends a small answer's body only after the client ACKs its headers,
      // 40 ms later (Nagle against delayed ACK): every small read would cost 40 ms.
      "rgw frontends = beast endpoint=127.0.0.1:", gateway_port_, " tcp_nodelay=1\nrgw data = ", d, "/rgw\n",
      "rgw thread pool size = 32\n");
  return WriteFile(conf_, conf);
}

absl::Status TestS3Server::StartMonitor() {
  const std::string monmap = (dir() / "monmap").string();
  absl::StatusOr<std::string> made =
      Tool("/usr/bin/monmaptool", {"--create", "--fsid", fsid_, "--addv", "a",
                                   absl::StrCat("[v2:127.0.0.1:", monitor_port_, "]"), monmap});
  if (made.ok()) made = Tool("/usr/bin/ceph-mon", {"--mkfs", "-i", "a", "--monmap", monmap});
  if (!made.ok()) return made.status();
  monitor_ = std::make_unique<Process>(
      std::vector<std::string>{"/usr/bin/ceph-mon", "-c", conf_.string(), "-i", "a", "-f"}, dir() / "mon.out");
  return absl::OkStatus();
}

absl::Status TestS3Server::StartOsd() {
  const std::string uuid = NewUuid();
  // `osd new` waits for the monitor to answer (up to its connect timeout).
  absl::StatusOr<std::string> id = Tool("/usr/bin/ceph", {"--connect-timeout", "30", "osd", "new", uuid});
  if (!id.ok()) return Annotate(id.status(), LogTail("mon.out") + LogTail("log/mon.a.log"));
  const std::string osd = std::string(absl::StripAsciiWhitespace(*id));
  fs::create_directories(dir() / "osd" / ("ceph-" + osd));
  absl::StatusOr<std::string> made = Tool("/usr/bin/ceph-osd", {"-i", osd, "--mkfs", "--osd-uuid", uuid});
  if (!made.ok()) return made.status();
  osd_ = std::make_unique<Process>(
      std::vector<std::string>{"/usr/bin/ceph-osd", "-c", conf_.string(), "-i", osd, "-f"}, dir() / "osd.out");
  return absl::OkStatus();
}

absl::Status TestS3Server::StartGateway() {
  gateway_ = std::make_unique<Process>(
      std::vector<std::string>{"/usr/bin/radosgw", "-c", conf_.string(), "-n", "client.rgw", "-f"},
      dir() / "rgw.out");
  // Anonymous GET / lists no buckets with 200 once the gateway serves; it first creates its pools.
  const bool up = WaitFor([&] { return HttpGet(gateway_port_, "/").ok() || !gateway_->running(); },
                          absl::Seconds(60));
  if (!up || !gateway_->running()) {
    return absl::UnavailableError(absl::StrCat("radosgw did not answer on ", endpoint(), " within 60 s: ",
                                               LogTail("rgw.out"), LogTail("log/client.rgw.log")));
  }
  return absl::OkStatus();
}

void TestS3Server::StopGateway() {
  // SIGKILL: on SIGTERM radosgw takes 3-5 s to finish its background work when it started only
  // seconds before, and it keeps no state of its own (the objects are in the OSD).
  if (gateway_ != nullptr) gateway_->Kill(SIGKILL);
  gateway_.reset();
}

absl::Status TestS3Server::Start() {
  const absl::Time start = absl::Now();
  absl::Time step = start;
  auto lap = [&](const char* name) {
    absl::StrAppend(&start_steps_, start_steps_.empty() ? "" : ", ", name, " ", Seconds(absl::Now() - step));
    step = absl::Now();
  };
  if (absl::Status s = WriteConfig(); !s.ok()) return s;
  if (absl::Status s = StartMonitor(); !s.ok()) return s;
  lap("monitor");
  if (absl::Status s = StartOsd(); !s.ok()) return s;
  lap("osd");
  if (absl::Status s = StartGateway(); !s.ok()) return s;
  lap("gateway");
  absl::StatusOr<std::string> user =
      Tool("/usr/bin/radosgw-admin", {"user", "create", "--uid", "assay-test", "--display-name", "Assay tests",
                                      "--access-key", kAccessKey, "--secret-key", kSecretKey});
  if (!user.ok()) return user.status();
  lap("user");
  start_time_ = absl::Now() - start;
  return absl::OkStatus();
}

}  // namespace assay::testing
