// ActionBuilder alone (real RocksDB through the blob-store factory): the Command and input tree of
// a step, determinism of the cache key, a cache hit with its logs, and a missing source.
#include "coordinator/action_builder.h"

#include <gtest/gtest.h>

#include <map>

#include "common/base/file_util.h"
#include "common/rocksdb/blob_store_stack.h"
#include "common/tree/merkle.h"
#include "coordinator/families.h"
#include "tests/common/hostile_trees.h"

namespace assay::testing {
namespace {

class ActionBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = Database::Open(dir_.path() / "db", CoordinatorDatabaseOptions()).value();
    stack_ = MakeBlobStoreStack(db_.get(), &clock_, EvictingBlobStore::Options{1 << 30, 0.95, 0.8}).value();
    cache_ = std::make_unique<ActionCache>(db_.get(), stack_.store());
    builder_ = std::make_unique<ActionBuilder>(stack_.store(), cache_.get(), stack_.pinner());
  }

  // assay.yaml, src/main.c, docs/readme (with `readme` as given).
  Digest Source(const std::string& main_c, const std::string& readme) {
    TreeBuilder b;
    reapi::Directory src, docs, root;
    AddFile(&src, "main.c", b.File(main_c));
    AddFile(&docs, "readme", b.File(readme));
    AddFile(&root, "assay.yaml", b.File("steps: []\n"));
    AddDir(&root, "docs", b.Dir(docs));
    AddDir(&root, "src", b.Dir(src));
    Digest top = b.Dir(root);
    for (const auto& [digest, bytes] : b.blobs()) EXPECT_TRUE(stack_.store()->Put(digest, bytes).ok());
    return top;
  }

  ActionBuilder::Work Work(const Digest& source) {
    ActionBuilder::Work w;
    w.source_root_hash = source.hash();
    w.source_root_size = source.size();
    w.task.set_cell("arm");
    w.task.set_step("build");
    (*w.task.mutable_matrix())["target"] = "arm";
    auto* spec = w.task.mutable_spec();
    spec->set_run("make X");
    (*spec->mutable_env())["B"] = "2";
    (*spec->mutable_env())["A"] = "1";
    spec->add_outputs("z/");
    spec->add_outputs("a.bin");
    spec->add_inputs("src/");
    spec->add_required_labels("qemu");
    spec->add_required_labels("arch=x86_64");
    spec->set_cache(true);
    const std::string lib = "library bytes";
    EXPECT_TRUE(stack_.store()->Put(Digest::OfBytes(lib), lib).ok());
    reapi::OutputFile out;
    out.set_path("out/lib.a");
    *out.mutable_digest() = Digest::OfBytes(lib).ToProto();
    w.need_files.push_back(out);
    return w;
  }

  // Paths of every file in the tree at `root`.
  std::vector<std::string> Files(const Digest& root, const std::string& prefix = "") {
    std::vector<std::string> out;
    reapi::Directory d;
    EXPECT_TRUE(d.ParseFromString(stack_.store()->Get(root).value()));
    for (const auto& f : d.files()) out.push_back(prefix + f.name());
    for (const auto& sub : d.directories()) {
      for (auto& p : Files(Digest::FromProto(sub.digest()).value(), prefix + sub.name() + "/")) out.push_back(p);
    }
    return out;
  }

  ScopedTempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Database> db_;
  BlobStoreStack stack_;
  std::unique_ptr<ActionCache> cache_;
  std::unique_ptr<ActionBuilder> builder_;
};

TEST_F(ActionBuilderTest, BuildsTheCommandAndInputTreeOfAStep) {
  reapi::Action action;
  reapi::Command command;
  auto digest = builder_->Build(Work(Source("int main;", "v1")), &action, &command);
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(std::vector<std::string>(command.arguments().begin(), command.arguments().end()),
            (std::vector<std::string>{"/bin/sh", "-ec", "make X"}));
  std::vector<std::string> env;
  for (const auto& v : command.environment_variables()) env.push_back(v.name() + "=" + v.value());
  EXPECT_EQ(env, (std::vector<std::string>{"A=1", "ASSAY_CELL=arm", "ASSAY_MATRIX_TARGET=arm", "ASSAY_STEP=build",
                                           "B=2"}));
  EXPECT_EQ(std::vector<std::string>(command.output_paths().begin(), command.output_paths().end()),
            (std::vector<std::string>{"a.bin", "z/"}));
  ASSERT_EQ(command.platform().properties_size(), 2);
  EXPECT_EQ(command.platform().properties(0).name(), "arch");
  EXPECT_EQ(command.platform().properties(1).name(), "qemu");
  // Only the declared inputs and the needed outputs.
  EXPECT_EQ(Files(Digest::FromProto(action.input_root_digest()).value()),
            (std::vector<std::string>{"out/lib.a", "src/main.c"}));
  // Both messages are in the CAS under the digests the action names.
  EXPECT_EQ(stack_.store()->Get(*digest).value(), action.SerializeAsString());
  EXPECT_EQ(stack_.store()->Get(Digest::FromProto(action.command_digest()).value()).value(), command.SerializeAsString());
}

