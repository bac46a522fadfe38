// The worker agent's task runner: a task's folder and inputs (made while it waits for its slot),
// then its run through the executor (and its decorators), the verdict, its outputs and its result.
// (The link and the sessions are in agent.cc.)
#include "worker/agent.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/base/byte_size.h"
#include "common/base/file_util.h"
#include "common/base/spare_directories.h"
#include "common/tree/safe_fs.h"
#include "worker/link_stream.h"
#include "worker/linked_cancel.h"
#include "worker/rev2_outputs.h"
#include "worker/step_logs.h"
#include "worker/step_output.h"
#include "worker/step_settings.h"

namespace assay {
namespace fs = std::filesystem;
using assay::v1::LogChunk;
using assay::v1::WorkerMessage;

namespace {

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t nanos = absl::ToUnixNanos(t);
  ts.set_seconds(nanos / 1'000'000'000);
  ts.set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
  return ts;
}

// One task's log on the link: its output as it comes and the worker's lines about it. The first
// message carries the worker's lines not sent yet (`preface`, then emptied).
class TaskLog {
 public:
  TaskLog(LinkStream* link, const assay::v1::LeaseRef& lease, std::string* preface)
      : link_(link), lease_(lease), preface_(preface) {}
  void Send(LogChunk::Stream stream, absl::string_view data, int64_t offset = 0) {
    WorkerMessage message;
    auto* log = message.mutable_log();
    *log->mutable_lease() = lease_;
    log->set_stream(stream);
    log->set_data(std::string(data));
    log->set_offset(offset);
    log->set_preface(std::move(*preface_));
    preface_->clear();
    link_->Send(message);
  }
  // A line of the worker's ("[assay] ...\n").
  void Note(absl::string_view line) { Send(LogChunk::SYSTEM, line); }

