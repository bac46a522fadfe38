// REAPI remote execution (Execute, WaitExecution) driven over real gRPC against a real coordinator
// and worker: the operations a client sees, joining, missing inputs, platforms, timeouts, restarts.
// bazel_exec_test.cc runs a real Bazel against the same service.
#include <algorithm>
#include <set>
#include <thread>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "common/digest/digest.h"
#include "google/longrunning/operations.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "common/task/task_states.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {

using google::longrunning::Operation;

struct Stream {
  std::vector<Operation> ops;
  grpc::Status status;
  reapi::ExecuteResponse Response() const {
    reapi::ExecuteResponse response;
    if (!ops.empty()) ops.back().response().UnpackTo(&response);
    return response;
  }
  reapi::ExecutionStage::Value Stage(size_t i) const {
    reapi::ExecuteOperationMetadata metadata;
    ops.at(i).metadata().UnpackTo(&metadata);
    return metadata.stage();
  }
};

struct ActionSpec {
  std::string script{};                          // run by /bin/sh -c
  std::map<std::string, std::string> inputs{};   // file name -> content, in the input root
  std::vector<std::string> output_files{};
  int timeout_seconds = 0;
  std::vector<std::pair<std::string, std::string>> platform{};
  bool do_not_cache = false;
  bool upload_inputs = true;
};

class ExecuteTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }
  void Start(const std::vector<std::string>& args) {
    farm_.StartCoordinator(args);
    channel_ = grpc::CreateChannel(farm_.address(), grpc::InsecureChannelCredentials());
    cas_ = reapi::ContentAddressableStorage::NewStub(channel_);
    ac_ = reapi::ActionCache::NewStub(channel_);
    exec_ = reapi::Execution::NewStub(channel_);
  }

  Digest Put(const std::string& bytes, bool upload = true) {
    Digest digest = Digest::OfBytes(bytes);
    if (!upload) return digest;
    reapi::BatchUpdateBlobsRequest request;
    auto* r = request.add_requests();
    *r->mutable_digest() = digest.ToProto();
    r->set_data(bytes);
    reapi::BatchUpdateBlobsResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(cas_->BatchUpdateBlobs(&context, request, &response).ok());
    return digest;
  }

  Digest Action(const ActionSpec& spec) {
    reapi::Directory root;
    for (const auto& [name, content] : spec.inputs) {
      auto* f = root.add_files();
      f->set_name(name);
      *f->mutable_digest() = Put(content, spec.upload_inputs).ToProto();
    }
    reapi::Command command;
    for (const char* arg : {"/bin/sh", "-c"}) command.add_arguments(arg);
    command.add_arguments(spec.script);
    for (const auto& o : spec.output_files) command.add_output_files(o);
    for (const auto& [name, value] : spec.platform) {
      auto* p = command.mutable_platform()->add_properties();
      p->set_name(name);
      p->set_value(value);
    }
    reapi::Action action;
    *action.mutable_command_digest() = Put(command.SerializeAsString()).ToProto();
    *action.mutable_input_root_digest() = Put(root.SerializeAsString()).ToProto();
    action.mutable_timeout()->set_seconds(spec.timeout_seconds);
    action.set_do_not_cache(spec.do_not_cache);
    return Put(action.SerializeAsString());
  }

  // Reads the whole stream; `on_first` runs after the first Operation arrives.
  Stream Execute(const Digest& action, bool skip_cache_lookup = true, const std::function<void()>& on_first = {}) {
    reapi::ExecuteRequest request;
    *request.mutable_action_digest() = action.ToProto();
    request.set_skip_cache_lookup(skip_cache_lookup);
    grpc::ClientContext context;
    reapi::RequestMetadata metadata;
    metadata.set_tool_invocation_id("invocation-1");
    metadata.mutable_tool_details()->set_tool_name("bazel");
    context.AddMetadata("build.bazel.remote.execution.v2.requestmetadata-bin", metadata.SerializeAsString());
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    Stream out;
    auto reader = exec_->Execute(&context, request);
    Operation op;
    while (reader->Read(&op)) {
      out.ops.push_back(op);
      if (out.ops.size() == 1 && on_first) on_first();
    }
    out.status = reader->Finish();
    return out;
  }

  Stream Wait(const std::string& name) {
    reapi::WaitExecutionRequest request;
    request.set_name(name);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    Stream out;
    auto reader = exec_->WaitExecution(&context, request);
    Operation op;
    while (reader->Read(&op)) out.ops.push_back(op);
    out.status = reader->Finish();
    return out;
  }

  std::string Blob(const reapi::Digest& digest) {
    reapi::BatchReadBlobsRequest request;
    *request.add_digests() = digest;
    reapi::BatchReadBlobsResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(cas_->BatchReadBlobs(&context, request, &response).ok());
    return response.responses_size() == 1 ? response.responses(0).data() : "";
  }

  Farm farm_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<reapi::ContentAddressableStorage::Stub> cas_;
  std::unique_ptr<reapi::ActionCache::Stub> ac_;
  std::unique_ptr<reapi::Execution::Stub> exec_;
};

