#include "worker/agent.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <optional>
#include <set>

#include <grpcpp/create_channel.h>
#include <spdlog/spdlog.h>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/clock.h"
#include "common/console_harness.h"
#include "common/file_util.h"
#include "common/status_util.h"
#include "worker/linked_cancel.h"
#include "worker/step_settings.h"
#include "worker/link_stream.h"
#include "worker/output_collector.h"
#include "worker/output_sizes.h"

namespace assay {
namespace fs = std::filesystem;
using assay::v1::CoordinatorMessage;
using assay::v1::WorkerMessage;

namespace {

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t nanos = absl::ToUnixNanos(t);
  ts.set_seconds(nanos / 1'000'000'000);
  ts.set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
  return ts;
}

}  // namespace

grpc::ChannelArguments WorkerChannelArgs() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // gRPC's own reconnect backoff grows to 2 minutes by default: a coordinator back from a restart
  // would wait that long for its workers. Keep every try within kMaxReconnectPause of the last.
  const int max_ms = static_cast<int>(absl::ToInt64Milliseconds(WorkerAgent::kMaxReconnectPause));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, max_ms / 5);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, max_ms / 5);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_ms);
  return args;
}

WorkerParts MakeWorkerParts(WorkerAgent::Options* options, std::unique_ptr<Executor> executor) {
  WorkerParts parts;
  parts.executor = executor ? std::move(executor) : std::make_unique<ProcessExecutor>();
  auto channel = grpc::CreateCustomChannel(
      options->coordinator, options->credentials ? options->credentials : grpc::InsecureChannelCredentials(),
      WorkerChannelArgs());
  parts.cas = std::make_unique<CasClient>(channel, options->instance_name, options->retry);
  parts.cas->set_tree_limits(options->tree_limits);
  if (options->cache_dir.empty()) options->cache_dir = (fs::path(options->work_dir) / "cache").string();
  // The local cache opens only the CAS's column families: nothing of a coordinator's.
  auto db = Database::Open(options->cache_dir, Database::CasOnly());
  auto stack = db.ok() ? MakeBlobStoreStack(db->get(), RealClock::Get(),
                                            EvictingBlobStore::Options{options->cache_bytes, 0.95, 0.8})
                       : db.status();
  if (stack.ok()) {
    parts.cache_db = std::move(*db);
    parts.cache = std::move(*stack);
  } else {
    spdlog::warn("no local cache ({}); every input is fetched", stack.status().ToString());
  }
  return parts;
}

WorkerAgent::WorkerAgent(Options options, std::unique_ptr<Executor> executor)
    : WorkerAgent(options, MakeWorkerParts(&options, std::move(executor))) {}

WorkerAgent::WorkerAgent(Options options, WorkerParts parts)
    : options_(std::move(options)),
      cas_(std::move(parts.cas)),
      cache_db_(std::move(parts.cache_db)),
      cache_(std::move(parts.cache)),
      local_cache_(parts.local_cache != nullptr ? parts.local_cache : cache_.store()),
      executor_(std::move(parts.executor)),
      cgroups_(Cgroups::Detect()),
      gate_(options_.slots) {
  if (options_.worker_id.empty()) options_.worker_id = absl::StrCat(Hostname(), "-", RandomHex(3));
  labels_ = DetectLabels(executor_->name());
  for (const auto& l : options_.labels) labels_.push_back(l);
  channel_args_ = WorkerChannelArgs();
  if (local_cache_ != nullptr) cas_->set_local_cache(local_cache_);
}

WorkerAgent::~WorkerAgent() { Stop(); }

void WorkerAgent::EnableContainers(std::unique_ptr<ContainerExecutor> engine) {
  labels_.push_back("container");
  labels_.push_back(absl::StrCat(engine->name(), "=", engine->version()));
  containers_ = std::move(engine);
}

namespace {
WorkerMessage StoppingMessage(absl::Time deadline) {
  WorkerMessage message;
  message.mutable_stopping()->set_grace_ms(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
  return message;
}
}  // namespace

int WorkerAgent::Drain(absl::Duration grace) {
  int left = 0;
  LinkStream* link = nullptr;
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
    drain_deadline_ = absl::Now() + grace;
    if (link_ != nullptr) link_->Send(StoppingMessage(drain_deadline_));  // later sessions send it at hello
    const int held = gate_.WithdrawAll();  // tasks waiting for a slot go back unstarted, for other workers
    spdlog::info("worker {} draining: no new tasks; {} running task(s) have {} to finish ({} handed back unstarted)",
                 options_.worker_id, running_ - held, absl::FormatDuration(grace), held);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0 || stopping_; };
    mu_.AwaitWithTimeout(absl::Condition(&idle), grace);
    left = running_;
    if (left == 0 && !stopping_ && link_ != nullptr) {
      link = link_;
      closing_ = true;  // the session keeps the link until closing_ is false again
    }
  }
  if (link != nullptr) {
    // The last results are written and taken by the coordinator before the link goes.
    if (!link->CloseGracefully(kCloseTimeout)) {
      spdlog::warn("worker {}: the coordinator did not confirm the end of the link", options_.worker_id);
    }
    absl::MutexLock lock(&mu_);
    closing_ = false;
  }
  if (left > 0) {
    spdlog::warn("worker {}: grace period over; handing back {} running task(s)", options_.worker_id, left);
  } else {
    spdlog::info("worker {} drained", options_.worker_id);
  }
  Stop();
  return left;
}

