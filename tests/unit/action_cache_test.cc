#include "coordinator/action_cache.h"

#include <gtest/gtest.h>

#include <map>

#include "common/base/file_util.h"
#include "common/cas/memory_blob_store.h"
#include "coordinator/completeness_checking_action_result_store.h"
#include "coordinator/families.h"

namespace assay {
namespace {

// Results in a map: what the completeness layer wraps, without a database.
class MapResultStore final : public ActionResultStore {
 public:
  absl::StatusOr<reapi::ActionResult> Get(absl::string_view instance, const Digest& action) override {
    auto it = results_.find({std::string(instance), action});
    if (it == results_.end()) return absl::NotFoundError("no result");
    return it->second;
  }
  absl::Status Put(absl::string_view instance, const Digest& action, const reapi::ActionResult& result) override {
    results_[{std::string(instance), action}] = result;
    return absl::OkStatus();
  }
  std::map<std::pair<std::string, Digest>, reapi::ActionResult> results_;
};

reapi::ActionResult ResultWithOutput(const Digest& output, const Digest& out_log) {
  reapi::ActionResult result;
  auto* file = result.add_output_files();
  file->set_path("out/a.bin");
  *file->mutable_digest() = output.ToProto();
  *result.mutable_stdout_digest() = out_log.ToProto();
  return result;
}

// The completeness layer over any result store and any blob store: results whose blobs are all in
// the CAS are served; one whose blob was evicted is a miss; one referencing an absent blob is refused.
TEST(CompletenessCheckingActionResultStoreTest, ServesOnlyResultsWhoseBlobsAreAllInTheCas) {
  MemoryBlobStore cas;
  MapResultStore results;
  CompletenessCheckingActionResultStore checked(&results, &cas);
  const Digest output = Digest::OfBytes("binary"), log = Digest::OfBytes("log"), action = Digest::OfBytes("action");
  ASSERT_TRUE(cas.Put(output, "binary").ok());

  absl::Status refused = checked.Put("", action, ResultWithOutput(output, log));
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_NE(refused.message().find(log.ToString()), std::string::npos) << refused;
  EXPECT_TRUE(results.results_.empty()) << "a refused result is not stored";

  ASSERT_TRUE(cas.Put(log, "log").ok());
  ASSERT_TRUE(checked.Put("", action, ResultWithOutput(output, log)).ok());
  auto got = checked.Get("", action);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->output_files(0).path(), "out/a.bin");
  EXPECT_EQ(checked.Get("other-instance", action).status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(cas.Delete(output).ok());  // evicted from the CAS, not from the action cache
  EXPECT_EQ(checked.Get("", action).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(results.results_.size(), 1u);
}

// The composed cache counts a served result as a hit, and an absent or incomplete one as a miss.
TEST(ActionCacheTest, CountsHitsAndMissesOverTheStoredResults) {
  ScopedTempDir dir;
  auto db = Database::Open(dir.path() / "db", CoordinatorDatabaseOptions()).value();
  MemoryBlobStore cas;
  ActionCache cache(db.get(), &cas);
  const Digest output = Digest::OfBytes("binary"), log = Digest::OfBytes("log"), action = Digest::OfBytes("action");
  EXPECT_EQ(cache.Get("", action).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(cas.Put(output, "binary").ok());
  ASSERT_TRUE(cas.Put(log, "log").ok());
  ASSERT_TRUE(cache.Put("", action, ResultWithOutput(output, log)).ok());
  ASSERT_TRUE(cache.Get("", action).ok());
  ASSERT_TRUE(cas.Delete(log).ok());
  EXPECT_EQ(cache.Get("", action).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cache.hits(), 1);
  EXPECT_EQ(cache.misses(), 2);
  EXPECT_EQ(cache.CountEntries().value(), 1);
}

}  // namespace
}  // namespace assay