TEST_F(ExecuteTest, AnActionRunsOnAWorkerFromQueuedToDoneAndOnlyItsSuccessIsCached) {
  farm_.StartWorker("w1");
  const Digest action = Action({.script = "mkdir -p out && tr a-z A-Z < in.txt > out/up.txt && echo to-stderr >&2",
                                .inputs = {{"in.txt", "hello\n"}},
                                .output_files = {"out/up.txt"}});
  Stream s = Execute(action);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  ASSERT_GE(s.ops.size(), 2u);
  EXPECT_EQ(s.Stage(0), reapi::ExecutionStage::QUEUED);
  EXPECT_FALSE(s.ops.front().done());
  EXPECT_FALSE(s.ops.front().name().empty());
  for (const Operation& op : s.ops) EXPECT_EQ(op.name(), s.ops.front().name());
  EXPECT_TRUE(s.ops.back().done());
  EXPECT_EQ(s.Stage(s.ops.size() - 1), reapi::ExecutionStage::COMPLETED);
  const reapi::ExecuteResponse response = s.Response();
  ASSERT_EQ(response.status().code(), 0) << response.status().message();
  ASSERT_TRUE(response.has_result());
  EXPECT_EQ(response.result().exit_code(), 0);
  ASSERT_EQ(response.result().output_files_size(), 1);
  EXPECT_EQ(response.result().output_files(0).path(), "out/up.txt");
  EXPECT_EQ(Blob(response.result().output_files(0).digest()), "HELLO\n");
  EXPECT_EQ(Blob(response.result().stderr_digest()), "to-stderr\n");
  EXPECT_EQ(response.result().stderr_raw(), "to-stderr\n") << "a small stderr rides in the result (docs/bazel.md)";

  reapi::GetActionResultRequest get;
  *get.mutable_action_digest() = action.ToProto();
  reapi::ActionResult cached;
  grpc::ClientContext context;
  // Cached by the time Execute said done (the record is written with the task's end).
  ASSERT_TRUE(ac_->GetActionResult(&context, get, &cached).ok());
  ASSERT_EQ(cached.output_files_size(), 1);
  EXPECT_EQ(cached.output_files(0).digest().hash(), response.result().output_files(0).digest().hash());

  // A failing action: its exit code and stderr come back with status OK, and nothing is cached.
  const Digest failing = Action({.script = "echo broken >&2; exit 3"});
  Stream f = Execute(failing);
  ASSERT_TRUE(f.status.ok());
  EXPECT_EQ(f.Response().status().code(), 0);
  EXPECT_EQ(f.Response().result().exit_code(), 3);
  EXPECT_EQ(Blob(f.Response().result().stderr_digest()), "broken\n");
  EXPECT_EQ(f.Response().result().stderr_raw(), "broken\n");
  *get.mutable_action_digest() = failing.ToProto();
  grpc::ClientContext miss_context;
  EXPECT_EQ(ac_->GetActionResult(&miss_context, get, &cached).error_code(), grpc::StatusCode::NOT_FOUND);

  // Both actions are tasks of the invocation's one job.
  auto jobs = farm_.cli().Run({"jobs"});
  EXPECT_TRUE(absl::StrContains(jobs.out, "bazel")) << jobs.out;
}

TEST_F(ExecuteTest, ASecondExecuteOfAnActionInFlightJoinsItAndItRunsOnce) {
  farm_.StartWorker("w1");
  const Digest action = Action({.script = "sleep 1; date +%s%N > stamp", .output_files = {"stamp"}});
  Stream second;
  std::thread joiner;
  Stream first = Execute(action, true, [&] { joiner = std::thread([&] { second = Execute(action); }); });
  joiner.join();
  ASSERT_TRUE(first.status.ok() && second.status.ok());
  EXPECT_EQ(second.ops.front().name(), first.ops.front().name());
  ASSERT_EQ(first.Response().result().output_files_size(), 1);
  EXPECT_EQ(second.Response().result().output_files(0).digest().hash(),
            first.Response().result().output_files(0).digest().hash());
  std::string job = first.ops.front().name().substr(std::string("operations/").size());
  job = job.substr(0, job.find('/'));
  auto read = farm_.GetJob(job);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->tasks_size(), 1) << "the action ran once";

  // do_not_cache: never joined, each Execute runs it.
  const Digest uncached = Action({.script = "sleep 1", .do_not_cache = true});
  Stream other;
  Stream one = Execute(uncached, true, [&] { joiner = std::thread([&] { other = Execute(uncached); }); });
  joiner.join();
  EXPECT_NE(other.ops.front().name(), one.ops.front().name());
}

