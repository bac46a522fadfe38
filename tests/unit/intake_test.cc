// Intake alone: a SubmitRequest checked, its tree validated, its pipeline read and planned, its size
// baseline found, over an in-memory CAS and a real job store (no JobManager, no lock).
#include "coordinator/intake.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/base/file_util.h"
#include "common/cas/memory_blob_store.h"
#include "coordinator/families.h"
#include "google/rpc/error_details.pb.h"

namespace assay {
namespace {

class IntakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = Database::Open(dir_.path() / "db", CoordinatorDatabaseOptions()).value();
    store_ = std::make_unique<JobStore>(db_.get());
    intake_ = std::make_unique<Intake>(&blobs_, store_.get(), &clock_, Intake::Options{});
  }

  Digest Put(const std::string& bytes) {
    Digest d = Digest::OfBytes(bytes);
    EXPECT_TRUE(blobs_.Put(d, bytes).ok());
    return d;
  }

  // A flat source tree of the given files, stored in the CAS.
  Digest Tree(const std::map<std::string, std::string>& files) {
    reapi::Directory root;
    for (const auto& [name, content] : files) {
      auto* node = root.add_files();
      node->set_name(name);
      *node->mutable_digest() = Put(content).ToProto();
    }
    return Put(root.SerializeAsString());
  }

  assay::v1::SubmitRequest Request(const Digest& root) {
    assay::v1::SubmitRequest request;
    *request.mutable_source_root() = root.ToProto();
    return request;
  }

  ScopedTempDir dir_;
  FakeClock clock_;
  MemoryBlobStore blobs_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<Intake> intake_;
};

constexpr char kTwoCells[] = "matrix:\n  n: [1, 2]\nsteps:\n  - id: a\n    run: one\n  - id: b\n    needs: [a]\n    run: two\n";

TEST_F(IntakeTest, AcceptedRequestIsPlannedWithoutAnId) {
  auto request = Request(Tree({{"assay.yaml", kTwoCells}}));
  request.set_priority(7);
  (*request.mutable_labels())["branch"] = "main";
  auto accepted = intake_->Accept(request);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ(accepted->cells, 2u);
  EXPECT_EQ(accepted->steps, 2u);
  EXPECT_TRUE(accepted->job.id().empty());
  EXPECT_EQ(accepted->job.state(), assay::v1::JOB_QUEUED);
  EXPECT_EQ(accepted->job.priority(), 7);
  EXPECT_EQ(accepted->job.created_at_ms(), UnixMillis(clock_.Now()));
  ASSERT_EQ(accepted->job.tasks_size(), 4);
  for (const auto& task : accepted->job.tasks()) EXPECT_EQ(task.state(), assay::v1::TASK_PENDING);
}

