// The worker agent's task runner: a task's folder and inputs (made while it waits for its slot),
// then its run in the executor, its outputs and its result. (The link and the sessions are in
// agent.cc.)
#include "worker/agent.h"

#include <spdlog/spdlog.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/file_util.h"
#include "worker/harness_thread.h"
#include "worker/link_stream.h"
#include "worker/linked_cancel.h"
#include "worker/output_collector.h"
#include "worker/output_sizes.h"
#include "worker/step_output.h"
#include "worker/step_settings.h"

namespace assay {
namespace fs = std::filesystem;
using assay::v1::WorkerMessage;

namespace {

// How long the console harness may take, once the emulator has ended, to read the output it has not
// read yet (it reads as the output comes, so normally there is nothing left).
constexpr absl::Duration kHarnessDrainWait = absl::Seconds(5);

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t nanos = absl::ToUnixNanos(t);
  ts.set_seconds(nanos / 1'000'000'000);
  ts.set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
  return ts;
}

// The harness's verdict once the run has ended: it first reads what is still queued (a bounded wait).
ConsoleHarness::Verdict JudgeConsole(HarnessThread* judging, ConsoleHarness* harness, const ExecResult& exec,
                                     absl::string_view task) {
  std::string trouble;
  if (!judging->Drain(kHarnessDrainWait)) {
    trouble = absl::StrCat("the console harness did not finish reading the output within ",
                           absl::FormatDuration(kHarnessDrainWait), " after the emulator ended");
  } else if (judging->overflowed()) {
    trouble = absl::StrCat("the console harness fell more than ", HarnessThread::kMaxPendingBytes >> 20,
                           " MiB behind the emulator's output; the emulator was stopped");
  }
  if (trouble.empty()) return harness->Judge(exec.exit_code, exec.timed_out, judging->stopped());
  spdlog::warn("task {}: {}", std::string(task), trouble);
  return {false, trouble};
}

}  // namespace

bool WorkerAgent::PrepareTask(const assay::v1::Assignment& assignment, TaskFiles* files, AfterTask* after,
                              assay::v1::TaskResult* out) {
  auto* metadata = out->mutable_result()->mutable_execution_metadata();
  metadata->set_worker(options_.worker_id);
  *metadata->mutable_worker_start_timestamp() = ToTimestamp(absl::Now());
  const auto& lease = assignment.lease();
  files->safe = absl::StrReplaceAll(absl::StrCat(lease.job_id(), "-", lease.task_id(), "-", lease.attempt()),
                                    {{"/", "_"}, {" ", "_"}});
  files->task_dir = fs::path(options_.work_dir) / absl::StrCat(files->safe, "-", RandomHex(3));
  files->exec_dir = files->task_dir / "work";
  after->dir = files->task_dir;  // removed once the result is sent (RunTask)
  if (absl::Status s = MakeDirs(files->exec_dir); !s.ok()) {
    out->set_error(std::string(s.message()));
    return false;
  }
  *metadata->mutable_input_fetch_start_timestamp() = ToTimestamp(absl::Now());
  auto input_root = Digest::FromProto(assignment.action().input_root_digest());
  const std::vector<reapi::Directory> known(assignment.input_tree().begin(), assignment.input_tree().end());
  auto fetched = input_root.ok() ? cas_->Materialize(*input_root, files->exec_dir, &known) : input_root.status();
  *metadata->mutable_input_fetch_completed_timestamp() = ToTimestamp(absl::Now());
  if (!fetched.ok()) {
    out->set_error(absl::StrCat("fetching inputs: ", fetched.status().message()));
    return false;
  }
  {
    absl::MutexLock lock(&mu_);
    figures_.input_files += fetched->files;
    figures_.local_cache_hits += fetched->local_hits;
    figures_.bytes_fetched += fetched->fetched_bytes;
  }
  // The worker's line about the inputs waits for the task's next message (its first output, a line
  // of the worker's, or the result: RunTask) and rides with it: one message per task fewer.
  after->log_preface = absl::StrCat("[assay] inputs: ", fetched->files, " files, ", fetched->bytes, " bytes; ",
                                    fetched->local_hits, " from this host's cache, ", fetched->fetched_bytes,
                                    " bytes fetched\n");
  return true;
}

assay::v1::TaskResult WorkerAgent::Execute(LinkStream* link, const assay::v1::Assignment& assignment,
                                           const CancelToken& cancel, const TaskFiles& files, AfterTask* after,
                                           assay::v1::TaskResult out) {
  auto* metadata = out.mutable_result()->mutable_execution_metadata();
  const auto& lease = assignment.lease();
  const std::string& safe = files.safe;
  const fs::path& task_dir = files.task_dir;
  const fs::path& exec_dir = files.exec_dir;
  std::string& preface = after->log_preface;
  auto send_log = [&](assay::v1::LogChunk::Stream stream, absl::string_view data, int64_t offset = 0) {
    WorkerMessage message;
    auto* log = message.mutable_log();
    *log->mutable_lease() = lease;
    log->set_stream(stream);
    log->set_data(std::string(data));
    log->set_offset(offset);
    log->set_preface(std::move(preface));
    preface.clear();
    link->Send(message);
  };

  ExecRequest request;
  request.argv.assign(assignment.command().arguments().begin(), assignment.command().arguments().end());
  const char* path = std::getenv("PATH");
  request.env.emplace_back("PATH", path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  request.env.emplace_back("HOME", exec_dir.string());
  request.env.emplace_back("TMPDIR", task_dir.string());
  request.env.emplace_back("LANG", "C.UTF-8");
  for (const auto& var : assignment.command().environment_variables()) request.env.emplace_back(var.name(), var.value());
  request.workdir = exec_dir;
  const auto& timeout = assignment.action().timeout();
  request.timeout = timeout.seconds() > 0 || timeout.nanos() > 0
                        ? absl::Seconds(timeout.seconds()) + absl::Nanoseconds(timeout.nanos())
                        : absl::Minutes(30);

  // A qemu step: its console is judged as it is printed, and the emulator ended when the harness says.
  auto harness = HarnessFor(assignment.command());
  if (!harness.ok()) {
    out.set_error(std::string(harness.status().message()));
    return out;
  }
  // Its limits: control groups of its own, joined before it starts, removed after it.
  const ResourceLimits limits = LimitsFor(assignment.command());
  std::unique_ptr<Cgroups::Task> cgroup;
  Executor* executor = executor_.get();
  if (std::shared_ptr<ContainerRun> container = ContainerFor(assignment.command())) {
    if (containers_ == nullptr) {
      out.set_error("this worker has no container engine (start it with --container-engine docker|podman)");
      return out;
    }
    container->name = absl::StrCat("assay-", options_.worker_id, "-", safe, "-", RandomHex(3));
    container->labels = {{"assay.job", lease.job_id()}, {"assay.task", lease.task_id()}};
    container->limits = limits;
    // The limits: in a group of the worker's that holds the container's own (so that the kernel's
    // OOM count is read here, exactly), where the engine makes its groups on this host; else the
    // engine's flags.
    if (limits.any() && containers_->shares_cgroups() && cgroups_.Unsupported(limits).empty()) {
      auto made = cgroups_.Create(container->name, limits, /*as_parent=*/true);
      if (!made.ok()) {
        out.set_error(std::string(made.status().message()));
        return out;
      }
      cgroup = std::move(*made);
      container->cgroup_parent = cgroup->path();
    }
    request.container = container;
    executor = containers_.get();
  } else if (limits.any()) {
    auto made = cgroups_.Create(absl::StrCat("assay-", options_.worker_id, "-", safe, "-", RandomHex(3)), limits);
    if (!made.ok()) {
      out.set_error(std::string(made.status().message()));
      return out;
    }
    cgroup = std::move(*made);
    request.join_cgroups = cgroup->procs_files();
  }
  CancelToken stop;  // the task's cancel, or the harness's decision to end the run
  LinkedCancel linked(cancel, &stop);
  // The harness reads the output on a thread of its own: the executor's loop, which enforces the
  // timeout and the cancel, only queues it (worker/harness_thread.h).
  std::shared_ptr<ConsoleHarness> judge = std::move(*harness);
  std::unique_ptr<HarnessThread> judging;
  if (judge != nullptr) {
    judging = std::make_unique<HarnessThread>(
        [judge](absl::string_view data, int stream) { return judge->Feed(data, stream); }, [&stop] { stop.Cancel(); });
  }

  std::ofstream stdout_file(task_dir / "stdout", std::ios::binary);
  std::ofstream stderr_file(task_dir / "stderr", std::ios::binary);
  // The first `output_limit` bytes are kept (in the files that become stdout/stderr, and live);
  // beyond them one note, and the step goes on or, with output_limit_fails, is stopped.
  const OutputLimit output_limit = OutputLimitFor(assignment.command());
  StepOutput output(output_limit.bytes);
  *metadata->mutable_execution_start_timestamp() = ToTimestamp(absl::Now());
  auto exec = executor->Run(
      request,
      [&](OutputStream stream, absl::string_view data) {
        const int index = stream == OutputStream::kStdout ? 0 : 1;
        const StepOutput::Kept kept = output.Take(index, data);
        if (!kept.data.empty()) {
          (index == 0 ? stdout_file : stderr_file).write(kept.data.data(), static_cast<std::streamsize>(kept.data.size()));
          send_log(index == 0 ? assay::v1::LogChunk::STDOUT : assay::v1::LogChunk::STDERR, kept.data, kept.offset);
        }
        if (kept.limit_reached) {
          send_log(assay::v1::LogChunk::SYSTEM, output.LimitNote(output_limit.fails));
          if (output_limit.fails) stop.Cancel();
        }
        if (judging != nullptr) judging->Feed(data, index);
      },
      stop);
  *metadata->mutable_execution_completed_timestamp() = ToTimestamp(absl::Now());
  stdout_file.close();
  stderr_file.close();
  if (!exec.ok()) {
    out.set_error(absl::StrCat("starting the command: ", exec.status().message()));
    return out;
  }
  if (cancel.cancelled()) {
    out.set_cancelled(true);
    return out;
  }
  out.mutable_result()->set_exit_code(exec->exit_code);
  out.set_timed_out(exec->timed_out);
  if (output.exceeded() && output_limit.fails) {
    out.mutable_result()->set_exit_code(1);  // stopped by the worker, whatever its signal's code
    out.set_failure(absl::StrCat("its output went beyond output_limit (", FormatBytes(output_limit.bytes), ")"));
  }
  if ((cgroup != nullptr && cgroup->oom_killed()) || exec->oom_killed) {
    out.set_failure(absl::StrCat("killed for exceeding its memory limit of ", FormatBytes(limits.memory_bytes),
                                 " (limits.memory)"));
    send_log(assay::v1::LogChunk::SYSTEM, absl::StrCat("[assay] ", out.failure(), "\n"));
  }
  if (judging != nullptr) {
    const ConsoleHarness::Verdict verdict = JudgeConsole(judging.get(), judge.get(), *exec, lease.task_id());
    const bool harness_stopped = judging->stopped();
    if (verdict.passed) {
      out.mutable_result()->set_exit_code(0);
      send_log(assay::v1::LogChunk::SYSTEM,
               absl::StrCat("[assay] qemu: passed, ", judge->met(), " expectation(s) met\n"));
    } else {
      // The emulator's own code when it exited by itself with one; 1 when the harness ended it.
      if (harness_stopped || exec->exit_code == 0) out.mutable_result()->set_exit_code(1);
      out.set_failure(verdict.message);
      send_log(assay::v1::LogChunk::SYSTEM, absl::StrCat("[assay] qemu: ", verdict.message, "\n"));
    }
  }

  // Outputs and the two logs go to the CAS; the result references them. Outputs are read beneath the
  // work directory without following symlinks (output_collector.h).
  *metadata->mutable_output_upload_start_timestamp() = ToTimestamp(absl::Now());
  auto work_fd = OpenDirectory(exec_dir);
  if (!work_fd.ok()) {
    out.set_error(absl::StrCat("collecting outputs: ", work_fd.status().message()));
    return out;
  }
  auto outputs = CollectOutputs(work_fd->get(), exec_dir.string(),
                                {assignment.command().output_paths().begin(), assignment.command().output_paths().end()});
  if (!outputs.ok()) {
    send_log(assay::v1::LogChunk::SYSTEM, absl::StrCat("[assay] ", outputs.status().message(), "\n"));
    out.set_error(absl::StrCat("collecting outputs: ", outputs.status().message()));
    return out;
  }
  // Output sizes (ELF sections too) ride in the action result, for size budgets and reports.
  const std::vector<std::string> output_paths(assignment.command().output_paths().begin(),
                                              assignment.command().output_paths().end());
  if (assay::v1::OutputSizes sizes = MeasureOutputs(work_fd->get(), output_paths); sizes.files_size() > 0) {
    metadata->add_auxiliary_metadata()->PackFrom(sizes);
  }
  for (const std::string& warning : outputs->warnings) {
    send_log(assay::v1::LogChunk::SYSTEM, absl::StrCat("[assay] warning: ", warning, "\n"));
  }
  for (auto& f : outputs->files) *out.mutable_result()->add_output_files() = std::move(f);
  for (auto& l : outputs->symlinks) *out.mutable_result()->add_output_symlinks() = std::move(l);
  std::vector<TreeBlob> uploads = std::move(outputs->uploads);
  for (const auto& [name, field] : {std::pair{"stdout", 0}, std::pair{"stderr", 1}}) {
    auto digest = DigestFile((task_dir / name).string());
    if (!digest.ok()) continue;
    *(field == 0 ? out.mutable_result()->mutable_stdout_digest() : out.mutable_result()->mutable_stderr_digest()) =
        digest->ToProto();
    uploads.push_back(TreeBlob{*digest, "", task_dir / name});
  }
  // Small blobs ride with the result (one round trip fewer per step); the rest is uploaded first.
  const std::vector<TreeBlob> to_upload =
      InlineSmallBlobs(uploads, kInlineBlobBytes, kInlineResultBytes, out.mutable_inline_blobs());
  auto uploaded = cas_->Upload(to_upload);
  if (!uploaded.ok()) {
    out.set_error(absl::StrCat("uploading outputs: ", uploaded.status().message()));
    return out;
  }
  cas_->KeepLocally(uploads);  // the cell's next steps on this host read them from here
  *metadata->mutable_output_upload_completed_timestamp() = ToTimestamp(absl::Now());
  *metadata->mutable_worker_completed_timestamp() = ToTimestamp(absl::Now());
  return out;
}

}  // namespace assay