TEST_F(ExecuteTest, MissingInputsAreFailedPreconditionNamingEveryBlob) {
  farm_.StartWorker("w1");
  const Digest action = Action({.script = "cat a b", .inputs = {{"a", "one"}, {"b", "two"}}, .upload_inputs = false});
  Stream s = Execute(action);
  ASSERT_EQ(s.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.status.error_message();
  EXPECT_TRUE(s.ops.empty());
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(s.status.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::PreconditionFailure failure;
  ASSERT_TRUE(details.details(0).UnpackTo(&failure));
  std::set<std::string> subjects;
  for (const auto& v : failure.violations()) {
    EXPECT_EQ(v.type(), "MISSING");
    subjects.insert(v.subject());
  }
  EXPECT_EQ(subjects, (std::set<std::string>{absl::StrCat("blobs/", Digest::OfBytes("one").ToString()),
                                             absl::StrCat("blobs/", Digest::OfBytes("two").ToString())}));
  // An action that was never uploaded is named the same way.
  Stream none = Execute(Digest::OfBytes("no such action"));
  EXPECT_EQ(none.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(none.status.error_message(), Digest::OfBytes("no such action").ToString()));
}

TEST_F(ExecuteTest, WaitExecutionResumesAKnownOperationAndSaysNotFoundForOthers) {
  farm_.StartWorker("w1");
  Stream s = Execute(Action({.script = "echo done > out", .output_files = {"out"}}));
  ASSERT_TRUE(s.status.ok());
  Stream again = Wait(s.ops.front().name());
  ASSERT_TRUE(again.status.ok()) << again.status.error_message();
  ASSERT_EQ(again.ops.size(), 1u);
  EXPECT_TRUE(again.ops[0].done());
  EXPECT_EQ(again.Response().result().output_files(0).digest().hash(), s.Response().result().output_files(0).digest().hash());
  for (const char* name : {"operations/999/0", "operations/1/77", "no-such-operation"}) {
    EXPECT_EQ(Wait(name).status.error_code(), grpc::StatusCode::NOT_FOUND) << name;
  }
}

TEST_F(ExecuteTest, APlatformNoWorkerOffersFailsAtOnceNamingItAndTheClosestWorker) {
  farm_.StartWorker("w1", {"pool=cpu"});
  Stream ok = Execute(Action({.script = "true", .platform = {{"pool", "cpu"}}}));
  ASSERT_TRUE(ok.status.ok());
  EXPECT_EQ(ok.Response().status().code(), 0);
  Stream s = Execute(Action({.script = "true", .platform = {{"pool", "gpu"}}}));
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(s.status.error_message(), "pool=gpu")) << s.status.error_message();
  EXPECT_TRUE(absl::StrContains(s.status.error_message(), "w1")) << s.status.error_message();
  // The farm's own settings are not a client's to set.
  Stream reserved = Execute(Action({.script = "true", .platform = {{"assay-container-network", "true"}}}));
  EXPECT_EQ(reserved.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ExecuteTest, ATimedOutActionIsDeadlineExceededWithWhatItPrintedAndATooLongTimeoutIsRefused) {
  farm_.StopCoordinator(SIGTERM);
  Start({"--max-action-timeout-seconds", "60"});
  farm_.StartWorker("w1");
  Stream s = Execute(Action({.script = "echo started; sleep 30", .timeout_seconds = 1}));
  ASSERT_TRUE(s.status.ok());
  EXPECT_EQ(s.Response().status().code(), static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED));
  EXPECT_EQ(Blob(s.Response().result().stdout_digest()), "started\n");
  Stream refused = Execute(Action({.script = "true", .timeout_seconds = 120}));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(refused.status.error_message(), "--max-action-timeout")) << refused.status.error_message();
}

