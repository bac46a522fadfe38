// The store's speed against its local limits, in one run on one machine:
//  (1) ByteStream write and read of 1 MiB, 64 MiB and 1 GiB blobs through the coordinator, against
//      the same bytes written straight into RocksDB (same options, same column family) and to a file;
//  (2) FindMissingBlobs for 10,000 digests (half present);
//  (3) peak memory of the coordinator and a worker while a 1 GiB artifact passes through a job.
// Run: build/bench/bench_cas_throughput [--quick]   (--quick skips the 1 GiB sizes)
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "common/remote/cas_client.h"
#include "common/rocksdb/database.h"
#include "google/bytestream/bytestream.grpc.pb.h"
#include "tests/integration/farm.h"

namespace {

namespace fs = std::filesystem;
using assay::Digest;
using assay::testing::Farm;

constexpr size_t kChunk = 1 << 20;

// Deterministic pseudo-random bytes, produced a chunk at a time so 1 GiB never sits in memory.
class Source {
 public:
  Source(int64_t size, uint64_t seed) : size_(size), seed_(seed) {}
  template <typename F>
  void ForEachChunk(F&& f) const {
    std::mt19937_64 rng(seed_);
    std::string chunk(kChunk, '\0');
    for (int64_t done = 0; done < size_;) {
      size_t n = static_cast<size_t>(std::min<int64_t>(kChunk, size_ - done));
      for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v = rng();
        std::memcpy(chunk.data() + i, &v, 8);
      }
      f(std::string_view(chunk.data(), n));
      done += static_cast<int64_t>(n);
    }
  }
  Digest digest() const {
    assay::Sha256 h;
    ForEachChunk([&](std::string_view c) { h.Update(absl::string_view(c.data(), c.size())); });
    return Digest::Create(h.FinishHex(), size_).value();
  }
  int64_t size() const { return size_; }

 private:
  int64_t size_;
  uint64_t seed_;
};

double MiBps(int64_t bytes, absl::Duration d) { return static_cast<double>(bytes) / (1 << 20) / absl::ToDoubleSeconds(d); }

absl::Duration ByteStreamWrite(google::bytestream::ByteStream::Stub* bs, const Source& src, const Digest& d) {
  const absl::Time start = absl::Now();
  grpc::ClientContext context;
  google::bytestream::WriteResponse response;
  auto writer = bs->Write(&context, &response);
  int64_t offset = 0;
  src.ForEachChunk([&](std::string_view c) {
    google::bytestream::WriteRequest r;
    if (offset == 0) r.set_resource_name(assay::WriteResourceName("", assay::RandomHex(8), d));
    r.set_write_offset(offset);
    r.set_data(std::string(c));
    offset += static_cast<int64_t>(c.size());
    r.set_finish_write(offset == src.size());
    writer->Write(r);
  });
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!s.ok()) std::fprintf(stderr, "write failed: %s\n", s.error_message().c_str());
  return absl::Now() - start;
}

absl::Duration ByteStreamRead(google::bytestream::ByteStream::Stub* bs, const Digest& d) {
  const absl::Time start = absl::Now();
  if (!assay::bench::ReadWholeBlob(bs, d)) std::fprintf(stderr, "read failed\n");
  return absl::Now() - start;
}

struct Pair {
  absl::Duration write, read;
};

Pair RawRocks(assay::Database* db, const Source& src, uint64_t id) {
  const absl::Time start = absl::Now();
  uint32_t index = 0;
  src.ForEachChunk([&](std::string_view c) {
    db->Put(assay::Family::kCasChunks, assay::EncodeU64(id) + assay::EncodeU32(index++),
            absl::string_view(c.data(), c.size()), false)
        .IgnoreError();
  });
  db->Put(assay::Family::kCasMeta, assay::EncodeU64(id), "done", true).IgnoreError();
  const absl::Duration write = absl::Now() - start;
  const absl::Time read_start = absl::Now();
  for (uint32_t i = 0; i < index; ++i) {
    rocksdb::PinnableSlice v;
    db->db()->Get(rocksdb::ReadOptions(), db->cf(assay::Family::kCasChunks),
                  assay::EncodeU64(id) + assay::EncodeU32(i), &v);
  }
  return {write, absl::Now() - read_start};
}

