#include "cli/commands.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <iostream>
#include <atomic>
#include <thread>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "cli/images.h"
#include "cli/render.h"
#include "cli/report.h"
#include "common/base/file_util.h"
#include "common/base/status_util.h"
#include "common/task/task_states.h"
#include "common/tree/merkle.h"
#include "common/tree/tree_validator.h"

namespace assay::cli {
namespace fs = std::filesystem;
using assay::v1::Job;
using assay::v1::LogChunk;
using assay::v1::Task;

Client::Client(const std::string& address, std::shared_ptr<grpc::ChannelCredentials> credentials, RetryPolicy retry)
    : retrier(retry) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  channel = grpc::CreateCustomChannel(address, std::move(credentials), args);
  jobs = assay::v1::Jobs::NewStub(channel);
  admin = assay::v1::Admin::NewStub(channel);
  cas = std::make_unique<CasClient>(channel, "", retry);
}

absl::Status Client::Call(absl::string_view what, const std::function<grpc::Status(grpc::ClientContext*)>& call) {
  return retrier.Run(what, [&](absl::Time deadline) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    return FromGrpc(call(&context));
  });
}

int ReportError(const absl::Status& status) {
  std::cerr << "error: " << status.message() << "\n";
  const ExitCode code = ExitCodeFor(status);
  if (const char* hint = ExitCodeHint(code); *hint != '\0') std::cerr << "  " << hint << "\n";
  // A failed command never exits 0, whatever its status says.
  return code == kOk ? kBadInput : code;
}

namespace {

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }


// Ignores VCS metadata and whatever .assayignore lists (one path prefix per line, # comments).
IgnoreFn MakeIgnore(const fs::path& dir) {
  std::vector<std::string> prefixes = {".git", ".assay-local"};
  auto text = ReadFile(dir / ".assayignore");
  if (text.ok()) {
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (line.empty() || line[0] == '#') continue;
      while (!line.empty() && line.back() == '/') line.remove_suffix(1);
      prefixes.emplace_back(line);
    }
  }
  return [prefixes](const std::string& rel, bool) {
    for (const auto& p : prefixes) {
      if (rel == p || absl::StartsWith(rel, p + "/")) return true;
    }
    return false;
  };
}

}  // namespace

absl::StatusOr<Job> GetJob(Client& client, const std::string& id) {
  assay::v1::GetJobRequest request;
  request.set_job_id(id);
  Job job;
  absl::Status status = client.Call("GetJob", [&](grpc::ClientContext* c) { return client.jobs->GetJob(c, request, &job); });
  if (!status.ok()) return status;
  return job;
}

// Reads a task's (or the whole job's) stored log as text.
namespace {

std::string ReadLog(Client& client, const std::string& job_id, const std::string& task_id) {
  assay::v1::StreamLogsRequest request;
  request.set_job_id(job_id);
  request.set_task_id(task_id);
  grpc::ClientContext context;
  auto reader = client.jobs->StreamLogs(&context, request);
  LogChunk chunk;
  std::string out;
  while (reader->Read(&chunk)) out += chunk.data();
  reader->Finish();
  return out;
}

// Prints log chunks, each line prefixed with its task when asked.
class LogPrinter {
 public:
  explicit LogPrinter(bool prefix) : prefix_(prefix) {}
  void Print(const LogChunk& chunk) {
    if (!prefix_) {
      std::cout << chunk.data() << std::flush;
      return;
    }
    bool& at_start = at_line_start_.try_emplace(chunk.task_id(), true).first->second;
    std::string out;
    for (char c : chunk.data()) {
      if (at_start) absl::StrAppend(&out, chunk.task_id(), " | ");
      out.push_back(c);
      at_start = c == '\n';
    }
    std::cout << out << std::flush;
  }

