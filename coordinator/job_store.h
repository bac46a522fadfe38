// Jobs, tasks and logs in RocksDB. Everything the coordinator acknowledges goes through a synced write.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "assay/v1/job.pb.h"
#include "common/rocksdb/database.h"

namespace assay {

class JobStore {
 public:
  explicit JobStore(Database* db) : db_(db) {}

  // Reserves the next job number (persisted, so numbers never repeat across restarts).
  absl::StatusOr<uint64_t> NextJobNumber();
  // A job and all its tasks, atomically and durably.
  absl::Status CreateJob(uint64_t number, const assay::v1::Job& job, const std::vector<assay::v1::Task>& tasks);
  // Changes gathered into a batch (see GroupCommit), then written with Write.
  void PutTask(rocksdb::WriteBatch* batch, uint64_t number, const assay::v1::Task& task) const;
  // The job without its tasks (moved out while it is serialized, and back: never copied).
  void PutJobSummary(rocksdb::WriteBatch* batch, uint64_t number, assay::v1::Job* job) const;
  void PutLog(rocksdb::WriteBatch* batch, uint64_t number, int32_t task_index, const assay::v1::LogChunk& chunk) const;
  absl::Status Write(rocksdb::WriteBatch* batch, bool sync) { return db_->Write(batch, sync); }

  // The job's summary, and with `with_tasks` its tasks in order. NotFound naming the job if absent.
  absl::StatusOr<assay::v1::Job> LoadJob(uint64_t number, bool with_tasks) const;
  // Newest first.
  absl::StatusOr<std::vector<assay::v1::Job>> ListJobs(int limit) const;
  // Admin states of workers (cordoned, draining), written with fsync; ACTIVE ones are not listed.
  absl::Status PutWorkerState(const std::string& worker, int state);
  absl::StatusOr<std::map<std::string, int>> LoadWorkerStates() const;
  // Every job not in a final state, with tasks (for recovery after a restart).
  absl::StatusOr<std::vector<std::pair<uint64_t, assay::v1::Job>>> LoadUnfinished() const;

  // Log chunks (PutLog) need no sync of their own: they survive a process crash (the WAL is in the
  // page cache), and only a machine crash could drop the newest lines.
  // One past the last stored chunk's sequence number of a task (0 when it has none).
  absl::StatusOr<uint32_t> NextLogSeq(uint64_t number, int32_t task_index) const;
  // Chunks of one task from `from_seq` on, in order; visit returns false to stop.
  absl::Status ReadLogs(uint64_t number, int32_t task_index, uint32_t from_seq,
                        const std::function<bool(const assay::v1::LogChunk&)>& visit) const;

  // Log retention (log_retention.h). The first job numbered `from` or more that has log chunks
  // stored (nullopt: none).
  absl::StatusOr<std::optional<uint64_t>> NextJobWithLogs(uint64_t from) const;
  // Removes every log chunk of job `number` and records why (LogsRemoved) in one synced write.
  absl::Status RemoveLogs(uint64_t number, const std::string& why);
  // Compacts the logs of jobs [first, last] so the disk space of removed ones comes back.
  absl::Status ReclaimLogs(uint64_t first, uint64_t last);
  // Why job `number`'s logs were removed; NotFound when they were not.
  absl::StatusOr<std::string> LogsRemoved(uint64_t number) const;

 private:
  Database* db_;
  absl::Mutex counter_mu_;  // job numbers are read, incremented and written as one step
};

// A job id ("42") as its number; InvalidArgument for anything else.
absl::StatusOr<uint64_t> ParseJobId(const std::string& id);

}  // namespace assay