Pair PlainFile(const fs::path& path, const Source& src) {
  const absl::Time start = absl::Now();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  src.ForEachChunk([&](std::string_view c) { (void)!::write(fd, c.data(), c.size()); });
  ::fsync(fd);
  ::close(fd);
  const absl::Duration write = absl::Now() - start;
  const absl::Time read_start = absl::Now();
  fd = ::open(path.c_str(), O_RDONLY);
  std::string buf(kChunk, '\0');
  while (::read(fd, buf.data(), buf.size()) > 0) {
  }
  ::close(fd);
  return {write, absl::Now() - read_start};
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  Farm farm;
  farm.StartCoordinator();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(farm.address(), grpc::InsecureChannelCredentials(), args);
  auto bs = google::bytestream::ByteStream::NewStub(channel);
  auto cas = build::bazel::remote::execution::v2::ContentAddressableStorage::NewStub(channel);
  auto raw_db = assay::Database::Open(farm.dir() / "raw-rocksdb").value();

  std::printf("== (1) throughput, MiB/s (write includes the final fsync; reads are warm)\n");
  std::printf("%-8s %5s | %10s %10s %10s | %10s %10s %10s | %8s %8s | %8s %8s\n", "size", "reps", "assay W",
              "rocksdb W", "file W", "assay R", "rocksdb R", "file R", "W/rocks", "R/rocks", "W/file", "R/file");
  struct Case {
    int64_t size;
    int reps;
  };
  std::vector<Case> cases = {{1 << 20, 50}, {64 << 20, 3}};
  if (!quick) cases.push_back({1LL << 30, 1});
  uint64_t seed = 1;
  for (const Case& c : cases) {
    absl::Duration aw, ar, rw, rr, fw, fr;
    for (int i = 0; i < c.reps; ++i) {
      Source src(c.size, seed++);
      Digest d = src.digest();
      aw += ByteStreamWrite(bs.get(), src, d);
      ar += ByteStreamRead(bs.get(), d);
      Pair r = RawRocks(raw_db.get(), src, seed);
      rw += r.write;
      rr += r.read;
      Pair f = PlainFile(farm.dir() / "plain.bin", src);
      fw += f.write;
      fr += f.read;
    }
    const int64_t bytes = c.size * c.reps;
    auto ratio = [](absl::Duration a, absl::Duration b) { return absl::ToDoubleSeconds(a) / absl::ToDoubleSeconds(b); };
    std::printf("%-8s %5d | %10.0f %10.0f %10.0f | %10.0f %10.0f %10.0f | %7.2fx %7.2fx | %7.2fx %7.2fx\n",
                c.size >= (1 << 30) ? "1 GiB" : c.size >= (64 << 20) ? "64 MiB" : "1 MiB", c.reps, MiBps(bytes, aw),
                MiBps(bytes, rw), MiBps(bytes, fw), MiBps(bytes, ar), MiBps(bytes, rr), MiBps(bytes, fr), ratio(aw, rw),
                ratio(ar, rr), ratio(aw, fw), ratio(ar, fr));
  }
  std::printf("   (ratios: assay time / raw RocksDB time, and / plain file time; 1.00x is that limit)\n");

  std::printf("\n== (2) FindMissingBlobs of 10,000 digests (5,000 present)\n");
  {
    build::bazel::remote::execution::v2::BatchUpdateBlobsRequest upload;
    std::vector<Digest> digests;
    for (int i = 0; i < 10000; ++i) {
      std::string data = absl::StrCat("blob number ", i);
      Digest d = Digest::OfBytes(data);
      digests.push_back(d);
      if (i % 2 == 0) {
        auto* r = upload.add_requests();
        *r->mutable_digest() = d.ToProto();
        r->set_data(data);
      }
    }
    build::bazel::remote::execution::v2::BatchUpdateBlobsResponse uploaded;
    grpc::ClientContext context;
    cas->BatchUpdateBlobs(&context, upload, &uploaded);
    build::bazel::remote::execution::v2::FindMissingBlobsRequest request;
    for (const auto& d : digests) *request.add_blob_digests() = d.ToProto();
    const int reps = 20;
    absl::Duration total;
    size_t missing = 0;
    for (int i = 0; i < reps; ++i) {
      build::bazel::remote::execution::v2::FindMissingBlobsResponse response;
      grpc::ClientContext ctx;
      const absl::Time start = absl::Now();
      cas->FindMissingBlobs(&ctx, request, &response);
      total += absl::Now() - start;
      missing = static_cast<size_t>(response.missing_blob_digests_size());
    }
    // Baseline: the same 10,000 keys looked up straight in RocksDB with one MultiGet.
    std::vector<std::string> keys;
    for (const auto& d : digests) keys.push_back(d.Key());
    std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
    absl::Duration raw_total;
    for (int i = 0; i < reps; ++i) {
      std::vector<rocksdb::PinnableSlice> values(slices.size());
      std::vector<rocksdb::Status> statuses(slices.size());
      const absl::Time start = absl::Now();
      raw_db->db()->MultiGet(rocksdb::ReadOptions(), raw_db->cf(assay::Family::kCasMeta), slices.size(), slices.data(),
                             values.data(), statuses.data());
      raw_total += absl::Now() - start;
    }
    std::printf("assay FindMissingBlobs        %.2f ms per call (%zu reported missing)\n",
                absl::ToDoubleMilliseconds(total) / reps, missing);
    std::printf("raw RocksDB MultiGet          %.2f ms per call\n", absl::ToDoubleMilliseconds(raw_total) / reps);
    std::printf("ratio                         %.2fx\n", absl::ToDoubleSeconds(total) / absl::ToDoubleSeconds(raw_total));
  }

  std::printf("\n== (3) peak memory while a 1 GiB artifact passes through a job\n");
  if (quick) {
    std::printf("skipped (--quick)\n");
    return 0;
  }
  farm.StartWorker("w1");
  auto tree = farm.WriteTree("gib", {{"assay.yaml", R"(
steps:
  - id: make
    run: head -c 1073741824 /dev/urandom > big.bin
    outputs: [big.bin]
    timeout: 10m
    cache: false
  - id: use
    needs: [make]
    run: sha256sum big.bin
    cache: false
    timeout: 10m
)"}});
  const absl::Time start = absl::Now();
  auto id = farm.Submit(tree);
  auto job = id.ok() ? farm.WaitJob(*id, absl::Minutes(20)) : id.status();
  if (!job.ok() || job->state() != assay::v1::JOB_SUCCEEDED) {
    std::printf("job failed\n");
    return 1;
  }
  fs::path out = farm.dir() / "gib-out";
  const absl::Time dl = absl::Now();
  auto cli = farm.Cli({"artifacts", job->id(), "make", "--out", out.string()});
  std::printf("job (produce 1 GiB, upload, fetch on a worker, hash) %.1f s; CLI download %.1f s\n",
              absl::ToDoubleSeconds(dl - start), absl::ToDoubleSeconds(absl::Now() - dl));
  std::printf("peak RSS coordinator          %lld MiB\n",
              static_cast<long long>(assay::testing::PeakMemoryBytes(farm.coordinator_pid()) >> 20));
  std::printf("peak RSS worker               %lld MiB\n",
              static_cast<long long>(assay::testing::PeakMemoryBytes(farm.worker_pid("w1")) >> 20));
  std::printf("peak RSS CLI download         %lld MiB (exit %d)\n", static_cast<long long>(cli.peak_rss_bytes >> 20),
              cli.exit_code);
  return 0;
}
