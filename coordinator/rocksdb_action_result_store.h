// Action results in the database's action_cache family (key: instance + '\0' + action digest key),
// written synced. Stores and returns what it is given: completeness is the layer above's.
#pragma once

#include <rocksdb/write_batch.h>

#include "common/rocksdb/database.h"
#include "coordinator/action_result_store.h"

namespace assay {

class RocksDbActionResultStore final : public ActionResultStore {
 public:
  explicit RocksDbActionResultStore(Database* db) : db_(db) {}

  absl::StatusOr<reapi::ActionResult> Get(absl::string_view instance, const Digest& action) override;
  absl::Status Put(absl::string_view instance, const Digest& action, const reapi::ActionResult& result) override;
  // The same record as Put, added to `batch` (written with whatever else the batch holds).
  void AddToBatch(rocksdb::WriteBatch* batch, absl::string_view instance, const Digest& action,
                  const reapi::ActionResult& result) const;
  absl::StatusOr<int64_t> CountEntries() const;

 private:
  Database* db_;
};

}  // namespace assay
