// Latency of the calls a Bazel cache hit makes, one client on loopback against a real coordinator:
// GetActionResult (stdout/stderr inlined on request, as Bazel asks), then a ByteStream.Read of each
// output, the three reads in flight together as Bazel issues them. Baseline in the same run: the
// same lookups straight in RocksDB (the AC entry, then each blob's chunks), no RPC.
// Run: build/bench/bench_hit_latency [ITERATIONS]   (default 2000)
#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "common/remote/cas_client.h"
#include "common/rocksdb/database.h"
#include "coordinator/families.h"
#include "google/bytestream/bytestream.grpc.pb.h"
#include "tests/integration/farm.h"

namespace {

namespace reapi = build::bazel::remote::execution::v2;
using assay::Digest;

struct Samples {
  std::vector<double> us;
  void Add(absl::Duration d) { us.push_back(absl::ToDoubleMicroseconds(d)); }
  double Pct(double p) {
    std::sort(us.begin(), us.end());
    return us.empty() ? 0 : us[std::min(us.size() - 1, static_cast<size_t>(p * static_cast<double>(us.size())))];
  }
  double Mean() const {
    double s = 0;
    for (double v : us) s += v;
    return us.empty() ? 0 : s / static_cast<double>(us.size());
  }
};

void Print(const char* name, Samples& s) {
  std::printf("%-34s p50 %7.0f us   p90 %7.0f us   p99 %7.0f us   mean %7.0f us\n", name, s.Pct(0.5), s.Pct(0.9),
              s.Pct(0.99), s.Mean());
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 2000;
  assay::testing::Farm farm;
  farm.StartCoordinator();
  auto channel = grpc::CreateChannel(farm.address(), grpc::InsecureChannelCredentials());
  auto bs = google::bytestream::ByteStream::NewStub(channel);
  auto cas = reapi::ContentAddressableStorage::NewStub(channel);
  auto ac = reapi::ActionCache::NewStub(channel);

  // One action like a C++ compile: an object, a dependency file and a small third output.
  std::vector<std::string> outputs = {std::string(6044, 'o'), std::string(3296, 'd'), std::string(327, 'x')};
  std::vector<Digest> digests;
  reapi::BatchUpdateBlobsRequest upload;
  reapi::ActionResult result;
  for (size_t i = 0; i < outputs.size(); ++i) {
    digests.push_back(Digest::OfBytes(outputs[i]));
    auto* r = upload.add_requests();
    *r->mutable_digest() = digests.back().ToProto();
    r->set_data(outputs[i]);
    auto* f = result.add_output_files();
    f->set_path(absl::StrCat("out/file", i));
    *f->mutable_digest() = digests.back().ToProto();
  }
  const Digest action = Digest::OfBytes("an action");
  {
    reapi::BatchUpdateBlobsResponse uploaded;
    grpc::ClientContext c1;
    if (!cas->BatchUpdateBlobs(&c1, upload, &uploaded).ok()) return 1;
    reapi::UpdateActionResultRequest update;
    *update.mutable_action_digest() = action.ToProto();
    *update.mutable_action_result() = result;
    reapi::ActionResult stored;
    grpc::ClientContext c2;
    if (!ac->UpdateActionResult(&c2, update, &stored).ok()) return 1;
  }

  Samples get, read_one, hit, caps;
  auto capabilities = reapi::Capabilities::NewStub(channel);
  for (int i = 0; i < iterations; ++i) {
    const absl::Time start = absl::Now();
    reapi::GetCapabilitiesRequest request;
    reapi::ServerCapabilities got;
    grpc::ClientContext context;
    if (!capabilities->GetCapabilities(&context, request, &got).ok()) return 1;
    caps.Add(absl::Now() - start);
  }
  for (int i = 0; i < iterations; ++i) {
    const absl::Time start = absl::Now();
    reapi::GetActionResultRequest request;
    *request.mutable_action_digest() = action.ToProto();
    request.set_inline_stdout(true);
    request.set_inline_stderr(true);
    reapi::ActionResult got;
    grpc::ClientContext context;
    if (!ac->GetActionResult(&context, request, &got).ok()) return 1;
    const absl::Time after_get = absl::Now();
    get.Add(after_get - start);
    // Bazel downloads an action's outputs concurrently.
    std::vector<std::thread> readers;
    for (size_t k = 1; k < digests.size(); ++k) {
      readers.emplace_back([&, k] { assay::bench::ReadWholeBlob(bs.get(), digests[k]); });
    }
    const absl::Time r0 = absl::Now();
    if (!assay::bench::ReadWholeBlob(bs.get(), digests[0])) return 1;
    read_one.Add(absl::Now() - r0);
    for (auto& t : readers) t.join();
    hit.Add(absl::Now() - start);
  }

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

  std::printf("== latency of one cache hit's calls, %d iterations, one client on loopback\n", iterations);
  Print("GetCapabilities (RPC floor)", caps);
  Print("GetActionResult", get);
  Print("ByteStream.Read (6 KiB, 3 in flight)", read_one);
  Print("whole hit (get + 3 reads)", hit);
  Print("raw RocksDB lookups of a hit", raw_hit);
  std::printf("ratio whole hit / raw (mean)         %.1fx\n", hit.Mean() / raw_hit.Mean());
  return 0;
}