WorkerAgent::Figures WorkerAgent::figures() {
  absl::MutexLock lock(&mu_);
  Figures f = figures_;
  f.slots = options_.slots;
  f.running = running_;
  f.connected = link_ != nullptr;
  return f;
}

void WorkerAgent::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  if (context_ != nullptr) context_->TryCancel();
}

void WorkerAgent::Run() {
  // Reconnects forever (a worker outlives coordinator restarts), with a backoff that stays short:
  // a failed dial costs next to nothing, and a farm whose coordinator is back must be working again
  // within a second or two, not after a backoff that grew while it was down.
  RetryPolicy policy = options_.retry;
  policy.max_backoff = std::min(policy.max_backoff, kMaxReconnectPause);
  Retrier reconnect(policy);
  int failures = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    const bool welcomed = Session(failures);
    failures = welcomed ? 0 : failures + 1;
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    // Wait before reconnecting, but wake at once on Stop().
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), reconnect.Backoff(std::max(failures, 1)));
  }
}

bool WorkerAgent::Session(int failures) {
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    context_ = &context;
  }
  // Each session dials on a channel of its own (its own subchannel, not the shared pool's): a fresh
  // channel tries at once, where a used one may sit out a backoff that grew while the coordinator
  // was down.
  grpc::ChannelArguments args = channel_args_;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(
      options_.coordinator, options_.credentials ? options_.credentials : grpc::InsecureChannelCredentials(), args);
  auto stub = assay::v1::WorkerLink::NewStub(channel);
  LinkStream link(stub.get(), &context);

  WorkerMessage hello;
  auto* h = hello.mutable_hello();
  h->set_worker_id(options_.worker_id);
  h->set_hostname(Hostname());
  for (const auto& l : labels_) h->add_labels(l);
  h->set_slots(options_.slots);
  h->set_prefetch(options_.prefetch);
  h->add_executors(executor_->name());
  h->set_version("0.1.0");
  link.Send(hello);

  absl::Duration heartbeat = absl::Seconds(5);
  std::thread heartbeats;
  absl::Mutex hb_mu;
  bool hb_stop = false;
  bool welcomed = false;
  while (std::optional<CoordinatorMessage> next = link.Next()) {
    const CoordinatorMessage& message = *next;
    switch (message.kind_case()) {
      case CoordinatorMessage::kWelcome: {
        welcomed = true;
        heartbeat = absl::Milliseconds(std::max<int64_t>(message.welcome().heartbeat_interval_ms(), 50));
        spdlog::info("worker {} connected to {} ({} slots)", options_.worker_id, options_.coordinator, options_.slots);
        {
          absl::MutexLock lock(&mu_);
          link_ = &link;
          if (draining_) link.Send(StoppingMessage(drain_deadline_));
        }
        heartbeats = std::thread([&, heartbeat]() {
          absl::MutexLock lock(&hb_mu);
          while (!hb_mu.AwaitWithTimeout(absl::Condition(&hb_stop), heartbeat)) {
            WorkerMessage beat;
            {
              absl::MutexLock running_lock(&link.running_mu);
              for (const auto& [key, r] : link.running) {
                if (!r.done) *beat.mutable_heartbeat()->add_leases() = r.lease;
              }
            }
            beat.mutable_heartbeat();
            link.Send(beat);
          }
        });
        break;
      }
      case CoordinatorMessage::kAssign: {
        const auto& lease = message.assign().lease();
        std::string key = absl::StrCat(lease.job_id(), "/", lease.task_id());
        auto cancel = std::make_shared<CancelToken>();
        {
          absl::MutexLock counts(&mu_);
          ++running_;  // until its result is sent (RunTask)
        }
        std::vector<RunningTask> finished;
        absl::MutexLock lock(&link.running_mu);
        // Take out threads of tasks that ended (and an older attempt of this task, cancelled).
        for (auto it = link.running.begin(); it != link.running.end();) {
          if (it->second.done || it->first == key) {
            if (!it->second.done) spdlog::warn("task {} assigned again; the older attempt is cancelled", key);
            it->second.cancel->Cancel();
            finished.push_back(std::move(it->second));
            it = link.running.erase(it);
          } else {
            ++it;
          }
        }
        link.running_mu.Unlock();
        gate_.Wake();
        for (RunningTask& old : finished) old.thread.join();
        link.running_mu.Lock();
        RunningTask& r = link.running[key];
        r.lease = lease;
        r.cancel = cancel;
        r.ticket = gate_.Join();
        r.thread = std::thread(&WorkerAgent::RunTask, this, &link, message.assign(), cancel, r.ticket);
        break;
      }
      case CoordinatorMessage::kCancel: {
        const auto& lease = message.cancel().lease();
        std::string key = absl::StrCat(lease.job_id(), "/", lease.task_id());
        absl::MutexLock lock(&link.running_mu);
        auto it = link.running.find(key);
        // Only the attempt (and lease) it names: a cancel that arrives after a newer attempt's
        // assignment is for the older one, which that assignment already ended.
        if (it != link.running.end() && (lease.attempt() == 0 || it->second.lease.attempt() == lease.attempt()) &&
            (lease.lease_id().empty() || it->second.lease.lease_id() == lease.lease_id())) {
          if (message.cancel().if_not_started()) {
            // Asked back unstarted: only a task still waiting for a slot goes (RunTask says so).
            if (gate_.Withdraw(it->second.ticket)) spdlog::info("handing back {}: {}", key, message.cancel().reason());
          } else {
            spdlog::info("cancelling {}: {}", key, message.cancel().reason());
            it->second.cancel->Cancel();
            gate_.Wake();
          }
        }
        break;
      }
      default:
        break;
    }
  }
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(+[](bool* closing) { return !*closing; }, &closing_));
    link_ = nullptr;
  }
  grpc::Status status = link.Finish();
  if (!welcomed) {
    // The first failure of a run, then at 2, 4, 8, ... tries: a dead coordinator does not flood the log.
    const int tries = failures + 1;
    if ((tries & (tries - 1)) == 0) {
      spdlog::warn("worker {}: cannot connect to {} ({} {}): {}", options_.worker_id, options_.coordinator, tries,
                   tries == 1 ? "try" : "tries", status.error_message().empty() ? "no answer" : status.error_message());
    }
  } else {
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      stopping = stopping_;
    }
    if (stopping) {
      spdlog::info("worker {}: link to coordinator closed", options_.worker_id);
    } else {
      spdlog::warn("worker {}: link to coordinator closed: {}", options_.worker_id, status.error_message());
    }
  }
  {
    absl::MutexLock lock(&hb_mu);
    hb_stop = true;
  }
  if (heartbeats.joinable()) heartbeats.join();
  // Tasks of a dead session belong to nobody now: the coordinator queues them again.
  std::map<std::string, RunningTask> running;
  {
    absl::MutexLock lock(&link.running_mu);
    for (auto& [key, r] : link.running) r.cancel->Cancel();
    running.swap(link.running);
  }
  gate_.Wake();
  for (auto& [key, r] : running) r.thread.join();
  absl::MutexLock lock(&mu_);
  context_ = nullptr;
  return welcomed;
}

