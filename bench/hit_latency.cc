// Latency of the calls a Bazel cache hit makes, one client on loopback against a real coordinator:
// GetActionResult (stdout/stderr inlined on request, as Bazel asks), then a ByteStream.Read of each
// output, the three reads in flight together as Bazel issues them. Baseline in the same run: the
// same lookups straight in RocksDB (the AC entry, then each blob's chunks), no RPC.
// And a miss, as Bazel makes one before each remote Execute: GetActionResult, FindMissingBlobs, the
// Action and Command uploaded by two ByteStream.Writes in flight together; against the same two
// blobs written straight into RocksDB (synced, as the coordinator's CAS writes them).
// Run: build/bench/bench_hit_latency [ITERATIONS]   (default 2000)
// ASSAY_BENCH_ADDRESS=HOST:PORT measures the calls against a coordinator already running there (an
// older build, say) instead of the one the benchmark starts; the RocksDB baseline is the same.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/cache_hit.h"
#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "common/remote/cas_client.h"
#include "common/rocksdb/database.h"
#include "coordinator/families.h"
#include "google/bytestream/bytestream.grpc.pb.h"
#include "tests/integration/farm.h"

namespace {
namespace reapi = build::bazel::remote::execution::v2;
using assay::Digest;
using assay::bench::Print;
using assay::bench::Samples;
}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 2000;
  assay::testing::Farm farm;
  farm.StartCoordinator();
  const char* other = std::getenv("ASSAY_BENCH_ADDRESS");
  const std::string address = other != nullptr && *other != '\0' ? other : farm.address();
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());

  assay::bench::CachedAction cached;
  if (!assay::bench::StoreCachedAction(channel, &cached)) return 1;
  const Digest& action = cached.action;
  const std::vector<Digest>& digests = cached.digests;
  const std::vector<std::string>& outputs = cached.outputs;
  const reapi::ActionResult& result = cached.result;

  Samples caps;
  auto capabilities = reapi::Capabilities::NewStub(channel);
  for (int i = 0; i < iterations; ++i) {
    const absl::Time start = absl::Now();
    reapi::GetCapabilitiesRequest request;
    reapi::ServerCapabilities got;
    grpc::ClientContext context;
    if (!capabilities->GetCapabilities(&context, request, &got).ok()) return 1;
    caps.Add(absl::Now() - start);
  }
  assay::bench::HitSamples hits;
  if (!assay::bench::MeasureHits(channel, cached, iterations, &hits)) return 1;
  Samples& get = hits.get;
  Samples& read_one = hits.read_one;
  Samples& hit = hits.whole;

  assay::bench::MissSamples misses;
  if (!assay::bench::MeasureMisses(channel, digests[0], iterations, &misses)) return 1;

  // Baseline: the same lookups in a RocksDB of the same layout, no RPC.
  auto raw = assay::Database::Open(farm.dir() / "raw-rocksdb", assay::CoordinatorDatabaseOptions()).value();
  const std::string ac_key = action.Key();
  (void)raw->Put(assay::CoordinatorFamily::kActionCache, ac_key, result.SerializeAsString(), true);
  for (size_t k = 0; k < digests.size(); ++k) {
    (void)raw->Put(assay::Family::kCasMeta, digests[k].Key(), "meta", false);
    (void)raw->Put(assay::Family::kCasChunks, digests[k].Key(), outputs[k], true);
  }
  Samples raw_hit;
  for (int i = 0; i < iterations; ++i) {
    const absl::Time start = absl::Now();
    rocksdb::PinnableSlice v;
    raw->db()->Get(rocksdb::ReadOptions(), raw->cf(assay::CoordinatorFamily::kActionCache), ac_key, &v);
    reapi::ActionResult parsed;
    parsed.ParseFromArray(v.data(), static_cast<int>(v.size()));
    for (const auto& d : digests) {
      rocksdb::PinnableSlice m, c;
      raw->db()->Get(rocksdb::ReadOptions(), raw->cf(assay::Family::kCasMeta), d.Key(), &m);
      raw->db()->Get(rocksdb::ReadOptions(), raw->cf(assay::Family::kCasChunks), d.Key(), &c);
    }
    raw_hit.Add(absl::Now() - start);
  }

  Samples raw_miss;
  for (int i = 0; i < iterations; ++i) {
    const std::string command = absl::StrCat(std::string(220, 'c'), " raw compile ", i);
    const std::string new_action = absl::StrCat(std::string(140, 'a'), " raw action ", i);
    const absl::Time start = absl::Now();
    rocksdb::PinnableSlice v;
    raw->db()->Get(rocksdb::ReadOptions(), raw->cf(assay::CoordinatorFamily::kActionCache), Digest::OfBytes(new_action).Key(), &v);
    for (const std::string* blob : {&new_action, &command}) {
      const std::string key = Digest::OfBytes(*blob).Key();
      raw->db()->Get(rocksdb::ReadOptions(), raw->cf(assay::Family::kCasMeta), key, &v);
      (void)raw->Put(assay::Family::kCasChunks, key, *blob, false);
      (void)raw->Put(assay::Family::kCasMeta, key, "meta", true);
    }
    raw_miss.Add(absl::Now() - start);
  }

  std::printf("== latency of one cache hit's calls, %d iterations, one client on loopback to %s\n", iterations,
              address.c_str());
  Print("GetCapabilities (RPC floor)", caps);
  Print("GetActionResult", get);
  Print("ByteStream.Read (6 KiB, 3 in flight)", read_one);
  Print("whole hit (get + 3 reads)", hit);
  Print("raw RocksDB lookups of a hit", raw_hit);
  std::printf("ratio whole hit / raw (mean)         %.1fx\n", hit.Mean() / raw_hit.Mean());
  std::printf("== a miss before a remote Execute, a new action each time\n");
  Print("GetActionResult (miss)", misses.get);
  Print("FindMissingBlobs (3 digests)", misses.find);
  Print("ByteStream.Write (~250 B, 2 in flight)", misses.write_one);
  Print("whole miss (get + find + 2 writes)", misses.whole);
  Print("raw RocksDB: 2 lookups + 2 synced writes", raw_miss);
  std::printf("ratio whole miss / raw (mean)        %.1fx\n", misses.whole.Mean() / raw_miss.Mean());
  return 0;
}
