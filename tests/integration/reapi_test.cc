// The coordinator's REAPI surface, driven over real gRPC: what real clients rely on and what bad
// clients must not be able to do. Each test runs twice: on the embedded RocksDB (the default) and
// with the CAS and action cache in an S3 bucket (--cas-store; Ceph's radosgw on loopback).
#include <thread>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "common/remote/cas_client.h"
#include "google/bytestream/bytestream.grpc.pb.h"
#include "tests/integration/farm.h"
#include "tests/integration/s3_test_base.h"

namespace assay::testing {
namespace {

using google::bytestream::ByteStream;

class ReapiTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { Start({}); }
  // The coordinator with `args`, and with the param's store.
  void Start(std::vector<std::string> args) {
    if (GetParam() == "bucket") {
      auto flags = CasStoreFlags(farm_.dir());
      ASSERT_TRUE(flags.ok()) << flags.status();
      args.insert(args.end(), flags->begin(), flags->end());
    }
    farm_.StartCoordinator(args);
    grpc::ChannelArguments channel_args;
    channel_args.SetMaxReceiveMessageSize(64 << 20);
    channel_ = grpc::CreateCustomChannel(farm_.address(), grpc::InsecureChannelCredentials(), channel_args);
    cas_ = reapi::ContentAddressableStorage::NewStub(channel_);
    ac_ = reapi::ActionCache::NewStub(channel_);
    bs_ = ByteStream::NewStub(channel_);
    caps_ = reapi::Capabilities::NewStub(channel_);
  }
  void TearDown() override {
    cas_.reset();
    ac_.reset();
    bs_.reset();
    caps_.reset();
    channel_.reset();
  }

  std::vector<Digest> Missing(const std::vector<Digest>& digests, const std::string& instance = "") {
    reapi::FindMissingBlobsRequest request;
    request.set_instance_name(instance);
    for (const auto& d : digests) *request.add_blob_digests() = d.ToProto();
    reapi::FindMissingBlobsResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(cas_->FindMissingBlobs(&context, request, &response).ok());
    std::vector<Digest> out;
    for (const auto& d : response.missing_blob_digests()) out.push_back(Digest::FromProto(d).value());
    return out;
  }

  // Writes `data` under `digest` in chunks; finish=false ends the stream without finish_write.
  grpc::Status Write(const std::string& resource, const std::string& data, bool finish = true, size_t chunk = 1 << 20) {
    grpc::ClientContext context;
    google::bytestream::WriteResponse response;
    auto writer = bs_->Write(&context, &response);
    size_t offset = 0;
    do {
      google::bytestream::WriteRequest request;
      if (offset == 0) request.set_resource_name(resource);
      request.set_write_offset(static_cast<int64_t>(offset));
      std::string piece = data.substr(offset, chunk);
      offset += piece.size();
      request.set_data(piece);
      request.set_finish_write(finish && offset >= data.size());
      if (!writer->Write(request)) break;
    } while (offset < data.size());
    writer->WritesDone();
    return writer->Finish();
  }

  grpc::Status Read(const std::string& resource, std::string* out, int64_t offset = 0, int64_t limit = 0) {
    google::bytestream::ReadRequest request;
    request.set_resource_name(resource);
    request.set_read_offset(offset);
    request.set_read_limit(limit);
    grpc::ClientContext context;
    auto reader = bs_->Read(&context, request);
    google::bytestream::ReadResponse response;
    while (reader->Read(&response)) out->append(response.data());
    return reader->Finish();
  }