void WorkerAgent::RunTask(LinkStream* link, assay::v1::Assignment assignment, std::shared_ptr<CancelToken> cancel,
                          uint64_t ticket) {
  AfterTask after;
  assay::v1::TaskResult result;
  switch (gate_.Enter(ticket, *cancel)) {
    case SlotGate::Admission::kEntered:
      result = Execute(link, assignment, *cancel, &after);
      gate_.Leave();
      break;
    case SlotGate::Admission::kWithdrawn:
      result.set_not_started(true);
      break;
    case SlotGate::Admission::kCancelled:
      result.set_cancelled(true);
      result.set_error("cancelled before it started");
      break;
  }
  result.set_log_preface(std::move(after.log_preface));
  *result.mutable_lease() = assignment.lease();
  const bool failed = !result.error().empty() && !result.cancelled();
  WorkerMessage message;
  *message.mutable_result() = std::move(result);
  link->Send(message);
  // The task's folder goes after its result is on its way: not between this task and the next.
  if (!after.dir.empty()) RemoveAll(after.dir).IgnoreError();
  {
    absl::MutexLock lock(&mu_);
    --running_;
    ++figures_.tasks_finished;
    figures_.executor_failures += failed;
  }
  std::string key = absl::StrCat(assignment.lease().job_id(), "/", assignment.lease().task_id());
  absl::MutexLock lock(&link->running_mu);
  auto it = link->running.find(key);
  if (it != link->running.end() && it->second.lease.lease_id() == assignment.lease().lease_id()) it->second.done = true;
}

