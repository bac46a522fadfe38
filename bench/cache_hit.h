// One Bazel cache hit's calls, as the benchmarks make them against a coordinator: an action like a
// C++ compile (an object, a dependency file, a small third output) stored with BatchUpdateBlobs and
// UpdateActionResult, then hit: GetActionResult (stdout/stderr inlined, as Bazel asks), then a
// ByteStream.Read of each output, in flight together as Bazel issues them.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"

namespace assay::bench {

namespace reapi = build::bazel::remote::execution::v2;

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

inline void Print(const char* name, Samples& s) {
  std::printf("%-40s p50 %7.0f us   p90 %7.0f us   p99 %7.0f us   mean %7.0f us\n", name, s.Pct(0.5), s.Pct(0.9),
              s.Pct(0.99), s.Mean());
}

struct CachedAction {
  std::vector<std::string> outputs = {std::string(6044, 'o'), std::string(3296, 'd'), std::string(327, 'x')};
  std::vector<Digest> digests;
  Digest action = Digest::OfBytes("an action");
  reapi::ActionResult result;
};

// Stores the action's outputs and result through `channel`; false if a call failed.
inline bool StoreCachedAction(const std::shared_ptr<grpc::Channel>& channel, CachedAction* a) {
  auto cas = reapi::ContentAddressableStorage::NewStub(channel);
  auto ac = reapi::ActionCache::NewStub(channel);
  reapi::BatchUpdateBlobsRequest upload;
  for (size_t i = 0; i < a->outputs.size(); ++i) {
    a->digests.push_back(Digest::OfBytes(a->outputs[i]));
    auto* r = upload.add_requests();
    *r->mutable_digest() = a->digests.back().ToProto();
    r->set_data(a->outputs[i]);
    auto* f = a->result.add_output_files();
    f->set_path(absl::StrCat("out/file", i));
    *f->mutable_digest() = a->digests.back().ToProto();
  }
  reapi::BatchUpdateBlobsResponse uploaded;
  grpc::ClientContext c1;
  if (!cas->BatchUpdateBlobs(&c1, upload, &uploaded).ok()) return false;
  reapi::UpdateActionResultRequest update;
  *update.mutable_action_digest() = a->action.ToProto();
  *update.mutable_action_result() = a->result;
  reapi::ActionResult stored;
  grpc::ClientContext c2;
  return ac->UpdateActionResult(&c2, update, &stored).ok();
}

struct HitSamples {
  Samples get, read_one, whole;
};

// Hits the action `iterations` times; false if a call failed.
inline bool MeasureHits(const std::shared_ptr<grpc::Channel>& channel, const CachedAction& a, int iterations,
                        HitSamples* out) {
  auto bs = google::bytestream::ByteStream::NewStub(channel);
  auto ac = reapi::ActionCache::NewStub(channel);
  for (int i = 0; i < iterations; ++i) {
    const absl::Time start = absl::Now();
    reapi::GetActionResultRequest request;
    *request.mutable_action_digest() = a.action.ToProto();
    request.set_inline_stdout(true);
    request.set_inline_stderr(true);
    reapi::ActionResult got;
    grpc::ClientContext context;
    if (!ac->GetActionResult(&context, request, &got).ok()) return false;
    out->get.Add(absl::Now() - start);
    // Bazel downloads an action's outputs concurrently.
    std::vector<std::thread> readers;
    for (size_t k = 1; k < a.digests.size(); ++k) {
      readers.emplace_back([&, k] { ReadWholeBlob(bs.get(), a.digests[k]); });
    }
    const absl::Time r0 = absl::Now();
    const bool read = ReadWholeBlob(bs.get(), a.digests[0]);
    out->read_one.Add(absl::Now() - r0);
    for (auto& t : readers) t.join();
    if (!read) return false;
    out->whole.Add(absl::Now() - start);
  }
  return true;
}

// Writes `data` with one ByteStream.Write, as Bazel uploads a blob; true when it was committed.
inline bool WriteWholeBlob(google::bytestream::ByteStream::Stub* bs, const std::string& data, int n) {
  const Digest d = Digest::OfBytes(data);
  google::bytestream::WriteRequest w;
  w.set_resource_name(WriteResourceName("", absl::StrCat("00000000-0000-4000-8000-", 100000000000 + n), d));
  w.set_data(data);
  w.set_finish_write(true);
  google::bytestream::WriteResponse response;
  grpc::ClientContext context;
  auto writer = bs->Write(&context, &response);
  writer->Write(w);
  writer->WritesDone();
  return writer->Finish().ok() && response.committed_size() == d.size();
}

struct MissSamples {
  Samples get, find, write_one, whole;
};

// The calls Bazel makes before each remote Execute, `iterations` times, each time for a new action:
// GetActionResult (a miss), FindMissingBlobs of its Action, its Command and an input already stored,
// then the Action and the Command uploaded, two ByteStream.Writes in flight together. False if a
// call failed.
inline bool MeasureMisses(const std::shared_ptr<grpc::Channel>& channel, const Digest& stored_input, int iterations,
                          MissSamples* out) {
  auto bs = google::bytestream::ByteStream::NewStub(channel);
  auto ac = reapi::ActionCache::NewStub(channel);
  auto cas = reapi::ContentAddressableStorage::NewStub(channel);
  for (int i = 0; i < iterations; ++i) {
    const std::string command = absl::StrCat(std::string(220, 'c'), " compile ", i);
    const std::string action = absl::StrCat(std::string(140, 'a'), " action ", i);
    const absl::Time start = absl::Now();
    reapi::GetActionResultRequest request;
    *request.mutable_action_digest() = Digest::OfBytes(action).ToProto();
    reapi::ActionResult got;
    grpc::ClientContext context;
    if (ac->GetActionResult(&context, request, &got).error_code() != grpc::StatusCode::NOT_FOUND) return false;
    out->get.Add(absl::Now() - start);
    const absl::Time f0 = absl::Now();
    reapi::FindMissingBlobsRequest find;
    for (const Digest& d : {Digest::OfBytes(action), Digest::OfBytes(command), stored_input}) *find.add_blob_digests() = d.ToProto();
    reapi::FindMissingBlobsResponse missing;
    grpc::ClientContext c2;
    if (!cas->FindMissingBlobs(&c2, find, &missing).ok() || missing.missing_blob_digests_size() != 2) return false;
    out->find.Add(absl::Now() - f0);
    bool other = false;
    std::thread second([&] { other = WriteWholeBlob(bs.get(), command, 2 * i + 1); });
    const absl::Time w0 = absl::Now();
    const bool wrote = WriteWholeBlob(bs.get(), action, 2 * i);
    out->write_one.Add(absl::Now() - w0);
    second.join();
    if (!wrote || !other) return false;
    out->whole.Add(absl::Now() - start);
  }
  return true;
}

}  // namespace assay::bench