 private:
  bool prefix_;
  std::map<std::string, bool> at_line_start_;
};

// Streams that outlive a coordinator restart: UNAVAILABLE (and a stream cut short) is retried with
// backoff for up to kReconnectFor; anything else is an error.
constexpr absl::Duration kReconnectFor = absl::Minutes(2);

class Reconnector {
 public:
  // Waits between tries with the client's retry backoff (the one every call uses).
  explicit Reconnector(Retrier& retrier) : retrier_(retrier) {}
  // Call after a stream ended; true when it is worth opening it again.
  bool ShouldRetry(const grpc::Status& status, bool made_progress) {
    if (made_progress) {
      lost_since_ = absl::InfiniteFuture();
      failures_ = 0;
    }
    if (!status.ok() && status.error_code() != grpc::StatusCode::UNAVAILABLE &&
        status.error_code() != grpc::StatusCode::CANCELLED) {
      return false;
    }
    if (lost_since_ == absl::InfiniteFuture()) {
      lost_since_ = absl::Now();
      std::cerr << "lost the connection to the coordinator; reconnecting for up to "
                << absl::FormatDuration(kReconnectFor) << "\n";
    }
    if (absl::Now() - lost_since_ > kReconnectFor) return false;
    retrier_.clock()->SleepFor(retrier_.Backoff(++failures_));
    return true;
  }

 private:
  Retrier& retrier_;
  absl::Time lost_since_ = absl::InfiniteFuture();
  int failures_ = 0;
};

// Follows every task's output, live, until `done` is set and the stream has ended.
void FollowLogs(Client& client, const std::string& id, const std::atomic<bool>& done) {
  LogPrinter printer(true);
  std::map<std::string, int64_t> printed;  // last sequence number printed per task
  Reconnector reconnect(client.retrier);
  while (true) {
    assay::v1::StreamLogsRequest request;
    request.set_job_id(id);
    request.set_follow(true);
    grpc::ClientContext context;
    auto reader = client.jobs->StreamLogs(&context, request);
    LogChunk chunk;
    bool progress = false;
    while (reader->Read(&chunk)) {
      progress = true;
      auto it = printed.find(chunk.task_id());
      if (it != printed.end() && static_cast<int64_t>(chunk.seq()) <= it->second) continue;  // replayed
      printed[chunk.task_id()] = chunk.seq();
      printer.Print(chunk);
    }
    grpc::Status status = reader->Finish();
    if (status.ok() || done.load() || !reconnect.ShouldRetry(status, progress)) return;
  }
}

// Watches a job until it ends, showing progress, across coordinator restarts; returns the final job.
absl::StatusOr<Job> WatchJob(Client& client, const std::string& id, bool live_logs) {
  const bool tty = ::isatty(STDOUT_FILENO) && !live_logs;
  std::atomic<bool> done{false};
  std::thread logs_thread;
  if (live_logs) logs_thread = std::thread([&]() { FollowLogs(client, id, done); });
  struct JoinLogs {
    std::thread& thread;
    std::atomic<bool>& done;
    ~JoinLogs() {
      done = true;
      if (thread.joinable()) thread.join();
    }
  } join_logs{logs_thread, done};

  Job last;
  bool have = false;
  size_t drawn_lines = 0;
  std::map<std::string, assay::v1::TaskState> seen;
  auto render = [&](const Job& job) {
    if (tty) {
      std::string table = absl::StrCat(JobSummary(job, NowMs()), "\n", MatrixTable(job, NowMs(), true));
      if (drawn_lines > 0) std::cout << "\033[" << drawn_lines << "F\033[J";
      std::cout << table << std::flush;
      drawn_lines = static_cast<size_t>(std::count(table.begin(), table.end(), '\n'));
      return;
    }
    for (const Task& t : job.tasks()) {
      auto it = seen.find(t.id());
      if (it != seen.end() && it->second == t.state()) continue;
      seen[t.id()] = t.state();
      if (t.state() == assay::v1::TASK_PENDING) continue;
      std::string line = absl::StrFormat("[%s] %-32s %-9s", absl::FormatTime("%H:%M:%S", absl::Now(), absl::LocalTimeZone()),
                                         t.id(), StateName(t.state()));
      if (t.cached()) absl::StrAppend(&line, " (cached)");
      std::string d = t.finished_at_ms() > 0 ? TaskDuration(t, NowMs()) : "";
      if (!d.empty()) absl::StrAppend(&line, " ", d);
      if (!t.message().empty() && t.state() != assay::v1::TASK_RUNNING) absl::StrAppend(&line, "  ", t.message());
      std::cout << line << "\n" << std::flush;
    }
  };

  Reconnector reconnect(client.retrier);
  while (true) {
    assay::v1::WatchJobRequest request;
    request.set_job_id(id);
    request.set_changes_only(true);  // the whole job first, then only the tasks that changed
    grpc::ClientContext context;
    auto reader = client.jobs->WatchJob(&context, request);
    Job update;
    bool progress = false;
    while (reader->Read(&update)) {
      progress = have = true;
      ApplyJobChanges(std::move(update), &last);
      render(last);
    }
    grpc::Status status = reader->Finish();
    if (have && IsFinal(last.state())) return last;
    if (!reconnect.ShouldRetry(status, progress)) {
      return status.ok() ? absl::InternalError("the coordinator ended the watch early") : FromGrpc(status);
    }
  }
}

}  // namespace