assay::v1::TaskResult WorkerAgent::Execute(LinkStream* link, const assay::v1::Assignment& assignment,
                                           const CancelToken& cancel, AfterTask* after) {
  assay::v1::TaskResult out;
  auto* metadata = out.mutable_result()->mutable_execution_metadata();
  metadata->set_worker(options_.worker_id);
  *metadata->mutable_worker_start_timestamp() = ToTimestamp(absl::Now());
  const auto& lease = assignment.lease();
  std::string safe = absl::StrReplaceAll(absl::StrCat(lease.job_id(), "-", lease.task_id(), "-", lease.attempt()),
                                         {{"/", "_"}, {" ", "_"}});
  fs::path task_dir = fs::path(options_.work_dir) / absl::StrCat(safe, "-", RandomHex(3));
  fs::path exec_dir = task_dir / "work";
  after->dir = task_dir;  // removed once the result is sent (RunTask)
  if (absl::Status s = MakeDirs(exec_dir); !s.ok()) {
    out.set_error(std::string(s.message()));
    return out;
  }

  // The worker's line about the inputs waits for the task's next message (its first output, a line
  // of the worker's, or the result: RunTask) and rides with it: one message per task fewer.
  std::string& preface = after->log_preface;
  auto send_log = [&](assay::v1::LogChunk::Stream stream, absl::string_view data) {
    WorkerMessage message;
    auto* log = message.mutable_log();
    *log->mutable_lease() = lease;
    log->set_stream(stream);
    log->set_data(std::string(data));
    log->set_preface(std::move(preface));
    preface.clear();
    link->Send(message);
  };

  *metadata->mutable_input_fetch_start_timestamp() = ToTimestamp(absl::Now());
  auto input_root = Digest::FromProto(assignment.action().input_root_digest());
  const std::vector<reapi::Directory> known(assignment.input_tree().begin(), assignment.input_tree().end());
  auto fetched = input_root.ok() ? cas_->Materialize(*input_root, exec_dir, &known) : input_root.status();
  *metadata->mutable_input_fetch_completed_timestamp() = ToTimestamp(absl::Now());
  if (!fetched.ok()) {
    out.set_error(absl::StrCat("fetching inputs: ", fetched.status().message()));
    return out;
  }
  {
    absl::MutexLock lock(&mu_);
    figures_.input_files += fetched->files;
    figures_.local_cache_hits += fetched->local_hits;
    figures_.bytes_fetched += fetched->fetched_bytes;
  }
  preface = absl::StrCat("[assay] inputs: ", fetched->files, " files, ", fetched->bytes, " bytes; ", fetched->local_hits,
                         " from this host's cache, ", fetched->fetched_bytes, " bytes fetched\n");

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
  bool harness_stopped = false;

  std::ofstream stdout_file(task_dir / "stdout", std::ios::binary);
  std::ofstream stderr_file(task_dir / "stderr", std::ios::binary);
  *metadata->mutable_execution_start_timestamp() = ToTimestamp(absl::Now());
  auto exec = executor->Run(
      request,
      [&](OutputStream stream, absl::string_view data) {
        (stream == OutputStream::kStdout ? stdout_file : stderr_file).write(data.data(), static_cast<std::streamsize>(data.size()));
        send_log(stream == OutputStream::kStdout ? assay::v1::LogChunk::STDOUT : assay::v1::LogChunk::STDERR, data);
        if (*harness != nullptr && (*harness)->Feed(data, stream == OutputStream::kStdout ? 0 : 1) &&
            !harness_stopped) {
          harness_stopped = true;
          stop.Cancel();
        }
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
  if ((cgroup != nullptr && cgroup->oom_killed()) || exec->oom_killed) {
    out.set_failure(absl::StrCat("killed for exceeding its memory limit of ", FormatBytes(limits.memory_bytes),
                                 " (limits.memory)"));
    send_log(assay::v1::LogChunk::SYSTEM, absl::StrCat("[assay] ", out.failure(), "\n"));
  }
  if (*harness != nullptr) {
    const ConsoleHarness::Verdict verdict = (*harness)->Judge(exec->exit_code, exec->timed_out, harness_stopped);
    if (verdict.passed) {
      out.mutable_result()->set_exit_code(0);
      send_log(assay::v1::LogChunk::SYSTEM,
               absl::StrCat("[assay] qemu: passed, ", (*harness)->met(), " expectation(s) met\n"));
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
