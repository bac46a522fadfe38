// The CAS in an S3 bucket (--cas-store) against the embedded RocksDB, in one run, each against a real
// coordinator on loopback, the bucket a one-node Ceph radosgw on loopback (tests/integration/s3_server.h):
//  - one Bazel cache hit's calls (bench/cache_hit.h), warm: with the bucket's hot tier holding the
//    blobs (the default), with no hot tier to speak of (--hot-tier-bytes 1: every read a GET), and
//    with the hot tier and DELAY_MS more round trip to the bucket (bench/delay_proxy.h);
//  - a large blob written and read back through the coordinator (ByteStream, as Bazel moves it),
//    and by a client that moves it in the bucket itself (what the CLI and workers do);
//  - bytes through the coordinator per task (a job moving a blob each way: the CLI's upload of the
//    input the worker reads, the worker's output), with direct bucket access and without.
// Run: build/bench/bench_bucket [ITERATIONS] [MIB] [DELAY_MS]   (defaults: 1000 hits, 256 MiB, 20 ms; the
// per-task jobs move 4, 64 and 256 MiB, or 2 and MIB when MIB is below 256)
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>

#include <grpcpp/create_channel.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "assay/v1/admin.grpc.pb.h"
#include "bench/cache_hit.h"
#include "bench/delay_proxy.h"
#include "common/base/file_util.h"
#include "common/remote/cas_client.h"
#include "common/s3/s3_client.h"
#include "tests/integration/farm.h"
#include "tests/integration/s3_server.h"