std::map<std::string, std::string> FailedLogs(Client& client, const Job& job) {
  std::map<std::string, std::string> logs;
  for (const Task& t : job.tasks()) {
    if (t.state() == assay::v1::TASK_FAILED) logs[t.id()] = ReadLog(client, job.id(), t.id());
  }
  return logs;
}

namespace {
// The coordinator's refusal of a tree some of whose blobs it does not have (Intake).
bool IsMissingBlobs(const absl::Status& status) {
  return absl::StrContains(status.message(), "missing from the CAS") || absl::StrContains(status.message(), "is not in the CAS");
}
}  // namespace

int Submit(Client& client, const SubmitOptions& options) {
  fs::path dir = options.dir;
  std::error_code ec;
  if (!fs::exists(dir / options.pipeline_file, ec)) {
    std::cerr << "error: " << (dir / options.pipeline_file).string() << " does not exist\n";
    return kBadInput;
  }
  const absl::Time t0 = absl::Now();
  auto tree = ScanDirectory(dir, MakeIgnore(dir));
  if (!tree.ok()) return ReportError(tree.status());
  auto uploaded = client.cas->Upload(tree->blobs);
  if (!uploaded.ok()) return ReportError(uploaded.status());
  std::cerr << absl::StrFormat("uploaded %d of %d blobs (%s) of %d files in %s\n", uploaded->blobs_sent,
                               tree->blobs.size(), absl::StrCat(uploaded->bytes_sent / 1024, " KiB"), tree->files,
                               FormatSeconds(absl::ToInt64Milliseconds(absl::Now() - t0)));

  assay::v1::SubmitRequest request;
  *request.mutable_source_root() = tree->root.ToProto();
  request.set_pipeline_path(options.pipeline_file);
  for (const auto& [k, v] : options.labels) (*request.mutable_labels())[k] = v;
  // Who submitted it (the dashboard's submitter filter), unless a `user` label says otherwise.
  if (const char* user = std::getenv("USER"); user != nullptr && *user != '\0' && !request.labels().contains("user")) {
    (*request.mutable_labels())["user"] = user;
  }
  request.set_request_id(RandomHex(16));
  request.set_priority(options.priority);  // a retried Submit finds the job the first try made
  for (const auto& [image, id] : ResolveImages(dir / options.pipeline_file)) (*request.mutable_image_ids())[image] = id;
  Job job;
  absl::Status status = client.Call("Submit", [&](grpc::ClientContext* c) { return client.jobs->Submit(c, request, &job); });
  // Blobs the farm dropped since the upload (a full cache evicts the least recently used): sent again
  // (the upload sends only what the farm lacks), then the same request once more.
  for (int again = 0; again < 2 && absl::IsFailedPrecondition(status) && IsMissingBlobs(status); ++again) {
    std::cerr << "the farm no longer has some of the tree's blobs (" << status.message() << "); uploading them again\n";
    auto resent = client.cas->Upload(tree->blobs);
    if (!resent.ok()) return ReportError(resent.status());
    status = client.Call("Submit", [&](grpc::ClientContext* c) { return client.jobs->Submit(c, request, &job); });
  }
  if (!status.ok()) return ReportError(status);
  // Submit's warnings (e.g. steps whose labels no worker offers) come in the job's message.
  if (!job.message().empty()) {
    for (absl::string_view line : absl::StrSplit(job.message(), '\n')) std::cerr << "warning: " << line << "\n";
  }
  if (!options.wait) {
    if (options.json) {
      std::cout << ToJson(job) << "\n";
    } else {
      std::cout << job.id() << "\n";
      std::cerr << "submitted job " << job.id() << " (" << job.task_count() << " tasks); follow it with: assay status "
                << job.id() << "\n";
    }
    return kOk;
  }
  if (!options.json) std::cerr << "job " << job.id() << ": " << job.task_count() << " tasks\n";
  return Wait(client, job.id(), options);
}

