#include "coordinator/job_store.h"

#include "coordinator/task_rules.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "coordinator/families.h"

namespace assay {

using assay::v1::Job;
using assay::v1::LogChunk;
using assay::v1::Task;

namespace {
constexpr char kNextJobKey[] = "next_job";
constexpr absl::string_view kLogsRemovedPrefix = "logs_removed/";  // + job number (8 bytes BE) -> why
std::string TaskKeyBytes(uint64_t job, int32_t index) { return EncodeU64(job) + EncodeU32(static_cast<uint32_t>(index)); }
}  // namespace

absl::StatusOr<uint64_t> ParseJobId(const std::string& id) {
  uint64_t number = 0;
  if (!absl::SimpleAtoi(id, &number) || number == 0) {
    return absl::InvalidArgumentError(absl::StrCat("'", id, "' is not a job id (job ids are numbers)"));
  }
  return number;
}

absl::StatusOr<uint64_t> JobStore::NextJobNumber() {
  absl::MutexLock lock(&counter_mu_);
  uint64_t next = 1;
  auto value = db_->Get(CoordinatorFamily::kMeta, kNextJobKey);
  if (value.ok()) {
    next = DecodeU64(*value);
  } else if (!absl::IsNotFound(value.status())) {
    return value.status();
  }
  if (absl::Status s = db_->Put(CoordinatorFamily::kMeta, kNextJobKey, EncodeU64(next + 1), /*sync=*/true); !s.ok()) return s;
  return next;
}

absl::Status JobStore::CreateJob(uint64_t number, const Job& job, const std::vector<Task>& tasks) {
  rocksdb::WriteBatch batch;
  Job summary = job;
  summary.clear_tasks();
  batch.Put(db_->cf(CoordinatorFamily::kJobs), EncodeU64(number), summary.SerializeAsString());
  for (const Task& task : tasks) {
    batch.Put(db_->cf(CoordinatorFamily::kTasks), TaskKeyBytes(number, task.index()), task.SerializeAsString());
  }
  return db_->Write(&batch, /*sync=*/true);
}

void JobStore::PutTask(rocksdb::WriteBatch* batch, uint64_t number, const Task& task) const {
  batch->Put(db_->cf(CoordinatorFamily::kTasks), TaskKeyBytes(number, task.index()), task.SerializeAsString());
}

void JobStore::PutJobSummary(rocksdb::WriteBatch* batch, uint64_t number, Job* job) const {
  google::protobuf::RepeatedPtrField<Task> tasks;
  tasks.Swap(job->mutable_tasks());
  batch->Put(db_->cf(CoordinatorFamily::kJobs), EncodeU64(number), job->SerializeAsString());
  tasks.Swap(job->mutable_tasks());
}

void JobStore::PutLog(rocksdb::WriteBatch* batch, uint64_t number, int32_t task_index, const LogChunk& chunk) const {
  batch->Put(db_->cf(CoordinatorFamily::kLogs), TaskKeyBytes(number, task_index) + EncodeU32(chunk.seq()), chunk.SerializeAsString());
}

absl::StatusOr<Job> JobStore::LoadJob(uint64_t number, bool with_tasks) const {
  auto value = db_->Get(CoordinatorFamily::kJobs, EncodeU64(number));
  if (!value.ok()) {
    if (absl::IsNotFound(value.status())) return absl::NotFoundError(absl::StrCat("no job ", number));
    return value.status();
  }
  Job job;
  if (!job.ParseFromString(*value)) return absl::DataLossError(absl::StrCat("job ", number, " record is corrupt"));
  if (!with_tasks) return job;
  std::string prefix = EncodeU64(number);
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(CoordinatorFamily::kTasks)));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (!job.add_tasks()->ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("a task record of job ", number, " is corrupt"));
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading tasks");
  return job;
}

absl::StatusOr<std::vector<Job>> JobStore::ListJobs(int limit) const {
  std::vector<Job> jobs;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(CoordinatorFamily::kJobs)));
  for (it->SeekToLast(); it->Valid() && (limit <= 0 || static_cast<int>(jobs.size()) < limit); it->Prev()) {
    Job job;
    if (job.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) jobs.push_back(std::move(job));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "listing jobs");
  return jobs;
}

