// The coordinator's column families: after the CAS's (common/rocksdb/database.h) in its database.
#pragma once

#include <string>
#include <vector>

#include "common/rocksdb/database.h"

namespace assay {

struct CoordinatorFamily {
  static constexpr Family kActionCache = static_cast<Family>(3);  // instance + '\0' + digest key -> ActionResult
  static constexpr Family kJobs = static_cast<Family>(4);   // job number (8 bytes BE) -> assay.v1.Job (without tasks)
  static constexpr Family kTasks = static_cast<Family>(5);  // job number + task index (4 bytes BE) -> assay.v1.Task
  static constexpr Family kLogs = static_cast<Family>(6);   // job number + task index + seq (4 bytes BE) -> LogChunk
  static constexpr Family kMeta = static_cast<Family>(7);   // counters and settings
  // pipeline + '\0' + branch + '\0' + key -> assay.v1.StepCache (coordinator/step_cache_store.h)
  static constexpr Family kStepCaches = static_cast<Family>(8);
  // job number (8 bytes BE) + sequence (8 bytes BE) -> assay.v1.Notification (coordinator/notifier.h)
  static constexpr Family kNotifications = static_cast<Family>(9);
  // digest key -> size and last use of a blob in the --cas-store bucket (common/bucket/bucket_blob_store.h)
  static constexpr Family kBucketIndex = static_cast<Family>(10);
};

// The options the coordinator opens its database with: the CAS's families and its own.
inline Database::Options CoordinatorDatabaseOptions() {
  Database::Options options;
  for (const char* name :
       {"action_cache", "jobs", "tasks", "logs", "meta", "step_caches", "notifications", "bucket_index"}) {
    options.family_names.push_back(name);
  }
  return options;
}

}  // namespace assay