  Farm farm_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<reapi::ContentAddressableStorage::Stub> cas_;
  std::unique_ptr<reapi::ActionCache::Stub> ac_;
  std::unique_ptr<ByteStream::Stub> bs_;
  std::unique_ptr<reapi::Capabilities::Stub> caps_;
};

TEST_P(ReapiTest, CapabilitiesAdvertiseSha256AndCacheUpdates) {
  reapi::GetCapabilitiesRequest request;
  reapi::ServerCapabilities caps;
  grpc::ClientContext context;
  ASSERT_TRUE(caps_->GetCapabilities(&context, request, &caps).ok());
  ASSERT_EQ(caps.cache_capabilities().digest_functions_size(), 1);
  EXPECT_EQ(caps.cache_capabilities().digest_functions(0), reapi::DigestFunction::SHA256);
  EXPECT_TRUE(caps.cache_capabilities().action_cache_update_capabilities().update_enabled());
  EXPECT_LE(caps.low_api_version().major(), 2);
  EXPECT_GE(caps.high_api_version().major(), 2);
  EXPECT_GT(caps.cache_capabilities().max_batch_total_size_bytes(), 0);
}

TEST_P(ReapiTest, BlobsWhoseBytesDoNotMatchAreRefusedAndNotStored) {
  Digest claimed = Digest::OfBytes("the real bytes");
  reapi::BatchUpdateBlobsRequest batch;
  auto* r = batch.add_requests();
  *r->mutable_digest() = claimed.ToProto();
  r->set_data("forged bytes!!");
  reapi::BatchUpdateBlobsResponse batch_response;
  grpc::ClientContext context;
  ASSERT_TRUE(cas_->BatchUpdateBlobs(&context, batch, &batch_response).ok());
  ASSERT_EQ(batch_response.responses_size(), 1);
  EXPECT_EQ(batch_response.responses(0).status().code(), grpc::StatusCode::INVALID_ARGUMENT);

  grpc::Status streamed = Write(WriteResourceName("", "u1", claimed), "forged bytes!!");
  EXPECT_EQ(streamed.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << streamed.error_message();
  EXPECT_EQ(Missing({claimed}), std::vector<Digest>{claimed});

  // The right bytes are then accepted.
  EXPECT_TRUE(Write(WriteResourceName("", "u2", claimed), "the real bytes").ok());
  EXPECT_TRUE(Missing({claimed}).empty());
}

TEST_P(ReapiTest, OversizedRequestsAreRefusedAndStoreNothing) {
  // A batch over the advertised limit (4 MiB): refused whole, naming the limit and the way out.
  reapi::BatchUpdateBlobsRequest batch;
  std::vector<Digest> digests;
  for (int i = 0; i < 6; ++i) {
    std::string data(1 << 20, static_cast<char>('a' + i));
    digests.push_back(Digest::OfBytes(data));
    auto* r = batch.add_requests();
    *r->mutable_digest() = digests.back().ToProto();
    r->set_data(data);
  }
  reapi::BatchUpdateBlobsResponse updated;
  grpc::ClientContext c1;
  grpc::Status too_big = cas_->BatchUpdateBlobs(&c1, batch, &updated);
  EXPECT_EQ(too_big.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(too_big.error_message(), "exceeds the limit of 4194304")) << too_big.error_message();
  EXPECT_TRUE(absl::StrContains(too_big.error_message(), "ByteStream")) << too_big.error_message();
  EXPECT_EQ(Missing(digests).size(), digests.size()) << "nothing of a refused batch is stored";

  // A batch read whose blobs add up over the limit.
  reapi::BatchReadBlobsRequest read;
  for (const auto& d : digests) *read.add_digests() = d.ToProto();
  reapi::BatchReadBlobsResponse got;
  grpc::ClientContext c2;
  grpc::Status read_too_big = cas_->BatchReadBlobs(&c2, read, &got);
  EXPECT_EQ(read_too_big.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(read_too_big.error_message(), "use ByteStream.Read")) << read_too_big.error_message();

  // A message over the server's 16 MiB receive limit is refused by gRPC before any handler runs.
  reapi::BatchUpdateBlobsRequest huge;
  std::string data(17 << 20, 'h');
  const Digest huge_digest = Digest::OfBytes(data);
  auto* r = huge.add_requests();
  *r->mutable_digest() = huge_digest.ToProto();
  r->set_data(std::move(data));
  grpc::ClientContext c3;
  grpc::Status refused = cas_->BatchUpdateBlobs(&c3, huge, &updated);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_EQ(Missing({huge_digest}).size(), 1u);
}

TEST_P(ReapiTest, MalformedResourceNamesAndDigestsAreInvalidArguments) {
  Digest d = Digest::OfBytes("x");
  const std::string hash = d.hash();
  for (const std::string& name : {std::string("blobs/") + hash, std::string("uploads/u/blobs/") + hash + "/1",
                                  std::string("blobs/") + hash + "/notanumber", std::string("blobs/ABC/1"),
                                  std::string("blobs/") + hash + "/-1", std::string("../blobs/") + hash + "/1",
                                  std::string("actions/blobs/") + hash + "/1", std::string("")}) {
    std::string out;
    grpc::Status s = Read(name, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "'" << name << "': " << s.error_message();
  }
  for (const std::string& name : {std::string("blobs/") + hash + "/1", std::string("uploads/blobs/") + hash + "/1",
                                  std::string("x/uploads/u/blobs/zz/1")}) {
    grpc::Status s = Write(name, "x");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "'" << name << "': " << s.error_message();
  }
  reapi::FindMissingBlobsRequest request;
  auto* bad = request.add_blob_digests();
  bad->set_hash("not-a-hash");
  bad->set_size_bytes(3);
  reapi::FindMissingBlobsResponse response;
  grpc::ClientContext context;
  EXPECT_EQ(cas_->FindMissingBlobs(&context, request, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_P(ReapiTest, AWriteThatEndsEarlyCommitsNothing) {
  std::string data(3 << 20, 'w');
  Digest d = Digest::OfBytes(data);
  std::string resource = WriteResourceName("", "early", d);
  grpc::Status s = Write(resource, data.substr(0, 2 << 20), /*finish=*/false);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(Missing({d}), std::vector<Digest>{d});
  google::bytestream::QueryWriteStatusRequest query;
  query.set_resource_name(resource);
  google::bytestream::QueryWriteStatusResponse status;
  grpc::ClientContext context;
  ASSERT_TRUE(bs_->QueryWriteStatus(&context, query, &status).ok());
  EXPECT_FALSE(status.complete());
  // A stream claiming to finish with fewer bytes than the digest says is refused too.
  EXPECT_EQ(Write(resource, data.substr(0, 1000)).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Missing({d}), std::vector<Digest>{d});
}

TEST_P(ReapiTest, ConcurrentWritesOfOneBlobAllSucceedAndStoreItOnce) {
  std::string data(5 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i % 251);
  Digest d = Digest::OfBytes(data);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i]() {
      if (Write(WriteResourceName("", absl::StrCat("c", i), d), data, true, 256 << 10).ok()) ok++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 6);
  std::string back;
  ASSERT_TRUE(Read(ReadResourceName("", d), &back).ok());
  EXPECT_TRUE(back == data);
}

TEST_P(ReapiTest, MissingBlobsAreNotFoundAndTheEmptyBlobAlwaysExists) {
  Digest absent = Digest::OfBytes("never written");
  std::string out;
  EXPECT_EQ(Read(ReadResourceName("", absent), &out).error_code(), grpc::StatusCode::NOT_FOUND);
  reapi::BatchReadBlobsRequest batch;
  *batch.add_digests() = absent.ToProto();
  *batch.add_digests() = Digest().ToProto();
  reapi::BatchReadBlobsResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(cas_->BatchReadBlobs(&context, batch, &response).ok());
  ASSERT_EQ(response.responses_size(), 2);
  EXPECT_EQ(response.responses(0).status().code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(response.responses(1).status().code(), grpc::StatusCode::OK);
  EXPECT_EQ(response.responses(1).data(), "");
  EXPECT_TRUE(Missing({Digest()}).empty());
  out.clear();
  EXPECT_TRUE(Read(ReadResourceName("", Digest()), &out).ok());
  EXPECT_EQ(out, "");
  EXPECT_TRUE(Write(WriteResourceName("", "e", Digest()), "").ok());
}

TEST_P(ReapiTest, LargeBlobsStreamBothWaysAndReadByRange) {
  std::string data(64 << 20, '\0');
  for (size_t i = 0; i < data.size(); i += 4096) data[i] = static_cast<char>(i / 4096);
  Digest d = Digest::OfBytes(data);
  ASSERT_TRUE(Write(WriteResourceName("", "big", d), data).ok());
  std::string back;
  ASSERT_TRUE(Read(ReadResourceName("", d), &back).ok());
  EXPECT_TRUE(back == data);
  std::string range;
  ASSERT_TRUE(Read(ReadResourceName("", d), &range, (1 << 20) - 5, 10).ok());
  EXPECT_EQ(range, data.substr((1 << 20) - 5, 10));
  std::string beyond;
  EXPECT_EQ(Read(ReadResourceName("", d), &beyond, static_cast<int64_t>(data.size()) + 1).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);
  // A write of a blob already stored returns at once with the full committed size.
  EXPECT_TRUE(Write(WriteResourceName("", "again", d), data.substr(0, 1 << 20), /*finish=*/false).ok());
}

TEST_P(ReapiTest, ActionCacheReturnsOnlyCompleteResultsPerInstance) {
  Digest action = Digest::OfBytes("an action");
  Digest output = Digest::OfBytes("output bytes");
  reapi::ActionResult result;
  auto* file = result.add_output_files();
  file->set_path("out/file");
  *file->mutable_digest() = output.ToProto();
  result.set_exit_code(0);

  reapi::UpdateActionResultRequest update;
  update.set_instance_name("main");
  *update.mutable_action_digest() = action.ToProto();
  *update.mutable_action_result() = result;
  reapi::ActionResult stored;
  {
    grpc::ClientContext context;
    grpc::Status s = ac_->UpdateActionResult(&context, update, &stored);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << "its output is not in the CAS yet";
  }
  ASSERT_TRUE(Write(WriteResourceName("main", "o", output), "output bytes").ok());
  {
    grpc::ClientContext context;
    ASSERT_TRUE(ac_->UpdateActionResult(&context, update, &stored).ok());
  }
  reapi::GetActionResultRequest get;
  get.set_instance_name("main");
  *get.mutable_action_digest() = action.ToProto();
  get.add_inline_output_files("out/file");
  reapi::ActionResult got;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(ac_->GetActionResult(&context, get, &got).ok());
  }
  EXPECT_EQ(got.output_files(0).digest().hash(), output.hash());
  EXPECT_EQ(got.output_files(0).contents(), "output bytes");
  // Another instance has its own action cache.
  get.set_instance_name("other");
  {
    grpc::ClientContext context;
    EXPECT_EQ(ac_->GetActionResult(&context, get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  get.set_instance_name("blobs");
  {
    grpc::ClientContext context;
    EXPECT_EQ(ac_->GetActionResult(&context, get, &got).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST_P(ReapiTest, SmallStdoutAndStderrRideInTheResultUnaskedLargerOnesWhenAsked) {
  // Up to 16 KiB (docs/bazel.md) an action's stdout and stderr come inside its ActionResult beside
  // their digests: Bazel 4.2 never asks, and read a compile warning in a call of its own per hit.
  const std::string warning = "lib/a.cc:7:31: warning: structured bindings only available with -std=c++17\n";
  const std::string big(16 * 1024 + 1, 'x');
  Digest action = Digest::OfBytes("an action that warned");
  reapi::UpdateActionResultRequest update;
  *update.mutable_action_digest() = action.ToProto();
  update.mutable_action_result()->set_stderr_raw(warning);
  update.mutable_action_result()->set_stdout_raw(big);
  reapi::ActionResult stored;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(ac_->UpdateActionResult(&context, update, &stored).ok());
  }
  EXPECT_TRUE(stored.stderr_raw().empty() && stored.stdout_raw().empty()) << "kept in the CAS, not in the entry";
  reapi::GetActionResultRequest get;
  *get.mutable_action_digest() = action.ToProto();
  auto fetch = [&](reapi::ActionResult* got) {
    grpc::ClientContext context;
    return ac_->GetActionResult(&context, get, got);
  };
  reapi::ActionResult got;
  ASSERT_TRUE(fetch(&got).ok());
  EXPECT_EQ(got.stderr_raw(), warning);
  EXPECT_EQ(got.stderr_digest().hash(), Digest::OfBytes(warning).hash()) << "the digest stays for clients that read it";
  EXPECT_TRUE(got.stdout_raw().empty()) << "above 16 KiB only when asked";
  EXPECT_EQ(got.stdout_digest().hash(), Digest::OfBytes(big).hash());
  std::string read;
  ASSERT_TRUE(Read(ReadResourceName("", Digest::OfBytes(warning)), &read).ok());
  EXPECT_EQ(read, warning);
  get.set_inline_stdout(true);
  got.Clear();
  ASSERT_TRUE(fetch(&got).ok());
  EXPECT_EQ(got.stdout_raw(), big);
  EXPECT_EQ(got.stderr_raw(), warning);
}

TEST_P(ReapiTest, EvictionUnderPressureKeepsTheBudgetAndNeverServesPartialBlobs) {
  farm_.StopCoordinator(SIGTERM);
  const int64_t budget = 8 << 20;
  Start({"--cache-budget-bytes", std::to_string(budget)});
  std::vector<std::pair<Digest, std::string>> blobs;
  for (int i = 0; i < 40; ++i) {
    std::string data(1 << 20, static_cast<char>('a' + i % 26));
    data += absl::StrCat(i);
    Digest d = Digest::OfBytes(data);
    ASSERT_TRUE(Write(WriteResourceName("", absl::StrCat("e", i), d), data).ok());
    blobs.emplace_back(d, std::move(data));
  }
  // An action result whose output was evicted is a miss, not a broken hit.
  Digest action = Digest::OfBytes("evicted action");
  reapi::UpdateActionResultRequest update;
  *update.mutable_action_digest() = action.ToProto();
  *update.mutable_action_result()->add_output_files()->mutable_digest() = blobs.back().first.ToProto();
  update.mutable_action_result()->mutable_output_files(0)->set_path("o");
  reapi::ActionResult stored;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(ac_->UpdateActionResult(&context, update, &stored).ok());
  }
  for (int i = 0; i < 20; ++i) {
    std::string data(1 << 20, 'Z');
    data += absl::StrCat("more", i);
    Digest d = Digest::OfBytes(data);
    ASSERT_TRUE(Write(WriteResourceName("", absl::StrCat("m", i), d), data).ok());
  }
  // Eviction runs off the request path: the store is back within its budget soon after the writes.
  assay::v1::CacheStats stats;
  auto admin = assay::v1::Admin::NewStub(channel_);
  const bool within = WaitFor(
      [&]() {
        grpc::ClientContext context;
        return admin->GetCacheStats(&context, assay::v1::GetCacheStatsRequest(), &stats).ok() && stats.bytes() <= budget;
      },
      absl::Seconds(10));
  EXPECT_TRUE(within) << stats.bytes() << " bytes stored, budget " << budget;
  EXPECT_GT(stats.evicted_blobs(), 0);
  int present = 0;
  for (const auto& [digest, data] : blobs) {
    std::string out;
    grpc::Status s = Read(ReadResourceName("", digest), &out);
    if (s.ok()) {
      ++present;
      EXPECT_TRUE(out == data) << "a blob is served whole or not at all";
    } else {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    }
  }
  EXPECT_LT(present, 40);
  reapi::GetActionResultRequest get;
  *get.mutable_action_digest() = action.ToProto();
  reapi::ActionResult got;
  grpc::ClientContext context;
  EXPECT_EQ(ac_->GetActionResult(&context, get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
}

INSTANTIATE_TEST_SUITE_P(Stores, ReapiTest, ::testing::Values("embedded", "bucket"), StoreName);

}  // namespace
}  // namespace assay::testing