TEST_F(ActionBuilderTest, TheCacheKeyChangesWithInputsOnly) {
  reapi::Action a1, a2, a3;
  reapi::Command c;
  Digest first = builder_->Build(Work(Source("int main;", "v1")), &a1, &c).value();
  EXPECT_EQ(builder_->Build(Work(Source("int main;", "v2")), &a2, &c).value(), first) << "docs/ is not an input";
  EXPECT_NE(builder_->Build(Work(Source("int main(void);", "v1")), &a3, &c).value(), first);
}

TEST_F(ActionBuilderTest, LimitsArePlatformPropertiesSoAChangedLimitIsAnotherAction) {
  reapi::Action a1, a2, a3;
  reapi::Command c;
  const Digest source = Source("int main;", "v1");
  Digest plain = builder_->Build(Work(source), &a1, &c).value();
  ActionBuilder::Work limited = Work(source);
  limited.task.mutable_spec()->mutable_limits()->set_memory_bytes(64 << 20);
  limited.task.mutable_spec()->mutable_limits()->set_pids(32);
  Digest with_limits = builder_->Build(limited, &a2, &c).value();
  EXPECT_NE(with_limits, plain);
  std::map<std::string, std::string> props;
  for (const auto& p : c.platform().properties()) props[p.name()] = p.value();
  EXPECT_EQ(props["assay-limit-memory"], "67108864");
  EXPECT_EQ(props["assay-limit-pids"], "32");
  EXPECT_FALSE(props.contains("assay-limit-cpus"));
  limited.task.mutable_spec()->mutable_limits()->set_memory_bytes(128 << 20);
  EXPECT_NE(builder_->Build(limited, &a3, &c).value(), with_limits);
}

TEST_F(ActionBuilderTest, TheOutputLimitIsAPlatformPropertySoAnotherLimitIsAnotherAction) {
  reapi::Action a1, a2, a3;
  reapi::Command c;
  const Digest source = Source("int main;", "v1");
  ActionBuilder::Work work = Work(source);
  work.task.mutable_spec()->set_output_limit(16 << 20);
  Digest sixteen = builder_->Build(work, &a1, &c).value();
  std::map<std::string, std::string> props;
  for (const auto& p : c.platform().properties()) props[p.name()] = p.value();
  EXPECT_EQ(props["assay-output-limit"], "16777216");
  EXPECT_FALSE(props.contains("assay-output-limit-fails"));
  work.task.mutable_spec()->set_output_limit_fails(true);
  Digest failing = builder_->Build(work, &a2, &c).value();
  EXPECT_NE(failing, sixteen);
  work.task.mutable_spec()->set_output_limit(32 << 20);
  EXPECT_NE(builder_->Build(work, &a3, &c).value(), failing);
}

TEST_F(ActionBuilderTest, ACacheHitComesBackWithItsLogsAndPinsNothing) {
  ActionBuilder::Work work = Work(Source("int main;", "v1"));
  ActionBuilder::Prepared miss = builder_->Prepare(work);
  ASSERT_TRUE(miss.status.ok()) << miss.status;
  EXPECT_FALSE(miss.cached.has_value());
  EXPECT_GT(miss.pins.size(), 4u) << "a task that will run has its action, command and inputs pinned";
  stack_.pinner()->Unpin(miss.pins);

  const std::string out = "built ok\n";
  ASSERT_TRUE(stack_.store()->Put(Digest::OfBytes(out), out).ok());
  reapi::ActionResult result;
  result.set_exit_code(0);
  *result.mutable_stdout_digest() = Digest::OfBytes(out).ToProto();
  ASSERT_TRUE(cache_->Put("", miss.action_digest, result).ok());
  ActionBuilder::Prepared hit = builder_->Prepare(work);
  ASSERT_TRUE(hit.cached.has_value());
  EXPECT_EQ(hit.action_digest, miss.action_digest);
  // One note standing for the run's whole stdout and stderr: the log is served from the blobs.
  ASSERT_EQ(hit.cached_logs.size(), 1u);
  EXPECT_EQ(hit.cached_logs[0].stream(), assay::v1::LogChunk::SYSTEM);
  EXPECT_EQ(hit.cached_logs[0].gap().stdout_offset(), 0);
  EXPECT_EQ(hit.cached_logs[0].gap().stdout_bytes(), static_cast<int64_t>(out.size()));
  EXPECT_EQ(hit.cached_logs[0].gap().stderr_bytes(), 0);
  EXPECT_TRUE(hit.pins.empty());
}

TEST_F(ActionBuilderTest, AMissingSourceIsAnError) {
  ActionBuilder::Work work = Work(Source("int main;", "v1"));
  work.source_root_hash = Digest::OfBytes("not stored").hash();
  ActionBuilder::Prepared prepared = builder_->Prepare(work);
  EXPECT_FALSE(prepared.status.ok());
}

}  // namespace
}  // namespace assay::testing
