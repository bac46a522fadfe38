// Hostile input sent straight to the real services, as a client that skips the CLI would: every
// hand-made bad tree is refused at Submit naming the path, no job is created and no worker writes a
// thing; a step's output that is a symlink out of the work directory is never uploaded.
#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "common/remote/cas_client.h"
#include "common/rocksdb/database.h"
#include "common/rocksdb/rocksdb_blob_store.h"
#include "common/tree/merkle.h"
#include "tests/common/hostile_trees.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    farm_.StartCoordinator();
    farm_.StartWorker("w1");
    cas_ = reapi::ContentAddressableStorage::NewStub(farm_.channel());
  }

  void Upload(const std::map<Digest, std::string>& blobs) {
    reapi::BatchUpdateBlobsRequest request;
    int64_t bytes = 0;
    auto flush = [&] {
      if (request.requests_size() == 0) return;
      reapi::BatchUpdateBlobsResponse response;
      grpc::ClientContext context;
      grpc::Status status = cas_->BatchUpdateBlobs(&context, request, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      for (const auto& r : response.responses()) ASSERT_EQ(r.status().code(), 0) << r.status().message();
      request.clear_requests();
      bytes = 0;
    };
    for (const auto& [digest, data] : blobs) {
      if (bytes + static_cast<int64_t>(data.size()) > (2 << 20)) flush();
      auto* entry = request.add_requests();
      *entry->mutable_digest() = digest.ToProto();
      entry->set_data(data);
      bytes += static_cast<int64_t>(data.size());
    }
    flush();
  }

  grpc::Status Submit(const Digest& root, assay::v1::Job* job) {
    assay::v1::SubmitRequest request;
    *request.mutable_source_root() = root.ToProto();
    grpc::ClientContext context;
    return farm_.jobs()->Submit(&context, request, job);
  }

  int JobCount() {
    assay::v1::ListJobsRequest request;
    request.set_limit(100);
    assay::v1::ListJobsResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(farm_.jobs()->ListJobs(&context, request, &response).ok());
    return response.jobs_size();
  }

  // Everything below the farm's folder, but the coordinator's database and the worker's cache.
  std::vector<std::string> FarmFiles() {
    std::vector<std::string> out;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(farm_.dir(), ec), end; !ec && it != end; it.increment(ec)) {
      std::string rel = it->path().lexically_relative(farm_.dir()).string();
      if (absl::StrContains(rel, "/cache") || absl::StartsWith(rel, "data")) continue;
      out.push_back(rel);
    }
    return out;
  }

  Farm farm_;
  std::unique_ptr<reapi::ContentAddressableStorage::Stub> cas_;
};

TEST_F(HostileInputTest, EveryHostileTreeIsRefusedAtSubmitAndNothingIsWritten) {
  const std::vector<std::string> before = FarmFiles();
  for (const HostileTree& tree : HostileTrees()) {
    SCOPED_TRACE(tree.name);
    Upload(tree.blobs);
    assay::v1::Job job;
    grpc::Status status = Submit(tree.root, &job);
    ASSERT_FALSE(status.ok()) << "accepted as job " << job.id();
    EXPECT_EQ(static_cast<int>(status.error_code()), static_cast<int>(tree.code)) << status.error_message();
    EXPECT_TRUE(absl::StrContains(status.error_message(), QuotedPath(tree))) << status.error_message();
  }
  EXPECT_EQ(JobCount(), 0) << "a refused tree must not create a job";
  EXPECT_EQ(FarmFiles(), before) << "nothing may be written on the worker or beside it";

  // The same harness with a well-formed tree is accepted and runs: the refusals were the trees' own.
  HostileTree benign = BenignTree();
  Upload(benign.blobs);
  assay::v1::Job job;
  grpc::Status status = Submit(benign.root, &job);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto done = farm_.WaitJob(job.id());
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), assay::v1::JOB_SUCCEEDED) << farm_.Log(job.id(), "touch");
  EXPECT_EQ(JobCount(), 1);
}

