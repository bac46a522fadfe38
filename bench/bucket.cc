// The CAS in an S3 bucket (--cas-store) against the embedded RocksDB, in one run, each against a real
// coordinator on loopback, the bucket a one-node Ceph radosgw on loopback (tests/integration/s3_server.h):
//  - one Bazel cache hit's calls (bench/cache_hit.h), warm: with the bucket's hot tier holding the
//    blobs (the default), and with no hot tier to speak of (--hot-tier-bytes 1: every read a GET);
//  - a large blob written with ByteStream.Write and read back with ByteStream.Read.
// Run: build/bench/bench_bucket [ITERATIONS] [MIB]   (defaults: 1000 hits, a 256 MiB blob; the test
// Ceph's memstore holds 1 GiB, so a 1 GiB blob does not fit it)
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include <grpcpp/create_channel.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/cache_hit.h"
#include "common/base/file_util.h"
#include "common/remote/cas_client.h"
#include "common/s3/s3_client.h"
#include "tests/integration/farm.h"
#include "tests/integration/s3_server.h"

namespace {

using assay::bench::HitSamples;
using assay::testing::Farm;
using assay::testing::TestS3Server;

struct Figures {
  HitSamples hits;
  double write_s = 0, read_s = 0;
};

bool Measure(Farm& farm, int iterations, const std::string& big, Figures* out) {
  auto channel = grpc::CreateChannel(farm.address(), grpc::InsecureChannelCredentials());
  assay::bench::CachedAction cached;
  if (!assay::bench::StoreCachedAction(channel, &cached)) return false;
  if (!assay::bench::MeasureHits(channel, cached, iterations, &out->hits)) return false;
  assay::RetryPolicy once;
  once.max_attempts = 1;
  once.attempt_timeout = absl::Minutes(10);
  assay::CasClient cas(channel, "", once);
  const assay::Digest digest = assay::Digest::OfBytes(big);
  absl::Time start = absl::Now();
  if (absl::Status s = cas.UploadBytes(digest, big); !s.ok()) {
    std::fprintf(stderr, "upload: %s\n", s.ToString().c_str());
    return false;
  }
  out->write_s = absl::ToDoubleSeconds(absl::Now() - start);
  start = absl::Now();
  auto back = cas.ReadBlob(digest);
  out->read_s = absl::ToDoubleSeconds(absl::Now() - start);
  return back.ok() && back->size() == big.size();
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int64_t mib = argc > 2 ? std::atoll(argv[2]) : 256;
  TestS3Server s3;
  if (absl::Status s = s3.Start(); !s.ok()) {
    std::fprintf(stderr, "Ceph did not start: %s\n", s.ToString().c_str());
    return 1;
  }
  const std::filesystem::path credentials = s3.dir() / "credentials";
  (void)assay::WriteFile(credentials, absl::StrCat("aws_access_key_id = ", TestS3Server::kAccessKey,
                                                   "\naws_secret_access_key = ", TestS3Server::kSecretKey, "\n"));
  auto bucket_flags = [&](const std::string& bucket) {
    assay::S3Client client(assay::ParseS3Location(s3.Location(bucket)).value(),
                           assay::S3Credentials{TestS3Server::kAccessKey, TestS3Server::kSecretKey});
    (void)client.CreateBucket();
    return std::vector<std::string>{"--cas-store", s3.Location(bucket, "farm"), "--cas-credentials", credentials.string()};
  };
  std::string big(static_cast<size_t>(mib) << 20, '\0');
  std::mt19937_64 random(7);
  for (size_t i = 0; i + 8 <= big.size(); i += 8) {
    const uint64_t v = random();
    std::memcpy(&big[i], &v, 8);
  }

  struct Setup {
    const char* name;
    std::vector<std::string> flags;
    Figures figures;
  };
  std::vector<Setup> setups = {{"embedded RocksDB (default)", {}, {}},
                               {"bucket, with its hot tier", bucket_flags("hot"), {}},
                               {"bucket, no hot tier", bucket_flags("cold"), {}}};
  setups[2].flags.insert(setups[2].flags.end(), {"--hot-tier-bytes", "1"});
  for (Setup& setup : setups) {
    Farm farm;
    farm.StartCoordinator(setup.flags);
    // A distinct blob per setup would change nothing: each farm has a store of its own.
    if (!Measure(farm, iterations, big, &setup.figures)) {
      std::fprintf(stderr, "%s: a call failed\n", setup.name);
      return 1;
    }
  }
  std::printf("== the CAS in a bucket against embedded RocksDB: %d warm cache hits, a %lld MiB blob\n", iterations,
              static_cast<long long>(mib));
  const Figures& base = setups[0].figures;
  for (Setup& setup : setups) {
    std::printf("-- %s\n", setup.name);
    assay::bench::Print("  whole hit (get + 3 reads)", setup.figures.hits.whole);
    std::printf("  ratio to embedded, whole hit mean        %.2fx   p50 %.2fx\n",
                setup.figures.hits.whole.Mean() / base.hits.whole.Mean(),
                setup.figures.hits.whole.Pct(0.5) / setups[0].figures.hits.whole.Pct(0.5));
    std::printf("  %lld MiB: ByteStream.Write %.2f s (%.0f MiB/s), Read %.2f s (%.0f MiB/s); round trip %.2fx embedded\n",
                static_cast<long long>(mib), setup.figures.write_s, static_cast<double>(mib) / setup.figures.write_s,
                setup.figures.read_s, static_cast<double>(mib) / setup.figures.read_s,
                (setup.figures.write_s + setup.figures.read_s) / (base.write_s + base.read_s));
  }
  return 0;
}