TEST_F(IntakeTest, PipelinePathDefaultsToAssayYamlAndMayBeChosen) {
  const Digest root = Tree({{"ci.yaml", "steps:\n  - id: s\n    run: x\n"}});
  auto missing = intake_->Accept(Request(root));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "no pipeline file 'assay.yaml'")) << missing.status();
  auto request = Request(root);
  request.set_pipeline_path("ci.yaml");
  EXPECT_TRUE(intake_->Accept(request).ok());
  request.set_pipeline_path("../ci.yaml");
  EXPECT_EQ(intake_->Accept(request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(IntakeTest, TreeNotInTheCasIsRefusedBeforeAnythingIsRead) {
  auto accepted = intake_->Accept(Request(Digest::OfBytes("never uploaded")));
  EXPECT_EQ(accepted.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(accepted.status().message(), "upload it before submitting")) << accepted.status();
}

TEST_F(IntakeTest, TreeIsValidatedWhole) {
  // A file node whose digest is not in the CAS: the tree cannot be written by a worker.
  reapi::Directory root;
  auto* yaml = root.add_files();
  yaml->set_name("assay.yaml");
  *yaml->mutable_digest() = Put("steps:\n  - id: s\n    run: x\n").ToProto();
  auto* sub = root.add_directories();
  sub->set_name("src");
  *sub->mutable_digest() = Digest::OfBytes("a directory nobody uploaded").ToProto();
  auto accepted = intake_->Accept(Request(Put(root.SerializeAsString())));
  EXPECT_FALSE(accepted.ok());
}

TEST_F(IntakeTest, AFileTheCasNoLongerHasIsNamedAsMissingWithItsViolation) {
  // The pipeline and one source file uploaded; the other source file's blob gone (evicted since).
  reapi::Directory src;
  const Digest kept = Put("int kept;\n");
  const Digest gone = Digest::OfBytes("int gone;\n");
  for (const auto& [name, digest] : {std::pair<std::string, Digest>{"a.c", kept}, {"b.c", gone}}) {
    auto* f = src.add_files();
    f->set_name(name);
    *f->mutable_digest() = digest.ToProto();
  }
  reapi::Directory root;
  auto* yaml = root.add_files();
  yaml->set_name("assay.yaml");
  *yaml->mutable_digest() = Put("steps:\n  - id: s\n    run: x\n").ToProto();
  auto* sub = root.add_directories();
  sub->set_name("src");
  *sub->mutable_digest() = Put(src.SerializeAsString()).ToProto();
  const Digest tree = Put(root.SerializeAsString());
  auto accepted = intake_->Accept(Request(tree));
  ASSERT_EQ(accepted.status().code(), absl::StatusCode::kFailedPrecondition) << accepted.status();
  EXPECT_TRUE(absl::StrContains(accepted.status().message(), "1 blob(s) of the source tree's files missing from the CAS: " + gone.ToString()))
      << accepted.status();
  EXPECT_TRUE(absl::StrContains(accepted.status().message(), "upload them and submit again")) << accepted.status();
  auto payload = accepted.status().GetPayload("type.googleapis.com/google.rpc.PreconditionFailure");
  ASSERT_TRUE(payload.has_value());
  google::rpc::PreconditionFailure failure;
  ASSERT_TRUE(failure.ParseFromString(std::string(*payload)));
  ASSERT_EQ(failure.violations_size(), 1);
  EXPECT_EQ(failure.violations(0).type(), "MISSING");
  EXPECT_EQ(failure.violations(0).subject(), "blobs/" + gone.ToString());
  Put("int gone;\n");  // uploaded again: accepted
  EXPECT_TRUE(intake_->Accept(Request(tree)).ok());
}

TEST_F(IntakeTest, RequestChecks) {
  auto request = Request(Tree({{"assay.yaml", kTwoCells}}));
  request.set_request_id(std::string(129, 'r'));
  EXPECT_EQ(Intake::CheckRequestId(request).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(intake_->Accept(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.set_request_id(std::string(128, 'r'));
  EXPECT_TRUE(Intake::CheckRequestId(request).ok());
  request.set_priority(1001);
  auto accepted = intake_->Accept(request);
  EXPECT_EQ(accepted.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(accepted.status().message(), "outside -1000..1000")) << accepted.status();
}

TEST_F(IntakeTest, PipelineFileOverOneMebibyteIsRefused) {
  auto accepted = intake_->Accept(Request(Tree({{"assay.yaml", std::string((1 << 20) + 1, '#')}})));
  EXPECT_EQ(accepted.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(accepted.status().message(), "larger than 1 MiB")) << accepted.status();
}

TEST_F(IntakeTest, PipelineErrorsNameTheFile) {
  auto accepted = intake_->Accept(Request(Tree({{"assay.yaml", "steps: [\n"}})));
  EXPECT_FALSE(accepted.ok());
  EXPECT_TRUE(absl::StrContains(accepted.status().message(), "assay.yaml")) << accepted.status();
}

TEST_F(IntakeTest, SizeBaselineComesFromTheNamedFile) {
  const std::string yaml =
      "size_regression: {warn: 1%, baseline: sizes.json}\nsteps:\n  - id: s\n    run: x\n";
  const std::string sizes = R"({"sizes": {"s": {"out/fw.bin": {"file": 1000}}}})";
  auto accepted = intake_->Accept(Request(Tree({{"assay.yaml", yaml}, {"sizes.json", sizes}})));
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  ASSERT_EQ(accepted->job.tasks_size(), 1);
  const auto& baseline = accepted->job.tasks(0).spec().baseline();
  ASSERT_TRUE(baseline.contains("out/fw.bin"));
  EXPECT_EQ(baseline.at("out/fw.bin").file(), 1000);

  auto no_file = intake_->Accept(Request(Tree({{"assay.yaml", yaml}})));
  EXPECT_EQ(no_file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(no_file.status().message(), "'sizes.json' is not in the submitted tree"))
      << no_file.status();
}

TEST_F(IntakeTest, WithoutABaselineFileAndNoEarlierJobThereIsNoBaseline) {
  const std::string yaml = "size_regression: {warn: 1%}\nsteps:\n  - id: s\n    run: x\n";
  auto accepted = intake_->Accept(Request(Tree({{"assay.yaml", yaml}})));
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_TRUE(accepted->job.tasks(0).spec().baseline().empty());
}

}  // namespace
}  // namespace assay

namespace assay {
namespace {

constexpr char kCached[] =
    "name: fw\nsteps:\n  - id: build\n    run: cargo build\n    caches:\n"
    "      - key: \"cargo-${{ hashFiles('Cargo.lock') }}\"\n        paths: [target/]\n";

TEST_F(IntakeTest, HashFilesInACacheKeyIsComputedFromTheSubmittedFilesItSelects) {
  auto key = [this](const std::string& lock, const std::string& source) {
    auto accepted = intake_->Accept(Request(Tree({{"assay.yaml", kCached}, {"Cargo.lock", lock}, {"main.rs", source}})));
    EXPECT_TRUE(accepted.ok()) << accepted.status();
    return accepted.ok() ? accepted->job.tasks(0).spec().caches(0).key() : "";
  };
  const std::string first = key("lock v1", "fn main() {}");
  EXPECT_EQ(first.size(), std::string("cargo-").size() + 64) << first;
  EXPECT_EQ(key("lock v1", "fn main() { edited }"), first) << "a file hashFiles does not select leaves the key";
  EXPECT_NE(key("lock v2", "fn main() {}"), first);
  // No file selected: the expression is empty.
  auto none = intake_->Accept(Request(Tree({{"assay.yaml", kCached}})));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->job.tasks(0).spec().caches(0).key(), "cargo-");
}

TEST_F(IntakeTest, ACachePathThroughASymlinkOfTheTreeIsRefusedWithTheLine) {
  reapi::Directory root;
  auto* yaml = root.add_files();
  yaml->set_name("assay.yaml");
  *yaml->mutable_digest() = Put(kCached).ToProto();
  auto* link = root.add_symlinks();
  link->set_name("target");
  link->set_target("elsewhere");
  auto accepted = intake_->Accept(Request(Put(root.SerializeAsString())));
  ASSERT_FALSE(accepted.ok());
  EXPECT_EQ(accepted.status().message(),
            "assay.yaml:6: step 'build' caches[0].paths: 'target/' goes through 'target', a symlink in the submitted "
            "tree; a cache path must be a folder or file inside the work directory");
}

// `notify:` may only name targets the coordinator's admin configured, and a commit-status target
// needs the job's commit and repo labels: refused at submit with the pipeline's file and line.
TEST_F(IntakeTest, NotifyNamesOnlyConfiguredTargetsAndStatusTargetsNeedTheirLabels) {
  Intake::Options options;
  options.notify_targets = {{"team-hook", NotifyTarget::Kind::kWebhook}, {"gh", NotifyTarget::Kind::kGitHub}};
  Intake intake(&blobs_, store_.get(), &clock_, options);
  const std::string steps = "steps:\n  - id: a\n    run: one\n";
  auto unknown = intake.Accept(Request(Tree({{"assay.yaml", "notify:\n  - {to: team-hok}\n" + steps}})));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(unknown.status().message(), "assay.yaml:2: notify[0]: no notification target 'team-hok'"))
      << unknown.status();
  EXPECT_TRUE(absl::StrContains(unknown.status().message(), "configured: gh, team-hook")) << unknown.status();

  auto hook = intake.Accept(Request(Tree({{"assay.yaml", "notify: [{to: team-hook, on: [failure, recovered]}]\n" + steps}})));
  ASSERT_TRUE(hook.ok()) << hook.status();
  ASSERT_EQ(hook->job.notify_size(), 1);
  EXPECT_EQ(hook->job.notify(0).to(), "team-hook");
  EXPECT_EQ(std::vector<std::string>(hook->job.notify(0).on().begin(), hook->job.notify(0).on().end()),
            (std::vector<std::string>{"failure", "recovered"}));

  auto request = Request(Tree({{"assay.yaml", "name: fw\n\nnotify:\n  - to: gh\n" + steps}}));
  auto no_labels = intake.Accept(request);
  ASSERT_FALSE(no_labels.ok());
  EXPECT_TRUE(absl::StrContains(no_labels.status().message(), "assay.yaml:4: notify[0]: target 'gh' (github)"))
      << no_labels.status();
  EXPECT_TRUE(absl::StrContains(no_labels.status().message(), "'commit' and 'repo'")) << no_labels.status();
  (*request.mutable_labels())["commit"] = "0123456789abcdef0123456789abcdef01234567";
  (*request.mutable_labels())["repo"] = "../../admin";
  auto bad_repo = intake.Accept(request);
  ASSERT_FALSE(bad_repo.ok());
  EXPECT_TRUE(absl::StrContains(bad_repo.status().message(), "label repo '../../admin' is not OWNER/REPO")) << bad_repo.status();
  (*request.mutable_labels())["repo"] = "acme/firmware";
  auto ok = intake.Accept(request);
  EXPECT_TRUE(ok.ok()) << ok.status();

  // Without --notify-config there is nothing to name.
  auto none = intake_->Accept(Request(Tree({{"assay.yaml", "notify: [{to: team-hook}]\n" + steps}})));
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(absl::StrContains(none.status().message(), "it has none: see --notify-config")) << none.status();
}

}  // namespace
}  // namespace assay

namespace assay {
namespace {

constexpr char kTimed[] =
    "name: fw\nmatrix:\n  t: [cortex]\ntime_regression: {warn: 10%, fail: 50%, steps: [test], runs: 3}\n"
    "steps:\n  - id: build\n    run: make\n  - id: test\n    needs: [build]\n    run: ./t\n";

// Writes an earlier, finished job of pipeline `name` on `branch` ("" for none) to the store; its task
// "cortex/test" ended in `state` after running `run_ms` (a cached one did not run).
void StoreEarlierJob(JobStore* store, const std::string& name, const std::string& branch, int64_t run_ms,
                     assay::v1::TaskState state = assay::v1::TASK_SUCCEEDED, bool cached = false) {
  const uint64_t number = store->NextJobNumber().value();
  assay::v1::Job job;
  job.set_id(std::to_string(number));
  job.set_name(name);
  job.set_state(state == assay::v1::TASK_SUCCEEDED ? assay::v1::JOB_SUCCEEDED : assay::v1::JOB_FAILED);
  if (!branch.empty()) (*job.mutable_labels())["branch"] = branch;
  assay::v1::Task task;
  task.set_id("cortex/test");
  task.set_state(state);
  task.set_cached(cached);
  task.set_run_ms(cached ? 0 : run_ms);
  ASSERT_TRUE(store->CreateJob(number, job, {task}).ok());
}

TEST_F(IntakeTest, ATimedStepsBaselineIsTheMedianOfItsLastRunsOfThePipelineAndBranchFixedAtSubmit) {
  StoreEarlierJob(store_.get(), "fw", "main", 1000);                                    // 1
  StoreEarlierJob(store_.get(), "fw", "main", 1600);                                    // 2
  StoreEarlierJob(store_.get(), "fw", "dev", 9000);                                     // 3: another branch
  StoreEarlierJob(store_.get(), "other", "main", 9000);                                 // 4: another pipeline
  StoreEarlierJob(store_.get(), "fw", "main", 0, assay::v1::TASK_SUCCEEDED, true);      // 5: cached, not a run
  StoreEarlierJob(store_.get(), "fw", "main", 9000, assay::v1::TASK_FAILED);            // 6: failed
  StoreEarlierJob(store_.get(), "fw", "main", 1400);                                    // 7
  StoreEarlierJob(store_.get(), "fw", "main", 1200);                                    // 8
  auto request = Request(Tree({{"assay.yaml", kTimed}}));
  (*request.mutable_labels())["branch"] = "main";
  auto accepted = intake_->Accept(request);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  ASSERT_EQ(accepted->job.tasks_size(), 2);
  const auto& build = accepted->job.tasks(0).spec();
  EXPECT_FALSE(build.has_time_regression()) << "not among time_regression.steps";
  EXPECT_FALSE(build.has_time_baseline());
  const auto& test = accepted->job.tasks(1).spec();
  ASSERT_TRUE(test.has_time_regression());
  EXPECT_DOUBLE_EQ(test.time_regression().warn_percent(), 10);
  EXPECT_DOUBLE_EQ(test.time_regression().fail_percent(), 50);
  EXPECT_EQ(test.time_regression().runs(), 3);
  ASSERT_TRUE(test.has_time_baseline());
  EXPECT_EQ(test.time_baseline().runs(), 3);
  EXPECT_EQ(test.time_baseline().median_ms(), 1400) << "the median of 1200, 1400 and 1600";
  EXPECT_EQ(std::vector<std::string>(test.time_baseline().job_ids().begin(), test.time_baseline().job_ids().end()),
            (std::vector<std::string>{"8", "7", "2"}));
}

TEST_F(IntakeTest, AFirstRunHasNoTimeBaselineAndJobsWithoutABranchCompareOnlyWithEachOther) {
  auto first = intake_->Accept(Request(Tree({{"assay.yaml", kTimed}})));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->job.tasks(1).spec().has_time_regression());
  EXPECT_FALSE(first->job.tasks(1).spec().has_time_baseline()) << "nothing to compare with: it passes";

  StoreEarlierJob(store_.get(), "fw", "main", 5000);
  StoreEarlierJob(store_.get(), "fw", "", 700);
  auto unlabelled = intake_->Accept(Request(Tree({{"assay.yaml", kTimed}})));
  ASSERT_TRUE(unlabelled.ok()) << unlabelled.status();
  const auto& baseline = unlabelled->job.tasks(1).spec().time_baseline();
  EXPECT_EQ(baseline.runs(), 1);
  EXPECT_EQ(baseline.median_ms(), 700);
}

TEST_F(IntakeTest, TheTimeBaselineIsSoughtAmongTheNewestTwoHundredJobsOnly) {
  StoreEarlierJob(store_.get(), "fw", "main", 1000);  // job 1: the 201st newest, beyond the search
  for (int i = 0; i < Intake::kTimeBaselineSearchJobs; ++i) StoreEarlierJob(store_.get(), "other", "main", 5);
  auto request = Request(Tree({{"assay.yaml", kTimed}}));
  (*request.mutable_labels())["branch"] = "main";
  auto accepted = intake_->Accept(request);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_FALSE(accepted->job.tasks(1).spec().has_time_baseline());
  StoreEarlierJob(store_.get(), "fw", "main", 1300);
  auto next = intake_->Accept(request);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->job.tasks(1).spec().time_baseline().runs(), 1) << "job 1 is still beyond the newest 200";
  EXPECT_EQ(next->job.tasks(1).spec().time_baseline().median_ms(), 1300);
}

}  // namespace
}  // namespace assay