TEST_F(HostileInputTest, AnOutputSymlinkOutOfTheWorkDirectoryIsNeverUploaded) {
  auto tree = farm_.WriteTree("leak", {{"assay.yaml", R"(
steps:
  - id: leak
    run: ln -s /etc/passwd leak.txt
    outputs: [leak.txt]
)"}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  auto job = farm_.WaitJob(*id);
  ASSERT_TRUE(job.ok()) << job.status();
  const assay::v1::Task* task = FindTask(*job, "leak");
  ASSERT_NE(task, nullptr);
  EXPECT_EQ(task->state(), assay::v1::TASK_FAILED);
  EXPECT_TRUE(absl::StrContains(task->message(), "symlink to '/etc/passwd'")) << task->message();
  EXPECT_EQ(task->result().output_files_size(), 0);
  // /etc/passwd's bytes never reached the CAS.
  auto passwd = DigestFile("/etc/passwd");
  ASSERT_TRUE(passwd.ok());
  reapi::FindMissingBlobsRequest request;
  *request.add_blob_digests() = passwd->ToProto();
  reapi::FindMissingBlobsResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(cas_->FindMissingBlobs(&context, request, &response).ok());
  EXPECT_EQ(response.missing_blob_digests_size(), 1);
}

TEST_F(HostileInputTest, AnOutputSymlinkInsideTheWorkDirectoryTravelsAsASymlink) {
  auto tree = farm_.WriteTree("inside-link", {{"assay.yaml", R"(
steps:
  - id: make
    run: mkdir -p out && echo hello > out/real.txt && ln -s real.txt out/link.txt
    outputs: [out/]
  - id: use
    needs: [make]
    run: test -L out/link.txt && cat out/link.txt
)"}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  auto job = farm_.WaitJob(*id);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->state(), assay::v1::JOB_SUCCEEDED) << farm_.Log(*id, "make") << farm_.Log(*id, "use");
  const assay::v1::Task* make = FindTask(*job, "make");
  ASSERT_NE(make, nullptr);
  ASSERT_EQ(make->result().output_symlinks_size(), 1);
  EXPECT_EQ(make->result().output_symlinks(0).path(), "out/link.txt");
  EXPECT_EQ(make->result().output_symlinks(0).target(), "real.txt");
  EXPECT_EQ(make->result().output_files_size(), 1);
  EXPECT_TRUE(absl::StrContains(farm_.Log(*id, "use"), "hello")) << farm_.Log(*id, "use");

  // assay artifacts brings it back as a symlink beside its target.
  const fs::path out = farm_.dir() / "artifacts";
  RunResult r = farm_.Cli({"artifacts", *id, "make", "--out", out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::is_symlink(out / "make/out/link.txt"));
  EXPECT_EQ(fs::read_symlink(out / "make/out/link.txt"), "real.txt");
  EXPECT_EQ(ReadFile(out / "make/out/link.txt").value_or(""), "hello\n");
}

// A store that lies: a source blob rots inside the coordinator's RocksDB (same size, other bytes).
// The worker that fetches it fails the task naming the digest (the file it was writing is removed
// at once: TreeWriterTest and CasClientTest show that on their own).
TEST_F(HostileInputTest, AWorkerFedBytesThatDoNotMatchTheirDigestFailsTheTaskAndWritesNothing) {
  const std::string good = "the firmware source, as uploaded\n";
  auto tree = farm_.WriteTree("rot", {{"assay.yaml", "steps:\n  - id: show\n    run: cat data.txt\n"},
                                      {"data.txt", good}});
  auto scanned = ScanDirectory(tree, {});
  ASSERT_TRUE(scanned.ok()) << scanned.status();
  CasClient client(farm_.channel(), "");
  ASSERT_TRUE(client.Upload(scanned->blobs).ok());
  farm_.StopWorker("w1");
  farm_.StopCoordinator(SIGTERM);
  const Digest data = Digest::OfBytes(good);
  {
    auto db = Database::Open((farm_.dir() / "data").string());
    ASSERT_TRUE(db.ok()) << db.status();
    auto store = RocksDbBlobStore::Create(db->get(), RealClock::Get());
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Delete(data).ok());
    std::string rotten = good;
    rotten[4] ^= 0x20;
    ASSERT_TRUE((*store)->Put(data, rotten).ok());  // the raw store does not check: that is the point
  }
  farm_.StartCoordinator();
  farm_.StartWorker("w1");
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  auto job = farm_.WaitJob(*id);
  ASSERT_TRUE(job.ok()) << job.status();
  const assay::v1::Task* task = FindTask(*job, "show");
  ASSERT_NE(task, nullptr);
  EXPECT_EQ(task->state(), assay::v1::TASK_FAILED);
  // "fetching inputs: input data.txt: blob HASH/33: the bytes received (...) do not match the digest"
  EXPECT_TRUE(absl::StrContains(task->message(), "input data.txt: blob " + data.ToString())) << task->message();
  EXPECT_TRUE(absl::StrContains(task->message(), "do not match the digest")) << task->message();
  EXPECT_FALSE(absl::StrContains(farm_.Log(*id, "show"), "irmware source")) << "the step must not have run";
  for (const std::string& file : FarmFiles()) {
    if (absl::StartsWith(file, "work-")) {
      EXPECT_FALSE(absl::EndsWith(file, "data.txt")) << file;
    }
  }
}

}  // namespace
}  // namespace assay::testing