int Wait(Client& client, const std::string& job_id, const SubmitOptions& options) {
  auto final_job = WatchJob(client, job_id, options.stream_logs && !options.json);
  if (!final_job.ok()) return ReportError(final_job.status());
  std::map<std::string, std::string> failed_logs = FailedLogs(client, *final_job);
  const Report report = BuildReport(*final_job);
  if (!options.junit.empty()) {
    if (absl::Status s = WriteFile(options.junit, JUnitXml(report, failed_logs)); !s.ok()) return ReportError(s);
  }
  if (!options.markdown.empty()) {
    if (absl::Status s = WriteFile(options.markdown, ReportMarkdown(report)); !s.ok()) return ReportError(s);
  }
  if (options.json) {
    std::cout << ToJson(*final_job) << "\n";
  } else {
    if (!options.stream_logs) {
      for (const auto& [id, log] : failed_logs) {
        std::cout << "\n--- log of failed " << id << " ---\n" << log;
        if (!log.empty() && log.back() != '\n') std::cout << "\n";
      }
    }
    std::cout << "\n" << JobSummary(*final_job, NowMs()) << "\n";
    std::cout << "logs:      assay logs " << job_id << " [CELL/STEP]\n";
    std::cout << "artifacts: assay artifacts " << job_id << " --out DIR\n";
  }
  return final_job->state() == assay::v1::JOB_SUCCEEDED ? kOk : kJobFailed;
}

int Status(Client& client, const std::string& job_id, bool json) {
  auto job = GetJob(client, job_id);
  if (!job.ok()) return ReportError(job.status());
  if (json) {
    std::cout << ToJson(*job) << "\n";
    return kOk;
  }
  std::cout << JobSummary(*job, NowMs()) << "\n" << MatrixTable(*job, NowMs(), ::isatty(STDOUT_FILENO));
  for (const Task& t : job->tasks()) {
    if (!t.message().empty()) std::cout << "  " << t.id() << ": " << t.message() << "\n";
  }
  return kOk;
}

int ListJobs(Client& client, int limit, bool json) {
  assay::v1::ListJobsRequest request;
  request.set_limit(limit);
  assay::v1::ListJobsResponse response;
  absl::Status status =
      client.Call("ListJobs", [&](grpc::ClientContext* c) { return client.jobs->ListJobs(c, request, &response); });
  if (!status.ok()) return ReportError(status);
  if (json) {
    std::cout << ToJson(response) << "\n";
    return kOk;
  }
  std::cout << absl::StrFormat("%-6s %-10s %-20s %-8s %-20s %s\n", "JOB", "STATE", "NAME", "TASKS", "CREATED", "TIME");
  for (const Job& j : response.jobs()) {
    int64_t end = j.finished_at_ms() > 0 ? j.finished_at_ms() : NowMs();
    std::cout << absl::StrFormat(
        "%-6s %-10s %-20s %-8s %-20s %s\n", j.id(), StateName(j.state()), j.name(),
        absl::StrCat(j.tasks_done(), "/", j.task_count()),
        absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(j.created_at_ms()), absl::LocalTimeZone()),
        FormatSeconds(end - j.created_at_ms()));
  }
  return kOk;
}

