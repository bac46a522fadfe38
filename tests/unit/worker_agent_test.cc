// The worker agent with injected parts: an executor that runs nothing (it writes the files a step
// would and reports an exit code) and an in-memory local cache, against a real coordinator served
// in this process on loopback. Shows the agent's own path: assignment, inputs (a need's outputs),
// execution, output upload, the result, and outputs kept in the host's cache.
#include "worker/agent.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "assay/v1/admin.grpc.pb.h"
#include "assay/v1/jobs.grpc.pb.h"
#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "common/base/file_util.h"
#include "common/cas/memory_blob_store.h"
#include "coordinator/server.h"
#include "worker/executor.h"

namespace assay {
namespace {
namespace fs = std::filesystem;

// Runs nothing: a command mentioning "build" writes fw.bin and says so; one mentioning "test"
// succeeds only if fw.bin (its need's output) is in its work directory.
class FakeExecutor final : public Executor {
 public:
  std::string name() const override { return "fake"; }
  absl::StatusOr<ExecResult> Run(const ExecRequest& request, const OutputFn& output, const CancelToken&) override {
    {
      absl::MutexLock lock(&mu_);
      runs_.push_back(request);
    }
    ExecResult result;
    const std::string& script = request.argv.back();
    if (absl::StrContains(script, "build")) {
      std::ofstream(request.workdir / "fw.bin") << "firmware bytes";
      output(OutputStream::kStdout, "compiled\n");
      result.exit_code = 0;
    } else {
      const bool has_input = fs::exists(request.workdir / "fw.bin");
      output(OutputStream::kStderr, has_input ? "fw.bin is here\n" : "fw.bin is missing\n");
      result.exit_code = has_input ? 0 : 1;
    }
    return result;
  }
  std::vector<ExecRequest> runs() {
    absl::MutexLock lock(&mu_);
    return runs_;
  }

 private:
  absl::Mutex mu_;
  std::vector<ExecRequest> runs_ ABSL_GUARDED_BY(mu_);
};

class WorkerAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CoordinatorServer::Options options;
    options.listen = "127.0.0.1:0";
    options.data_dir = (dir_.path() / "coordinator").string();
    options.jobs.heartbeat_interval = absl::Milliseconds(200);
    ASSERT_TRUE(server_.Start(options).ok());
    address_ = "127.0.0.1:" + std::to_string(server_.port());
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  }
  void TearDown() override { server_.Shutdown(); }

  // Uploads a tree holding only assay.yaml and submits it.
  std::string Submit(const std::string& yaml) {
    auto cas = build::bazel::remote::execution::v2::ContentAddressableStorage::NewStub(channel_);
    reapi::Directory root;
    Digest file = Digest::OfBytes(yaml);
    auto* node = root.add_files();
    node->set_name("assay.yaml");
    *node->mutable_digest() = file.ToProto();
    const std::string root_bytes = root.SerializeAsString();
    Digest root_digest = Digest::OfBytes(root_bytes);
    reapi::BatchUpdateBlobsRequest upload;
    for (const auto& [d, bytes] : {std::pair{file, yaml}, std::pair{root_digest, root_bytes}}) {
      auto* r = upload.add_requests();
      *r->mutable_digest() = d.ToProto();
      r->set_data(bytes);
    }
    reapi::BatchUpdateBlobsResponse uploaded;
    grpc::ClientContext upload_context;
    EXPECT_TRUE(cas->BatchUpdateBlobs(&upload_context, upload, &uploaded).ok());
    assay::v1::SubmitRequest request;
    *request.mutable_source_root() = root_digest.ToProto();
    assay::v1::Job job;
    grpc::ClientContext context;
    grpc::Status status = assay::v1::Jobs::NewStub(channel_)->Submit(&context, request, &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return job.id();
  }

  assay::v1::Job WaitJob(const std::string& id) {
    auto jobs = assay::v1::Jobs::NewStub(channel_);
    assay::v1::WatchJobRequest request;
    request.set_job_id(id);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto reader = jobs->WatchJob(&context, request);
    assay::v1::Job job;
    while (reader->Read(&job)) {
    }
    EXPECT_TRUE(reader->Finish().ok());
    return job;
  }

  ScopedTempDir dir_{"worker-agent-test"};
  CoordinatorServer server_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(WorkerAgentTest, RunsAssignedStepsWithItsInjectedPartsAndKeepsOutputsInItsCache) {
  WorkerAgent::Options options;
  options.coordinator = address_;
  options.worker_id = "fake-worker";
  options.work_dir = (dir_.path() / "work").string();
  auto executor = std::make_unique<FakeExecutor>();
  FakeExecutor* fake = executor.get();
  MemoryBlobStore cache;
  WorkerParts parts;
  parts.executor = std::move(executor);
  parts.cas = std::make_unique<CasClient>(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()), "");
  parts.local_cache = &cache;
  WorkerAgent agent(options, std::move(parts));
  EXPECT_EQ(agent.executor_name(), "fake");
  std::thread runner([&] { agent.Run(); });

  std::string id = Submit(R"(
steps:
  - id: build
    run: make build
    outputs: [fw.bin]
    cache: false
  - id: test
    needs: [build]
    run: run test
    cache: false
)");
  assay::v1::Job job = WaitJob(id);
  agent.Stop();
  runner.join();

  EXPECT_EQ(job.state(), assay::v1::JOB_SUCCEEDED);
  ASSERT_EQ(job.tasks_size(), 2);
  EXPECT_EQ(job.tasks(0).worker(), "fake-worker");
  ASSERT_EQ(job.tasks(0).result().output_files_size(), 1);
  EXPECT_EQ(job.tasks(0).result().output_files(0).path(), "fw.bin");
  const Digest fw = Digest::OfBytes("firmware bytes");
  EXPECT_EQ(job.tasks(0).result().output_files(0).digest().hash(), fw.hash());
  // Both steps ran through the injected executor, in their own work directories, with the step's
  // environment; the second found the first's output among its inputs.
  auto runs = fake->runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].argv.back(), "make build");
  EXPECT_NE(runs[0].workdir, runs[1].workdir);
  bool step_env = false;
  for (const auto& [k, v] : runs[1].env) step_env = step_env || (k == "ASSAY_STEP" && v == "test");
  EXPECT_TRUE(step_env);
  // The output went to the coordinator's CAS and stayed in this host's (injected) cache.
  EXPECT_TRUE(cache.Get(fw).ok()) << "the build's output was not kept in the local cache";
  auto cas = build::bazel::remote::execution::v2::ContentAddressableStorage::NewStub(channel_);
  reapi::FindMissingBlobsRequest find;
  *find.add_blob_digests() = fw.ToProto();
  reapi::FindMissingBlobsResponse missing;
  grpc::ClientContext find_context;
  ASSERT_TRUE(cas->FindMissingBlobs(&find_context, find, &missing).ok());
  EXPECT_EQ(missing.missing_blob_digests_size(), 0) << "the output is not in the coordinator's CAS";
  // Small outputs and logs travelled with the results: the only CAS writes are this test's own
  // upload of the source tree (2 blobs), none by the worker.
  assay::v1::CacheStats stats;
  grpc::ClientContext stats_context;
  ASSERT_TRUE(assay::v1::Admin::NewStub(channel_)->GetCacheStats(&stats_context, {}, &stats).ok());
  EXPECT_EQ(stats.cas_writes(), 2);
  EXPECT_TRUE(job.tasks(1).state() == assay::v1::TASK_SUCCEEDED) << job.tasks(1).message();
}

}  // namespace
}  // namespace assay
