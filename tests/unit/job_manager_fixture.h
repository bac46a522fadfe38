// The JobManager test fixture: a fake clock, real RocksDB and in-process worker sessions (no gRPC).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "common/base/file_util.h"
#include "common/rocksdb/rocksdb_blob_store.h"
#include "coordinator/families.h"
#include "coordinator/job_manager.h"

namespace assay {

using assay::v1::CoordinatorMessage;

// Passes everything to the real store, but once armed holds the next write until released: a
// stand-in for a slow disk under the CAS.
class StallingBlobStore final : public BlobStore {
 public:
  explicit StallingBlobStore(BlobStore* inner) : inner_(inner) {}
  void Arm() { armed_ = true; }
  void Release() { released_.Notify(); }
  absl::Notification entered;

  absl::StatusOr<std::vector<Digest>> FindMissing(const std::vector<Digest>& d) override { return inner_->FindMissing(d); }
  absl::StatusOr<std::string> Get(const Digest& d) override { return inner_->Get(d); }
  absl::Status Read(const Digest& d, int64_t o, int64_t l, const ChunkSink& s) override { return inner_->Read(d, o, l, s); }
  absl::Status Put(const Digest& d, absl::string_view data) override {
    if (armed_.exchange(false)) {
      entered.Notify();
      released_.WaitForNotification();
    }
    return inner_->Put(d, data);
  }
  absl::StatusOr<std::unique_ptr<BlobWriter>> OpenWrite(const Digest& d) override { return inner_->OpenWrite(d); }
  std::vector<absl::Status> PutManyUnsynced(const std::vector<BlobToPut>& blobs) override {
    return inner_->PutManyUnsynced(blobs);
  }

 private:
  BlobStore* inner_;
  std::atomic<bool> armed_{false};
  absl::Notification released_;
};

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    manager_.reset();
    action_cache_.reset();
    job_store_.reset();
    blobs_.reset();
    stalling_.reset();
    raw_.reset();
    db_.reset();
    db_ = Database::Open(dir_.path() / "db", CoordinatorDatabaseOptions()).value();
    raw_ = RocksDbBlobStore::Create(db_.get(), &clock_).value();
    stalling_ = std::make_unique<StallingBlobStore>(raw_.get());
    blobs_ = std::make_unique<VerifyingBlobStore>(stalling_.get());
    job_store_ = std::make_unique<JobStore>(db_.get());
    action_cache_ = std::make_unique<ActionCache>(db_.get(), raw_.get());
    JobManager::Options options;
    options.lease_ttl = kTtl;
    options.max_kept_bytes = max_kept_bytes_;
    // The real store, unless the test has the disk refuse writes (as a full one does).
    options.state_writer = [this](rocksdb::WriteBatch* batch, bool sync) {
      if (refuse_writes_.load()) {
        ++refused_writes_;
        return absl::ResourceExhaustedError("the disk is full (the test's)");
      }
      ++taken_writes_;
      return job_store_->Write(batch, sync);
    };
    manager_ = std::make_unique<JobManager>(job_store_.get(), blobs_.get(), nullptr, action_cache_.get(), &clock_,
                                            options);
    ASSERT_TRUE(manager_->Recover().ok());
  }

  // A source tree holding only assay.yaml, stored in the CAS.
  Digest Tree(const std::string& yaml) {
    Digest file = Digest::OfBytes(yaml);
    EXPECT_TRUE(blobs_->Put(file, yaml).ok());
    reapi::Directory root;
    auto* node = root.add_files();
    node->set_name("assay.yaml");
    *node->mutable_digest() = file.ToProto();
    std::string bytes = root.SerializeAsString();
    Digest d = Digest::OfBytes(bytes);
    EXPECT_TRUE(blobs_->Put(d, bytes).ok());
    return d;
  }

  std::string Submit(const std::string& yaml) {
    assay::v1::SubmitRequest request;
    *request.mutable_source_root() = Tree(yaml).ToProto();
    auto job = manager_->Submit(request);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? job->id() : "";
  }

  std::shared_ptr<WorkerSession> Connect(const std::string& id, int slots = 1) {
    auto session = std::make_shared<WorkerSession>(id);
    assay::v1::WorkerHello hello;
    hello.set_worker_id(id);
    hello.set_slots(slots);
    EXPECT_TRUE(manager_->WorkerConnected(hello, session).ok());
    auto welcome = session->Next(absl::ZeroDuration());
    EXPECT_TRUE(welcome && welcome->has_welcome());
    return session;
  }

  // The next assignment sent to a session (none pending: fails the test).
  assay::v1::Assignment NextAssignment(WorkerSession& session) {
    auto message = session.Next(absl::ZeroDuration());
    EXPECT_TRUE(message && message->has_assign());
    return message ? message->assign() : assay::v1::Assignment();
  }

  absl::Status Finish(const std::string& worker, const assay::v1::Assignment& a, int exit_code) {
    assay::v1::TaskResult result;
    *result.mutable_lease() = a.lease();
    result.mutable_result()->set_exit_code(exit_code);
    return manager_->OnResult(worker, result);
  }

  assay::v1::Task Task0(const std::string& job) { return manager_->GetJob(job, true).value().tasks(0); }

  static constexpr absl::Duration kTtl = absl::Seconds(10);
  std::atomic<bool> refuse_writes_{false};
  std::atomic<int> refused_writes_{0}, taken_writes_{0};
  size_t max_kept_bytes_ = size_t{64} << 20;  // JobManager::Options's; set before Open
  ScopedTempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<RocksDbBlobStore> raw_;
  std::unique_ptr<StallingBlobStore> stalling_;
  std::unique_ptr<VerifyingBlobStore> blobs_;
  std::unique_ptr<JobStore> job_store_;
  std::unique_ptr<ActionCache> action_cache_;
  std::unique_ptr<JobManager> manager_;
};

inline constexpr char kOneStep[] = "steps:\n  - id: s\n    run: echo hi\n    cache: false\n";

}  // namespace assay