int Logs(Client& client, const std::string& job_id, const std::string& task, bool follow) {
  assay::v1::StreamLogsRequest request;
  request.set_job_id(job_id);
  request.set_task_id(task);
  request.set_follow(follow);
  grpc::ClientContext context;
  auto reader = client.jobs->StreamLogs(&context, request);
  LogChunk chunk;
  // One task's log is printed as it is; several are interleaved with a prefix.
  std::optional<LogPrinter> printer;
  std::string first_task;
  bool several = false;
  while (reader->Read(&chunk)) {
    if (!printer) {
      first_task = chunk.task_id();
      auto job = GetJob(client, job_id);
      int matching = 0;
      if (job.ok()) {
        for (const Task& t : job->tasks()) {
          if (SelectsTask(task, t.id())) ++matching;
        }
      }
      several = matching > 1;
      printer.emplace(several);
    }
    printer->Print(chunk);
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return ReportError(FromGrpc(status));
  return kOk;
}

int Cancel(Client& client, const std::string& job_id, bool json) {
  assay::v1::CancelJobRequest request;
  request.set_job_id(job_id);
  Job job;
  absl::Status status =
      client.Call("CancelJob", [&](grpc::ClientContext* c) { return client.jobs->CancelJob(c, request, &job); });
  if (!status.ok()) return ReportError(status);
  if (json) {
    std::cout << ToJson(job) << "\n";
  } else {
    std::cout << "job " << job.id() << " cancelled\n";
  }
  return kOk;
}

int Artifacts(Client& client, const std::string& job_id, const std::string& task, const std::string& out_dir) {
  auto job = GetJob(client, job_id);
  if (!job.ok()) return ReportError(job.status());
  std::string sums;
  int files = 0;
  int64_t bytes = 0;
  for (const Task& t : job->tasks()) {
    if (!SelectsTask(task, t.id())) continue;
    auto outputs = ListOutputs(client, t);
    if (!outputs.ok()) return ReportError(outputs.status());
    for (const OutputEntry& f : *outputs) {
      std::string rel = absl::StrCat(t.id(), "/", f.path);
      // Names come from the farm: never let one write outside --out.
      if (absl::Status s = CheckRelativePath(rel, "artifact path"); !s.ok()) return ReportError(s);
      fs::path target = fs::path(out_dir) / rel;
      if (absl::Status s = MakeDirs(target.parent_path()); !s.ok()) return ReportError(s);
      if (absl::Status s = client.cas->DownloadToFile(f.digest, target, f.executable); !s.ok()) return ReportError(s);
      absl::StrAppend(&sums, f.digest.hash(), "  ", rel, "\n");
      ++files;
      bytes += f.digest.size();
    }
    // Output symlinks come back as symlinks, if they stay inside their task's folder.
    for (const auto& l : t.result().output_symlinks()) {
      std::string rel = absl::StrCat(t.id(), "/", l.path());
      if (absl::Status s = CheckRelativePath(rel, "artifact path"); !s.ok()) return ReportError(s);
      const std::string dir = fs::path(l.path()).parent_path().string();
      if (std::string why = SymlinkEscapesByName(dir, l.target()); !why.empty()) {
        return ReportError(absl::InvalidArgumentError(absl::StrCat("artifact ", rel, ": symlink target '", l.target(),
                                                                   "' ", why)));
      }
      fs::path target = fs::path(out_dir) / rel;
      if (absl::Status s = MakeDirs(target.parent_path()); !s.ok()) return ReportError(s);
      std::error_code ec;
      fs::remove(target, ec);  // an old file or link there is replaced, never followed
      fs::create_symlink(l.target(), target, ec);
      if (ec) return ReportError(absl::InternalError(absl::StrCat("cannot create symlink ", target.string(), ": ", ec.message())));
      ++files;
    }
  }
  if (files == 0) {
    std::cerr << "job " << job_id << " has no artifacts" << (task.empty() ? "" : absl::StrCat(" for ", task)) << "\n";
    return kOk;
  }
  if (absl::Status s = WriteFile(fs::path(out_dir) / "SHA256SUMS", sums); !s.ok()) return ReportError(s);
  std::cout << "downloaded " << files << " artifacts (" << bytes << " bytes) to " << out_dir
            << " (checksums in SHA256SUMS)\n";
  return kOk;
}

}  // namespace assay::cli
