#include "worker/agent.h"

#include <optional>

#include <grpcpp/create_channel.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "common/status_util.h"
#include "worker/link_stream.h"

namespace assay {
namespace fs = std::filesystem;
using assay::v1::CoordinatorMessage;
using assay::v1::WorkerMessage;

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
  // A cache: its writes are not synced (a lost blob is fetched again).
  DiskReserve::Options reserve;
  reserve.store = "worker cache";
  reserve.min_free = options->min_free_disk;
  auto stack = db.ok() ? MakeBlobStoreStack(db->get(), RealClock::Get(),
                                            EvictingBlobStore::Options{options->cache_bytes, 0.95, 0.8},
                                            /*durable=*/false, &reserve)
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
      gate_(options_.slots),
      work_disk_(options_.work_dir, options_.min_free_disk, RealClock::Get()) {
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
  LinkStream link(stub.get(), &context, options_.live_log_queue_bytes);

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

}  // namespace assay