 private:
  LinkStream* const link_;
  const assay::v1::LeaseRef& lease_;
  std::string* const preface_;
};

// What the executor is asked to run for `assignment` in `exec_dir`: its command line, environment
// and timeout, and what the decorators read (its limits, container and console harness). `name` is
// unique on this host. The error is the task's, as reported.
absl::StatusOr<ExecRequest> StepRequest(const assay::v1::Assignment& assignment, const fs::path& task_dir,
                                        const fs::path& exec_dir, const std::string& name) {
  const reapi::Command& command = assignment.command();
  ExecRequest request;
  request.argv.assign(command.arguments().begin(), command.arguments().end());
  const char* path = std::getenv("PATH");
  request.env = StepEnvironment(command, {{"PATH", path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin"},
                                          {"HOME", exec_dir.string()},
                                          {"TMPDIR", task_dir.string()},
                                          {"LANG", "C.UTF-8"}});
  request.workdir = exec_dir;
  auto cwd = WorkingDirectoryOf(command);  // checked to be a directory there by PrepareTask
  if (!cwd.ok()) return cwd.status();
  request.cwd = std::move(*cwd);
  const auto& timeout = assignment.action().timeout();
  request.timeout = timeout.seconds() > 0 || timeout.nanos() > 0
                        ? absl::Seconds(timeout.seconds()) + absl::Nanoseconds(timeout.nanos())
                        : absl::Minutes(30);
  // A qemu step: its console is judged as it is printed, and the emulator ended when the harness says.
  auto harness = HarnessFor(command);
  if (!harness.ok()) return harness.status();
  request.harness = std::move(*harness);
  request.name = name;
  request.limits = LimitsFor(command);
  if (std::shared_ptr<ContainerRun> container = ContainerFor(command)) {
    container->name = name;
    container->labels = {{"assay.job", assignment.lease().job_id()}, {"assay.task", assignment.lease().task_id()}};
    container->limits = request.limits;
    request.container = std::move(container);
  }
  return request;
}

// Runs the step. Its first `limit.bytes` of output are kept (in `logs`, and sent live); beyond them
// one note, and the step goes on or, with output_limit_fails, is stopped.
absl::StatusOr<ExecResult> RunStep(Executor* executor, const ExecRequest& request, const CancelToken& cancel,
                                   const OutputLimit& limit, StepLogs* logs, TaskLog* log, bool* output_exceeded) {
  CancelToken stop;  // the task's cancel, or the output limit's
  LinkedCancel linked(cancel, &stop);
  StepOutput output(limit.bytes);
  auto exec = executor->Run(
      request,
      [&](OutputStream stream, absl::string_view data) {
        const int index = stream == OutputStream::kStdout ? 0 : 1;
        const StepOutput::Kept kept = output.Take(index, data);
        if (!kept.data.empty()) {
          logs->Append(index, kept.data);
          log->Send(index == 0 ? LogChunk::STDOUT : LogChunk::STDERR, kept.data, kept.offset);
        }
        if (kept.limit_reached) {
          log->Note(output.LimitNote(limit.fails));
          if (limit.fails) stop.Cancel();
        }
      },
      stop);
  *output_exceeded = output.exceeded();
  return exec;
}

// The task's outcome from its run: its exit code and timeout, then what the worker saw fail (the
// output limit, the memory limit, the console harness's verdict, in that order), each failure also
// a line in its log.
void ApplyVerdict(const ExecResult& exec, bool output_exceeded, const OutputLimit& output_limit,
                  const ResourceLimits& limits, TaskLog* log, assay::v1::TaskResult* out) {
  out->mutable_result()->set_exit_code(exec.exit_code);
  out->set_timed_out(exec.timed_out);
  if (output_exceeded && output_limit.fails) {
    out->mutable_result()->set_exit_code(1);  // stopped by the worker, whatever its signal's code
    out->set_failure(absl::StrCat("its output went beyond output_limit (", FormatBytes(output_limit.bytes), ")"));
  }
  if (exec.oom_killed) {
    out->set_failure(absl::StrCat("killed for exceeding its memory limit of ", FormatBytes(limits.memory_bytes),
                                  " (limits.memory)"));
    log->Note(absl::StrCat("[assay] ", out->failure(), "\n"));
  }
  if (!exec.console.has_value()) return;
  const ConsoleVerdict& verdict = *exec.console;
  if (verdict.passed) {
    out->mutable_result()->set_exit_code(0);
    log->Note(absl::StrCat("[assay] qemu: passed, ", verdict.met, " expectation(s) met\n"));
  } else {
    // The emulator's own code when it exited by itself with one; 1 when the harness ended it.
    if (verdict.harness_stopped || exec.exit_code == 0) out->mutable_result()->set_exit_code(1);
    out->set_failure(verdict.message);
    log->Note(absl::StrCat("[assay] qemu: ", verdict.message, "\n"));
  }
}

// The task's folder and its work directory in it, from `spares` where it has some.
absl::Status MakeTaskFolders(const fs::path& task_dir, const fs::path& exec_dir, SpareDirectories* spares) {
  if (spares == nullptr) return MakeDirs(exec_dir);
  auto parent = OpenDirectory(task_dir.parent_path());
  if (!parent.ok()) return MakeDirs(exec_dir);  // the work folder is not there yet
  auto task = MakeDirectoryAt(parent->get(), task_dir.filename().string(), spares);
  if (!task.ok()) return task.status();
  return MakeDirectoryAt(task->get(), exec_dir.filename().string(), spares).status();
}

// A kept folder for the task: the one most like its tree when the assignment carries the tree.
std::optional<KeptFolders::Folder> TakeKeptFolder(KeptFolders* kept, const assay::v1::Assignment& assignment,
                                                  const fs::path& task_dir, const TreeLimits& limits) {
  auto root = Digest::FromProto(assignment.action().input_root_digest());
  absl::flat_hash_map<Digest, const reapi::Directory*> by_digest;
  for (const auto& d : assignment.input_tree()) by_digest[Digest::OfMessage(d)] = &d;
  std::optional<KeptFolders::Plan> plan;
  if (root.ok() && by_digest.contains(*root)) {
    // (Not validated yet: the limits bound the walk; Materialize validates and refuses.)
    auto load = [&by_digest](const Digest& digest) -> absl::StatusOr<reapi::Directory> {
      auto it = by_digest.find(digest);
      if (it == by_digest.end()) return absl::NotFoundError(absl::StrCat("directory ", digest.ToString(), " missing"));
      return *it->second;
    };
    auto planned = KeptFolders::PlanOf(*root, load, limits);
    if (planned.ok()) plan = std::move(*planned);
  }
  std::optional<KeptFolders::Folder> folder = kept->Take(task_dir, plan.has_value() ? &*plan : nullptr);
  if (folder.has_value()) folder->plan = std::move(plan);  // Materialize fits it to the same plan
  return folder;
}

}  // namespace

void WorkerAgent::NoteHostProblem(assay::v1::TaskResult* result) {
  if (result->host_problem().empty() && !result->cancelled() && !result->not_started()) {
    std::string failure = result->error();
    if (failure.empty() && result->result().exit_code() != 0) {
      failure = absl::StrCat("the step exited with ", result->result().exit_code());
    }
    if (!failure.empty()) result->set_host_problem(work_disk_.AfterFailure(failure));
  }
  if (!result->host_problem().empty()) {
    spdlog::warn("worker {}: task {} {} handed to another worker: {}", options_.worker_id, result->lease().job_id(),
                 result->lease().task_id(), result->host_problem());
  }
}

void WorkerAgent::RunTask(LinkStream* link, assay::v1::Assignment assignment, std::shared_ptr<CancelToken> cancel,
                          uint64_t ticket) {
  AfterTask after;
  TaskFiles files;
  assay::v1::TaskResult result;
  // Its folder and inputs are made while it waits for its slot (a prefetched task), so the slot goes
  // straight to running it.
  const std::string no_room = work_disk_.BeforeTask();
  if (!no_room.empty()) result.set_host_problem(no_room);
  const bool prepared = no_room.empty() && PrepareTask(assignment, &files, &after, &result);
  const absl::Time waiting = absl::Now();
  if (!prepared) {
    gate_.Abandon(ticket);
  } else {
    switch (gate_.Enter(ticket, *cancel)) {
      case SlotGate::Admission::kEntered:
        result.set_slot_wait_ms(absl::ToInt64Milliseconds(absl::Now() - waiting));
        result = Execute(link, assignment, *cancel, files, &after, std::move(result));
        gate_.Leave();
        break;
      case SlotGate::Admission::kWithdrawn:
        result.Clear();
        result.set_not_started(true);
        after.log_preface.clear();
        break;
      case SlotGate::Admission::kCancelled:
        result.set_cancelled(true);
        result.set_error("cancelled before it started");
        break;
    }
  }
  result.set_log_preface(std::move(after.log_preface));
  *result.mutable_lease() = assignment.lease();
  NoteHostProblem(&result);
  const bool failed = !result.error().empty() && !result.cancelled();
  WorkerMessage message;
  *message.mutable_result() = std::move(result);
  link->Send(message);
  // The task's folder goes after its result is on its way: not between this task and the next.
  InputLinks::Released released;
  if (after.keep && !after.dir.empty()) {
    released = kept_folders_->Keep(after.dir, &after.links);
  } else {
    if (input_links_ != nullptr) input_links_->NoteUnchanged(&after.links);  // while the folder still links them
    if (!after.dir.empty()) RemoveAll(after.dir, after.spares).IgnoreError();
    if (input_links_ != nullptr) released = input_links_->Release(&after.links);  // now that no other name is left
  }
  {
    absl::MutexLock lock(&mu_);
    figures_.input_copies += released;
    --running_;
    ++figures_.tasks_finished;
    figures_.executor_failures += failed;
  }
  tasks_.MarkDone(assignment.lease());
}

bool WorkerAgent::PrepareTask(const assay::v1::Assignment& assignment, TaskFiles* files, AfterTask* after,
                              assay::v1::TaskResult* out) {
  auto* metadata = out->mutable_result()->mutable_execution_metadata();
  metadata->set_worker(options_.worker_id);
  *metadata->mutable_worker_start_timestamp() = ToTimestamp(absl::Now());
  const auto& lease = assignment.lease();
  files->safe = absl::StrReplaceAll(absl::StrCat(lease.job_id(), "-", lease.task_id(), "-", lease.attempt()),
                                    {{"/", "_"}, {" ", "_"}});
  files->task_dir = fs::path(options_.work_dir) / absl::StrCat(files->safe, "-", RandomHex(3));
  files->exec_dir = files->task_dir / KeptFolders::kWorkDir;
  after->dir = files->task_dir;  // removed once the result is sent (RunTask)
  // A step in the sandbox leaves nothing running that could reach its folder once it has ended:
  // its folders may come from, and go back to, the spare directories (spare_directories.h).
  const bool host_step = ContainerFor(assignment.command()) == nullptr;
  after->spares = host_step ? spare_dirs_.get() : nullptr;
  // Links to this host's copies only where nothing can change them behind the check (the worker has
  // them only when its steps run in the sandbox: WorkerServer), and not for steps with step caches
  // (whose restore relies on inputs being newer than the cache) or an image. Their folders are kept
  // for later tasks, and come from those kept (kept_folders.h).
  const bool link = inputs_.links() && assignment.caches_size() == 0 && host_step;
  after->linked = link;
  after->keep = link && kept_folders_ != nullptr && after->spares != nullptr;
  std::optional<KeptFolders::Folder> kept;
  if (after->keep) kept = TakeKeptFolder(kept_folders_.get(), assignment, files->task_dir, options_.tree_limits);
  absl::Status made = kept.has_value() ? absl::OkStatus() : MakeTaskFolders(files->task_dir, files->exec_dir, after->spares);
  if (!made.ok()) {
    out->set_error(std::string(made.message()));
    return false;
  }
  *metadata->mutable_input_fetch_start_timestamp() = ToTimestamp(absl::Now());
  // The worker's lines about caches and inputs wait for the task's next message (its first output, a
  // line of the worker's, or the result: RunTask) and ride with it: one message per task fewer.
  const StepCaches::NoteFn note = [after](absl::string_view line) { absl::StrAppend(&after->log_preface, line); };
  // Caches first, staged beside the work directory: the inputs written after them are newer, so tools
  // that compare times (make, cargo) see the sources as changed, never the cache as newer than them.
  StepCaches::Figures cache_figures;
  const fs::path staging = files->task_dir / "caches";
  caches_.Restore(assignment, staging, note, &cache_figures);
  auto input_root = Digest::FromProto(assignment.action().input_root_digest());
  const std::vector<reapi::Directory> known(assignment.input_tree().begin(), assignment.input_tree().end());
  auto fetched = input_root.ok() ? inputs_.Materialize(*input_root, files->exec_dir, &known,
                                                       link ? &after->links : nullptr, after->spares,
                                                       kept.has_value() ? &*kept : nullptr)
                                 : input_root.status();
  if (fetched.ok()) caches_.Place(staging, files->exec_dir, note);
  *metadata->mutable_input_fetch_completed_timestamp() = ToTimestamp(absl::Now());
  if (!fetched.ok()) {
    out->set_error(absl::StrCat("fetching inputs: ", fetched.status().message()));
    return false;
  }
  // The working directory checked, and an REv2.0 command's output folders' parents made (REAPI).
  auto exec_fd = OpenDirectory(files->exec_dir);
  absl::Status outputs = exec_fd.ok() ? PrepareOutputParents(exec_fd->get(), assignment.command()) : exec_fd.status();
  if (!outputs.ok()) {
    out->set_error(absl::StrCat("preparing outputs: ", outputs.message()));
    return false;
  }
  {
    absl::MutexLock lock(&mu_);
    figures_.input_files += fetched->files;
    figures_.local_cache_hits += fetched->local_hits;
    figures_.input_files_linked += fetched->linked;
    figures_.input_files_kept += fetched->kept;
    figures_.input_copies += fetched->released;
    figures_.bytes_fetched += fetched->fetched_bytes;
    figures_.caches.restored_bytes += cache_figures.restored_bytes;
    figures_.caches.local_bytes += cache_figures.local_bytes;
    figures_.caches.fetched_bytes += cache_figures.fetched_bytes;
  }
  note(absl::StrCat("[assay] inputs: ", fetched->files, " files, ", fetched->bytes, " bytes; ", fetched->local_hits,
                    " from this host's cache, ", fetched->fetched_bytes, " bytes fetched",
                    fetched->linked > 0 ? absl::StrCat("; ", fetched->linked, " linked to this host's copies") : "",
                    fetched->kept > 0 ? absl::StrCat(" (", fetched->kept, " already in place in a kept folder)") : "",
                    "\n"));
  return true;
}

assay::v1::TaskResult WorkerAgent::Execute(LinkStream* link, const assay::v1::Assignment& assignment,
                                           const CancelToken& cancel, const TaskFiles& files, AfterTask* after,
                                           assay::v1::TaskResult out) {
  auto* metadata = out.mutable_result()->mutable_execution_metadata();
  TaskLog log(link, assignment.lease(), &after->log_preface);
  auto request = StepRequest(assignment, files.task_dir, files.exec_dir,
                             absl::StrCat("assay-", options_.worker_id, "-", files.safe, "-", RandomHex(3)));
  if (!request.ok()) {
    out.set_error(std::string(request.status().message()));
    return out;
  }
  const OutputLimit output_limit = OutputLimitFor(assignment.command());
  bool output_exceeded = false;
  *metadata->mutable_execution_start_timestamp() = ToTimestamp(absl::Now());
  StepLogs logs(files.task_dir);
  InputLinks::StepStarts(&after->links);  // before anything of the step exists
  auto exec = RunStep(executor_.get(), *request, cancel, output_limit, &logs, &log, &output_exceeded);
  *metadata->mutable_execution_completed_timestamp() = ToTimestamp(absl::Now());
  if (!exec.ok()) {
    out.set_error(std::string(exec.status().message()));
    return out;
  }
  if (cancel.cancelled()) {
    out.set_cancelled(true);
    return out;
  }
  ApplyVerdict(*exec, output_exceeded, output_limit, request->limits, &log, &out);
  *metadata->mutable_output_upload_start_timestamp() = ToTimestamp(absl::Now());
  absl::Status uploaded = uploader_.Upload(assignment.command(), files.exec_dir, logs, &out,
                                           [&log](absl::string_view line) { log.Note(line); },
                                           after->linked ? input_links_.get() : nullptr);
  if (!uploaded.ok()) {
    out.set_error(std::string(uploaded.message()));
    return out;
  }
  *metadata->mutable_output_upload_completed_timestamp() = ToTimestamp(absl::Now());
  // A failed step saves no cache (what it left behind may be half-written).
  if (out.result().exit_code() == 0 && out.failure().empty() && !out.timed_out() && assignment.caches_size() > 0) {
    StepCaches::Figures cache_figures;
    caches_.Save(assignment, files.exec_dir, &out, [&log](absl::string_view line) { log.Note(line); }, &cache_figures);
    absl::MutexLock lock(&mu_);
    figures_.caches.saved_bytes += cache_figures.saved_bytes;
    figures_.caches.uploaded_bytes += cache_figures.uploaded_bytes;
  }
  *metadata->mutable_worker_completed_timestamp() = ToTimestamp(absl::Now());
  return out;
}

}  // namespace assay