namespace {
constexpr absl::string_view kWorkerStatePrefix = "worker-state/";
}  // namespace

absl::Status JobStore::PutWorkerState(const std::string& worker, int state) {
  return db_->Put(CoordinatorFamily::kMeta, absl::StrCat(kWorkerStatePrefix, worker), absl::StrCat(state), /*sync=*/true);
}

absl::StatusOr<std::map<std::string, int>> JobStore::LoadWorkerStates() const {
  std::map<std::string, int> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(CoordinatorFamily::kMeta)));
  for (it->Seek(rocksdb::Slice(kWorkerStatePrefix.data(), kWorkerStatePrefix.size())); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (!absl::ConsumePrefix(&key, kWorkerStatePrefix)) break;
    int state = 0;
    if (absl::SimpleAtoi(absl::string_view(it->value().data(), it->value().size()), &state) && state != 0) {
      out[std::string(key)] = state;
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading worker states");
  return out;
}

absl::StatusOr<std::vector<std::pair<uint64_t, Job>>> JobStore::LoadUnfinished() const {
  std::vector<std::pair<uint64_t, Job>> out;
  std::vector<uint64_t> numbers;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(CoordinatorFamily::kJobs)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      Job job;
      if (job.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) && !IsFinal(job.state())) {
        numbers.push_back(DecodeU64(absl::string_view(it->key().data(), it->key().size())));
      }
    }
    if (!it->status().ok()) return FromRocks(it->status(), "scanning jobs");
  }
  for (uint64_t n : numbers) {
    auto job = LoadJob(n, /*with_tasks=*/true);
    if (!job.ok()) return job.status();
    out.emplace_back(n, std::move(*job));
  }
  return out;
}

absl::StatusOr<uint32_t> JobStore::NextLogSeq(uint64_t number, int32_t task_index) const {
  std::string prefix = TaskKeyBytes(number, task_index);
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(CoordinatorFamily::kLogs)));
  it->SeekForPrev(prefix + EncodeU32(UINT32_MAX));
  if (!it->status().ok()) return FromRocks(it->status(), "reading logs");
  if (!it->Valid() || !it->key().starts_with(prefix)) return 0u;
  return DecodeU32(absl::string_view(it->key().data() + prefix.size(), 4)) + 1;
}

absl::Status JobStore::ReadLogs(uint64_t number, int32_t task_index, uint32_t from_seq,
                                const std::function<bool(const LogChunk&)>& visit) const {
  std::string prefix = TaskKeyBytes(number, task_index);
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(CoordinatorFamily::kLogs)));
  for (it->Seek(prefix + EncodeU32(from_seq)); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    LogChunk chunk;
    if (!chunk.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("a log record is corrupt");
    }
    if (!visit(chunk)) break;
  }
  return FromRocks(it->status(), "reading logs");
}

absl::StatusOr<std::optional<uint64_t>> JobStore::NextJobWithLogs(uint64_t from) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(CoordinatorFamily::kLogs)));
  it->Seek(EncodeU64(from));
  if (!it->status().ok()) return FromRocks(it->status(), "reading logs");
  if (!it->Valid() || it->key().size() < 8) return std::optional<uint64_t>();
  return std::optional<uint64_t>(DecodeU64(absl::string_view(it->key().data(), 8)));
}

absl::Status JobStore::RemoveLogs(uint64_t number, const std::string& why) {
  const std::string begin = EncodeU64(number), end = EncodeU64(number + 1);
  rocksdb::WriteBatch batch;
  batch.DeleteRange(db_->cf(CoordinatorFamily::kLogs), begin, end);
  batch.Put(db_->cf(CoordinatorFamily::kMeta), absl::StrCat(kLogsRemovedPrefix, begin), why);
  return db_->Write(&batch, /*sync=*/true);
}

absl::Status JobStore::ReclaimLogs(uint64_t first, uint64_t last) {
  const std::string begin = EncodeU64(first), end = EncodeU64(last + 1);
  return db_->Reclaim(CoordinatorFamily::kLogs, &begin, &end);
}

absl::StatusOr<std::string> JobStore::LogsRemoved(uint64_t number) const {
  return db_->Get(CoordinatorFamily::kMeta, absl::StrCat(kLogsRemovedPrefix, EncodeU64(number)));
}

}  // namespace assay
