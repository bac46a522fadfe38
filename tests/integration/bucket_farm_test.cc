// The farm with its CAS and action cache in an S3 bucket (--cas-store), against Ceph's radosgw on
// loopback (s3_server.h): the example pipeline runs, a coordinator that lost its data folder still
// answers every earlier cache hit, REAPI clients read and write through it, an outage of the bucket
// is UNAVAILABLE until it returns, and large blobs go between clients and the bucket directly.
#include <gtest/gtest.h>

#include <fstream>

#include "absl/strings/match.h"
#include "assay/v1/admin.grpc.pb.h"
#include "assay/v1/blob_access.grpc.pb.h"
#include "absl/strings/str_cat.h"
#include "common/remote/cas_client.h"
#include "common/s3/s3_client.h"
#include "tests/integration/farm.h"
#include "tests/integration/s3_test_base.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;
using assay::v1::Job;
using assay::v1::Task;

RetryPolicy Once() {
  RetryPolicy policy;
  policy.max_attempts = 1;
  return policy;
}

class BucketFarmTest : public S3ServerTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(start_->ok()) << *start_;
    bucket_ = TestBucket("f-");
    location_ = server_->Location(bucket_, "farm");
    bucket_client_ = std::make_unique<S3Client>(ParseS3Location(location_).value(),
                                                S3Credentials{TestS3Server::kAccessKey, TestS3Server::kSecretKey});
    ASSERT_TRUE(bucket_client_->CreateBucket().ok());
    // The key pair in a file, as AWS's tools write it: never on the command line.
    credentials_ = farm_.dir() / "s3-credentials";
    ASSERT_TRUE(WriteFile(credentials_, absl::StrCat("[default]\naws_access_key_id = ", TestS3Server::kAccessKey,
                                                     "\naws_secret_access_key = ", TestS3Server::kSecretKey, "\n"))
                    .ok());
  }
  void StartCoordinator() {
    farm_.StartCoordinator({"--cas-store", location_, "--cas-credentials", credentials_.string()});
  }
  size_t Objects(const std::string& prefix) {
    auto all = bucket_client_->ListAllObjects(prefix);
    EXPECT_TRUE(all.ok()) << all.status();
    return all.ok() ? all->size() : 0;
  }
  Job RunExample() {
    fs::path tree = farm_.dir() / "karatos-mini";
    if (!fs::exists(tree)) {
      fs::copy(SourceDir() + "/examples/karatos-mini", tree, fs::copy_options::recursive);
      fs::remove_all(tree / "out");
    }
    auto id = farm_.Submit(tree);
    EXPECT_TRUE(id.ok()) << id.status();
    auto job = farm_.WaitJob(id.value_or("0"));
    EXPECT_TRUE(job.ok()) << job.status();
    return job.value_or(Job());
  }

  assay::v1::CacheStats Stats() {
    auto admin = assay::v1::Admin::NewStub(farm_.channel());
    grpc::ClientContext context;
    assay::v1::CacheStats stats;
    EXPECT_TRUE(admin->GetCacheStats(&context, assay::v1::GetCacheStatsRequest(), &stats).ok());
    return stats;
  }

  // A job that moves kLarge bytes each way: the CLI uploads a source file that a worker reads, the
  // worker uploads an output that the CLI downloads. Checks every byte arrived; the cache's counters.
  static constexpr int64_t kLarge = int64_t{24} << 20;
  assay::v1::CacheStats RunLargeJob() {
    auto tree = farm_.WriteTree("large", {{"assay.yaml", R"(
steps:
  - id: make
    inputs: [input.bin]
    run: |
      sha256sum input.bin | cut -d' ' -f1 > input.sha256
      head -c 25165824 /dev/urandom > big.bin
      sha256sum big.bin | cut -d' ' -f1 > big.sha256
    outputs: [big.bin, big.sha256, input.sha256]
)"}});
    {
      std::ofstream input(tree / "input.bin", std::ios::binary);
      const std::string bytes = RandomBytes(kLarge, 7);
      input.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    RunResult submit = farm_.Cli({"submit", tree.string(), "--wait"}, absl::Minutes(3));
    EXPECT_EQ(submit.exit_code, 0) << submit.out << submit.err;
    const fs::path out = farm_.dir() / "large-out";
    RunResult download = farm_.Cli({"artifacts", "1", "--out", out.string()});
    EXPECT_EQ(download.exit_code, 0) << download.err;
    RunResult sum = RunCommand({"/usr/bin/sha256sum", (out / "make/big.bin").string()});
    EXPECT_EQ(sum.out.substr(0, 64), ReadFile(out / "make/big.sha256").value_or("").substr(0, 64));
    RunResult input_sum = RunCommand({"/usr/bin/sha256sum", (tree / "input.bin").string()});
    EXPECT_EQ(input_sum.out.substr(0, 64), ReadFile(out / "make/input.sha256").value_or("").substr(0, 64));
    return Stats();
  }

  Farm farm_;
  std::string bucket_;
  std::string location_;
  fs::path credentials_;
  std::unique_ptr<S3Client> bucket_client_;
};


TEST_F(BucketFarmTest, ThePipelineRunsOnABucketAndACoordinatorThatLostItsDataFolderKeepsEveryCacheHit) {
  StartCoordinator();
  farm_.StartWorker("w1", {}, 2);
  Job first = RunExample();
  ASSERT_EQ(first.state(), assay::v1::JOB_SUCCEEDED) << first.DebugString();
  for (const Task& t : first.tasks()) EXPECT_FALSE(t.cached()) << t.id();
  EXPECT_GT(Objects("cas/"), 10u) << "the sources, actions and outputs are objects of the bucket";
  EXPECT_EQ(Objects("ac/"), static_cast<size_t>(first.tasks_size())) << "one result object per step";

  // The coordinator's disk is lost in a crash: a new, empty data folder on the same bucket.
  farm_.StopCoordinator(SIGKILL);
  fs::remove_all(farm_.dir() / "data");
  StartCoordinator();
  EXPECT_TRUE(absl::StrContains(ReadFile(farm_.dir() / "coordinator.log").value_or(""), "index rebuilt from a listing"));
  Job second = RunExample();
  ASSERT_EQ(second.state(), assay::v1::JOB_SUCCEEDED) << second.DebugString();
  for (const Task& t : second.tasks()) {
    EXPECT_TRUE(t.cached()) << t.id() << " ran again";
    EXPECT_EQ(t.result().output_files_size(), FindTask(first, t.id())->result().output_files_size()) << t.id();
  }
  RunResult a = farm_.Cli({"artifacts", second.id(), "rv32imac/release", "--out", (farm_.dir() / "a2").string()});
  EXPECT_EQ(a.exit_code, 0) << a.err;
}

TEST_F(BucketFarmTest, ReapiClientsReadAndWriteLargeBlobsThroughTheBucketAndAnOutageIsUnavailable) {
  StartCoordinator();
  CasClient cas(farm_.channel(), "", Once());
  const std::string large = RandomBytes((20 << 20) + 3, 1);  // a multipart upload
  const Digest digest = Digest::OfBytes(large);
  ASSERT_TRUE(cas.UploadBytes(digest, large).ok());
  EXPECT_EQ(Objects(absl::StrCat("cas/", digest.hash())), 1u);
  auto back = cas.ReadBlob(digest);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == large);

  server_->StopGateway();
  const std::string during = "uploaded while the bucket is away";
  absl::Status refused = cas.UploadBytes(Digest::OfBytes(during), during);
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  auto missing = cas.FindMissing({digest, Digest::OfBytes(during)});
  ASSERT_TRUE(missing.ok()) << missing.status() << ": the index answers without the bucket";
  EXPECT_EQ(*missing, std::vector<Digest>{Digest::OfBytes(during)});
  ASSERT_TRUE(server_->StartGateway().ok());
  EXPECT_TRUE(cas.UploadBytes(Digest::OfBytes(during), during).ok());
  EXPECT_TRUE(cas.FindMissing({Digest::OfBytes(during)})->empty());
}

// With the CAS in a bucket, the large input and output go between the CLI, the worker and the
// bucket with requests the coordinator signed: its own traffic stays small, whatever the blob size.
TEST_F(BucketFarmTest, WorkersAndTheCliMoveLargeBlobsInTheBucketItselfNotThroughTheCoordinator) {
  StartCoordinator();
  farm_.StartWorker("w1");
  const assay::v1::CacheStats stats = RunLargeJob();
  const int64_t through = stats.cas_read_bytes() + stats.cas_written_bytes();
  std::cout << "through the coordinator: " << through << " bytes; direct: " << stats.direct_read_bytes()
            << " read, " << stats.direct_written_bytes() << " written\n";
  EXPECT_LT(through, kLarge / 8) << "the small blobs only (the pipeline, results, logs)";
  EXPECT_GE(stats.direct_written_bytes(), 2 * kLarge) << "the CLI's input and the worker's output";
  EXPECT_GE(stats.direct_read_bytes(), 2 * kLarge) << "the worker's input and the CLI's download";

  // Nothing uploaded is nothing committed: the blob stays missing.
  const std::string never = RandomBytes(2 << 20, 8);
  assay::v1::BlobRequestsRequest request;
  *request.add_digests() = Digest::OfBytes(never).ToProto();
  assay::v1::BlobRequestsResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(assay::v1::BlobAccess::NewStub(farm_.channel())->CommitUploads(&context, request, &response).ok());
  ASSERT_EQ(response.requests_size(), 1);
  EXPECT_EQ(response.requests(0).code(), static_cast<int>(absl::StatusCode::kNotFound)) << response.requests(0).message();
  CasClient cas(farm_.channel(), "", Once());
  EXPECT_EQ(cas.FindMissing({Digest::OfBytes(never)}).value_or(std::vector<Digest>{}).size(), 1u);
}

TEST_F(BucketFarmTest, WithoutDirectAccessEveryByteGoesThroughTheCoordinator) {
  farm_.StartCoordinator({"--cas-store", location_, "--cas-credentials", credentials_.string(),
                          "--cas-direct-access=false"});
  farm_.StartWorker("w1");
  const assay::v1::CacheStats stats = RunLargeJob();
  EXPECT_GE(stats.cas_written_bytes(), 2 * kLarge);
  EXPECT_GE(stats.cas_read_bytes(), 2 * kLarge);
  EXPECT_EQ(stats.direct_read_bytes() + stats.direct_written_bytes(), 0);
}

// Workers and CLIs that cannot reach the bucket (here: the endpoint they are given refuses
// connections) carry on through the coordinator: the job succeeds with every byte intact.
TEST_F(BucketFarmTest, ClientsThatCannotReachTheBucketFallBackToTheCoordinator) {
  farm_.StartCoordinator({"--cas-store", location_, "--cas-credentials", credentials_.string(),
                          "--cas-direct-endpoint", "http://127.0.0.1:1"});
  farm_.StartWorker("w1");
  const assay::v1::CacheStats stats = RunLargeJob();
  EXPECT_GE(stats.cas_written_bytes(), 2 * kLarge);
  EXPECT_GE(stats.cas_read_bytes(), 2 * kLarge);
  EXPECT_TRUE(absl::StrContains(ReadFile(farm_.dir() / "worker-w1.log").value_or(""), "out of reach"))
      << "the worker says once why its blobs go through the coordinator";
}

}  // namespace
}  // namespace assay::testing
