#include "worker/agent.h"

#include <optional>

#include <grpcpp/create_channel.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/base/clock.h"
#include "common/base/file_util.h"
#include "common/base/status_util.h"
#include "worker/heartbeats.h"
#include "worker/host_facts.h"
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

WorkerAgent::Options WorkerAgent::Options::WithDefaults() const {
  Options filled = *this;
  if (filled.worker_id.empty()) filled.worker_id = absl::StrCat(Hostname(), "-", RandomHex(3));
  if (filled.cache_dir.empty()) filled.cache_dir = (fs::path(filled.work_dir) / "cache").string();
  return filled;
}

WorkerAgent::WorkerAgent(Options options, WorkerParts parts)
    : options_(options.WithDefaults()),
      cas_(std::move(parts.cas)),
      cache_db_(std::move(parts.cache_db)),
      cache_(std::move(parts.cache)),
      local_cache_(parts.local_cache != nullptr ? parts.local_cache : cache_.store()),
      executor_(std::move(parts.executor)),
      input_links_(std::move(parts.input_links)),
      spare_dirs_(std::move(parts.spare_dirs)),
      inputs_(cas_.get(), local_cache_, options_.tree_limits),
      uploader_(cas_.get(), &inputs_),
      caches_(cas_.get(), &inputs_, std::filesystem::path(options_.work_dir) / "cache-trees", options_.cache_bytes / 4),
      gate_(options_.slots),
      work_disk_(options_.work_dir, options_.min_free_disk, RealClock::Get()) {
  inputs_.set_links(input_links_.get());
  // Folders are kept for later tasks where inputs are linked and folders recycled (the sandbox): two
  // per slot (kept_folders.h).
  if (input_links_ != nullptr && spare_dirs_ != nullptr) {
    kept_folders_ = std::make_unique<KeptFolders>(input_links_.get(), spare_dirs_.get(),
                                                  2 * static_cast<size_t>(std::max(options_.slots, 1)));
    inputs_.set_kept_folders(kept_folders_.get());
  }
  labels_ = DetectLabels(executor_->name());
  for (const auto& l : options_.labels) labels_.push_back(l);
  for (const auto& l : parts.executor_labels) labels_.push_back(l);
  channel_args_ = WorkerChannelArgs();
}

WorkerAgent::~WorkerAgent() { Stop(); }

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

WorkerMessage WorkerAgent::Hello() const {
  WorkerMessage hello;
  auto* h = hello.mutable_hello();
  h->set_worker_id(options_.worker_id);
  h->set_hostname(Hostname());
  for (const auto& l : labels_) h->add_labels(l);
  h->set_slots(options_.slots);
  h->set_prefetch(options_.prefetch);
  h->add_executors(executor_->name());
  h->set_version("0.1.0");
  return hello;
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
  LinkStream link(stub.get(), &context, options_.live_log_queue_bytes, options_.live_log_batch);
  link.Send(Hello());

  std::unique_ptr<Heartbeats> heartbeats;  // set once welcomed
  while (std::optional<CoordinatorMessage> next = link.Next()) {
    switch (next->kind_case()) {
      case CoordinatorMessage::kWelcome:
        heartbeats = OnWelcome(&link, next->welcome());
        break;
      case CoordinatorMessage::kAssign:
        OnAssign(&link, next->assign());
        break;
      case CoordinatorMessage::kCancel:
        OnCancel(next->cancel());
        break;
      default:
        break;
    }
  }
  const bool welcomed = heartbeats != nullptr;
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(+[](bool* closing) { return !*closing; }, &closing_));
    link_ = nullptr;
  }
  LogSessionEnd(link.Finish(), welcomed, failures);
  heartbeats.reset();
  // Tasks of a dead session belong to nobody now: the coordinator queues them again.
  std::vector<RunningTask> ended = tasks_.CancelAndTakeAll();
  gate_.Wake();
  for (RunningTask& task : ended) task.thread.join();
  absl::MutexLock lock(&mu_);
  context_ = nullptr;
  return welcomed;
}

std::unique_ptr<Heartbeats> WorkerAgent::OnWelcome(LinkStream* link, const assay::v1::Welcome& welcome) {
  const absl::Duration interval = absl::Milliseconds(std::max<int64_t>(welcome.heartbeat_interval_ms(), 50));
  spdlog::info("worker {} connected to {} ({} slots)", options_.worker_id, options_.coordinator, options_.slots);
  {
    absl::MutexLock lock(&mu_);
    link_ = link;
    if (draining_) link->Send(StoppingMessage(drain_deadline_));
  }
  return std::make_unique<Heartbeats>(link, &tasks_, interval);
}

void WorkerAgent::OnAssign(LinkStream* link, const assay::v1::Assignment& assignment) {
  auto cancel = std::make_shared<CancelToken>();
  {
    absl::MutexLock counts(&mu_);
    ++running_;  // until its result is sent (RunTask)
  }
  // Threads of tasks that ended (and an older attempt of this task, cancelled) are joined first.
  std::vector<RunningTask> finished = tasks_.TakeDoneAndReplaced(assignment.lease());
  gate_.Wake();
  for (RunningTask& old : finished) old.thread.join();
  tasks_.Add(assignment.lease(), cancel, [&](RunningTask* task) {
    task->ticket = gate_.Join();
    task->thread = std::thread(&WorkerAgent::RunTask, this, link, assignment, cancel, task->ticket);
  });
}

void WorkerAgent::OnCancel(const assay::v1::CancelTask& cancel) {
  const auto& lease = cancel.lease();
  const std::string name = absl::StrCat(lease.job_id(), "/", lease.task_id());
  // Only the attempt (and lease) it names: a cancel that arrives after a newer attempt's assignment
  // is for the older one, which that assignment already ended.
  tasks_.WithTask(lease, [&](RunningTask* task) {
    if (cancel.if_not_started()) {
      // Asked back unstarted: only a task still waiting for a slot goes (RunTask says so).
      if (gate_.Withdraw(task->ticket)) spdlog::info("handing back {}: {}", name, cancel.reason());
    } else {
      spdlog::info("cancelling {}: {}", name, cancel.reason());
      task->cancel->Cancel();
      gate_.Wake();
    }
  });
}

void WorkerAgent::LogSessionEnd(const grpc::Status& status, bool welcomed, int failures) {
  if (!welcomed) {
    // The first failure of a run, then at 2, 4, 8, ... tries: a dead coordinator does not flood the log.
    const int tries = failures + 1;
    if ((tries & (tries - 1)) == 0) {
      spdlog::warn("worker {}: cannot connect to {} ({} {}): {}", options_.worker_id, options_.coordinator, tries,
                   tries == 1 ? "try" : "tries", status.error_message().empty() ? "no answer" : status.error_message());
    }
    return;
  }
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

}  // namespace assay