TEST_F(ExecuteTest, AnOperationSurvivesKillDashNineOfTheCoordinator) {
  farm_.StartWorker("w1");
  const Digest action = Action({.script = "sleep 2; echo survived > out", .output_files = {"out"}});
  std::string name;
  // The operation is acknowledged (its first message) only once its task is written.
  Stream first = Execute(action, true, [&] { farm_.StopCoordinator(SIGKILL); });
  ASSERT_FALSE(first.ops.empty());
  name = first.ops.front().name();
  EXPECT_FALSE(first.status.ok());
  Start({});
  Stream resumed = Wait(name);
  ASSERT_TRUE(resumed.status.ok()) << resumed.status.error_message();
  ASSERT_TRUE(resumed.ops.back().done());
  EXPECT_EQ(resumed.Response().status().code(), 0) << resumed.Response().status().message();
  ASSERT_EQ(resumed.Response().result().output_files_size(), 1);
  EXPECT_EQ(Blob(resumed.Response().result().output_files(0).digest()), "survived\n");
}

TEST_F(ExecuteTest, AnActionNoClientWaitsForAnyMoreIsCancelledAfterTheGrace) {
  farm_.StopCoordinator(SIGTERM);
  Start({"--remote-abandoned-seconds", "1", "--remote-job-idle-seconds", "0.5"});
  farm_.StartWorker("w1");
  reapi::ExecuteRequest request;
  *request.mutable_action_digest() = Action({.script = "sleep 60"}).ToProto();
  std::string name;
  {
    grpc::ClientContext context;
    auto reader = exec_->Execute(&context, request);
    Operation op;
    ASSERT_TRUE(reader->Read(&op));
    name = op.name();
    context.TryCancel();  // the client goes away, and never comes back with WaitExecution
    reader->Finish();
  }
  std::string job = name.substr(std::string("operations/").size());
  job = job.substr(0, job.find('/'));
  auto ended = farm_.WaitJob(job, absl::Seconds(30));  // the job ends once its only action is cancelled
  ASSERT_TRUE(ended.ok()) << ended.status();
  ASSERT_EQ(ended->tasks_size(), 1);
  EXPECT_EQ(ended->tasks(0).state(), assay::v1::TASK_CANCELLED);
  EXPECT_TRUE(absl::StrContains(ended->tasks(0).message(), "no client has waited")) << ended->tasks(0).message();
  Stream after = Wait(name);  // the operation is still known: done, CANCELLED
  ASSERT_TRUE(after.status.ok());
  EXPECT_EQ(after.Response().status().code(), static_cast<int>(grpc::StatusCode::CANCELLED));
}

// Clients that leave at once, while the farm is still looking at their action (the coordinator checks
// the action and makes its task after the stream began): every task made for them is cancelled once
// the grace is over, like any abandoned action, and the coordinator serves the next client.
TEST_F(ExecuteTest, ExecutesWhoseClientsLeaveAtOnceAreCancelledAfterTheGrace) {
  farm_.StopCoordinator(SIGTERM);
  Start({"--remote-abandoned-seconds", "1", "--remote-job-idle-seconds", "0.5"});
  farm_.StartWorker("w1");
  for (int i = 0; i < 30; ++i) {
    reapi::ExecuteRequest request;
    *request.mutable_action_digest() = Action({.script = absl::StrCat("sleep 60 # ", i)}).ToProto();
    request.set_skip_cache_lookup(true);
    grpc::ClientContext context;
    auto reader = exec_->Execute(&context, request);
    context.TryCancel();
    reader->Finish();
  }
  std::vector<assay::v1::Job> jobs;
  const bool all_ended = WaitFor([&] {
    assay::v1::ListJobsRequest request;
    assay::v1::ListJobsResponse response;
    grpc::ClientContext context;
    if (!farm_.jobs()->ListJobs(&context, request, &response).ok()) return false;
    jobs.assign(response.jobs().begin(), response.jobs().end());
    return std::all_of(jobs.begin(), jobs.end(), [](const assay::v1::Job& j) { return IsFinal(j.state()); });
  }, absl::Seconds(60));
  ASSERT_TRUE(all_ended) << "a job of abandoned actions did not end";
  int cancelled = 0;
  for (const assay::v1::Job& summary : jobs) {
    auto job = farm_.GetJob(summary.id());
    ASSERT_TRUE(job.ok()) << job.status();
    for (const assay::v1::Task& t : job->tasks()) {
      EXPECT_EQ(t.state(), assay::v1::TASK_CANCELLED) << t.id() << ": " << t.message();
      cancelled += t.state() == assay::v1::TASK_CANCELLED;
    }
  }
  std::cout << "[ figures  ] " << cancelled << " of 30 Executes cancelled at once had become tasks\n";
  ASSERT_TRUE(PidAlive(farm_.coordinator_pid()));
  Stream next = Execute(Action({.script = "echo served > out.txt", .output_files = {"out.txt"}}));
  ASSERT_TRUE(next.status.ok()) << next.status.error_message();
  EXPECT_EQ(next.Response().status().code(), 0) << next.Response().status().message();
}

}  // namespace
}  // namespace assay::testing