namespace {

using assay::bench::HitSamples;
using assay::testing::Farm;
using assay::testing::TestS3Server;

struct RoundTrip {
  double write_s = 0, read_s = 0;
  double total() const { return write_s + read_s; }
};

struct Figures {
  HitSamples hits;
  RoundTrip bytestream, direct;
};

std::string RandomBlob(int64_t mib, uint64_t seed) {
  std::string out(static_cast<size_t>(mib) << 20, '\0');
  std::mt19937_64 random(seed);
  for (size_t i = 0; i + 8 <= out.size(); i += 8) {
    const uint64_t v = random();
    std::memcpy(&out[i], &v, 8);
  }
  return out;
}

// Writes `blob` and reads it back, through the coordinator (ByteStream) or in the bucket itself.
bool Transfer(const std::shared_ptr<grpc::Channel>& channel, const std::string& blob, bool direct,
              const std::filesystem::path& scratch, RoundTrip* out) {
  assay::RetryPolicy once;
  once.max_attempts = 1;
  once.attempt_timeout = absl::Minutes(10);
  assay::CasClient cas(channel, "", once);
  cas.set_direct_access(direct);
  const assay::Digest digest = assay::Digest::OfBytes(blob);
  absl::Time start = absl::Now();
  if (absl::Status s = cas.UploadBytes(digest, blob); !s.ok()) {
    std::fprintf(stderr, "upload: %s\n", s.ToString().c_str());
    return false;
  }
  out->write_s = absl::ToDoubleSeconds(absl::Now() - start);
  start = absl::Now();
  // ByteStream into memory as a REAPI client reads it; directly into a file as a worker does.
  absl::Status read = direct ? cas.DownloadToFile(digest, scratch, false) : cas.ReadBlob(digest).status();
  out->read_s = absl::ToDoubleSeconds(absl::Now() - start);
  std::filesystem::remove(scratch);
  if (!read.ok()) std::fprintf(stderr, "read: %s\n", read.ToString().c_str());
  if (direct && cas.direct().uploads() + cas.direct().downloads() != 2) {
    std::fprintf(stderr, "the direct round trip went through the coordinator\n");
    return false;
  }
  return read.ok();
}

bool Measure(Farm& farm, int iterations, const std::string& big, bool bucket, Figures* out) {
  auto channel = grpc::CreateChannel(farm.address(), grpc::InsecureChannelCredentials());
  assay::bench::CachedAction cached;
  if (!assay::bench::StoreCachedAction(channel, &cached)) return false;
  if (!assay::bench::MeasureHits(channel, cached, iterations, &out->hits)) return false;
  if (!Transfer(channel, big, /*direct=*/false, farm.dir() / "read-back", &out->bytestream)) return false;
  if (!bucket) return true;
  std::string other = big;
  other[0] = static_cast<char>(other[0] ^ 1);  // another blob: the first one is stored already
  return Transfer(channel, other, /*direct=*/true, farm.dir() / "read-back", &out->direct);
}

assay::v1::CacheStats Stats(Farm& farm) {
  auto admin = assay::v1::Admin::NewStub(farm.channel());
  grpc::ClientContext context;
  assay::v1::CacheStats stats;
  (void)admin->GetCacheStats(&context, assay::v1::GetCacheStatsRequest(), &stats);
  return stats;
}

// One job whose task reads a source file of `mib` and writes an output of `mib` (submitted with the
// CLI, run by a worker): the blob bytes that went through the coordinator, and around it.
bool BytesPerTask(Farm& farm, int64_t mib, int64_t* through, int64_t* direct) {
  const auto tree = farm.WriteTree(absl::StrCat("task-", mib), {{"assay.yaml", absl::StrCat(R"(
steps:
  - id: make
    inputs: [input.bin]
    run: |
      sha256sum input.bin > input.sha256
      head -c )", mib << 20, R"( /dev/urandom > big.bin
    outputs: [big.bin, input.sha256]
)")}});
  {
    std::ofstream input(tree / "input.bin", std::ios::binary);
    const std::string bytes = RandomBlob(mib, static_cast<uint64_t>(mib));
    input.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const assay::v1::CacheStats before = Stats(farm);
  assay::testing::RunResult submit = farm.Cli({"submit", tree.string(), "--wait"}, absl::Minutes(10));
  if (submit.exit_code != 0) {
    std::fprintf(stderr, "%s%s", submit.out.c_str(), submit.err.c_str());
    return false;
  }
  const assay::v1::CacheStats after = Stats(farm);
  *through = (after.cas_read_bytes() + after.cas_written_bytes()) - (before.cas_read_bytes() + before.cas_written_bytes());
  *direct = (after.direct_read_bytes() + after.direct_written_bytes()) -
            (before.direct_read_bytes() + before.direct_written_bytes());
  return true;
}

void PrintFigures(const char* name, Figures& f, Figures& base, int64_t mib, bool bucket) {
  std::printf("-- %s\n", name);
  assay::bench::Print("  whole hit (get + 3 reads)", f.hits.whole);
  std::printf("  ratio to embedded, whole hit mean        %.2fx   p50 %.2fx\n", f.hits.whole.Mean() / base.hits.whole.Mean(),
              f.hits.whole.Pct(0.5) / base.hits.whole.Pct(0.5));
  auto line = [&](const char* how, const RoundTrip& r) {
    std::printf("  %lld MiB %s: write %.2f s (%.0f MiB/s), read %.2f s (%.0f MiB/s); round trip %.2fx embedded\n",
                static_cast<long long>(mib), how, r.write_s, static_cast<double>(mib) / r.write_s, r.read_s,
                static_cast<double>(mib) / r.read_s, r.total() / base.bytestream.total());
  };
  line("through the coordinator (ByteStream)", f.bytestream);
  if (bucket) line("in the bucket itself (signed requests)", f.direct);
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int64_t mib = argc > 2 ? std::atoll(argv[2]) : 256;
  const int delay_ms = argc > 3 ? std::atoi(argv[3]) : 20;
  const std::vector<int64_t> task_mib = mib >= 256 ? std::vector<int64_t>{4, 64, 256} : std::vector<int64_t>{2, mib};
  // Each bucket setup keeps two large blobs; the per-task jobs two blobs of each size per farm.
  TestS3Server s3((6 * mib + 4 * (4 + 64 + 256) + 1024) << 20);
  if (absl::Status s = s3.Start(); !s.ok()) {
    std::fprintf(stderr, "Ceph did not start: %s\n", s.ToString().c_str());
    return 1;
  }
  const std::filesystem::path credentials = s3.dir() / "credentials";
  (void)assay::WriteFile(credentials, absl::StrCat("aws_access_key_id = ", TestS3Server::kAccessKey,
                                                   "\naws_secret_access_key = ", TestS3Server::kSecretKey, "\n"));
  const int gateway_port = std::stoi(s3.endpoint().substr(s3.endpoint().rfind(':') + 1));
  assay::bench::DelayProxy slow_link(gateway_port, absl::Milliseconds(delay_ms) / 2);
  auto bucket_flags = [&](const std::string& bucket, int port) {
    assay::S3Client client(assay::ParseS3Location(s3.Location(bucket)).value(),
                           assay::S3Credentials{TestS3Server::kAccessKey, TestS3Server::kSecretKey});
    (void)client.CreateBucket();
    const std::string location = absl::StrCat("s3://", bucket, "/farm?endpoint=http://127.0.0.1:", port);
    return std::vector<std::string>{"--cas-store", location, "--cas-credentials", credentials.string()};
  };
  const std::string big = RandomBlob(mib, 7);

  struct Setup {
    std::string name;
    std::vector<std::string> flags;
    Figures figures;
  };
  std::vector<Setup> setups = {{"embedded RocksDB (default)", {}, {}},
                               {"bucket, with its hot tier", bucket_flags("hot", gateway_port), {}},
                               {"bucket, no hot tier", bucket_flags("cold", gateway_port), {}},
                               {absl::StrCat("bucket, with its hot tier, ", delay_ms, " ms more round trip to it"),
                                bucket_flags("far", slow_link.port()), {}}};
  setups[2].flags.insert(setups[2].flags.end(), {"--hot-tier-bytes", "1"});
  for (size_t i = 0; i < setups.size(); ++i) {
    Farm farm;
    farm.StartCoordinator(setups[i].flags);
    if (!Measure(farm, iterations, big, /*bucket=*/i > 0, &setups[i].figures)) {
      std::fprintf(stderr, "%s: a call failed\n", setups[i].name.c_str());
      return 1;
    }
  }
  std::printf("== the CAS in a bucket against embedded RocksDB: %d warm cache hits, a %lld MiB blob\n", iterations,
              static_cast<long long>(mib));
  for (size_t i = 0; i < setups.size(); ++i) {
    PrintFigures(setups[i].name.c_str(), setups[i].figures, setups[0].figures, mib, i > 0);
  }

  std::printf("== blob bytes through the coordinator per task (a job: the CLI uploads an input of N MiB, a worker "
              "reads it and uploads an output of N MiB)\n");
  std::printf("  %-8s %-28s %-28s\n", "N MiB", "direct access (default)", "--cas-direct-access=false");
  std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> rows(task_mib.size());
  for (bool direct : {true, false}) {
    Farm farm;
    std::vector<std::string> flags = bucket_flags(direct ? "tasks-direct" : "tasks-through", gateway_port);
    if (!direct) flags.push_back("--cas-direct-access=false");
    farm.StartCoordinator(flags);
    farm.StartWorker("w1");
    for (size_t i = 0; i < task_mib.size(); ++i) {
      int64_t through = 0, around = 0;
      if (!BytesPerTask(farm, task_mib[i], &through, &around)) return 1;
      (direct ? rows[i].first : rows[i].second) = {through, around};
    }
  }
  for (size_t i = 0; i < task_mib.size(); ++i) {
    std::printf("  %-8lld %10lld B (+%lld direct)   %10lld B\n", static_cast<long long>(task_mib[i]),
                static_cast<long long>(rows[i].first[0]), static_cast<long long>(rows[i].first[1]),
                static_cast<long long>(rows[i].second[0]));
  }
  return 0;
}
