#include "coordinator/notifier.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/task/task_states.h"
#include "coordinator/families.h"
#include "coordinator/job_store.h"
#include "coordinator/notification_rules.h"

namespace assay {

using assay::v1::Notification;

Notifier::Notifier(Database* db, NotifyConfig config, const Clock* clock, Sender sender)
    : db_(db), config_(std::move(config)), clock_(clock), sender_(std::move(sender)) {
  absl::MutexLock lock(&mu_);
  for (const auto& [name, target] : config_.targets) {
    auto lane = std::make_unique<Lane>();
    lane->target = target;
    lanes_.emplace(name, std::move(lane));
  }
}

Notifier::~Notifier() { Stop(); }

absl::Status Notifier::Load(const std::vector<assay::v1::Job>& recent_jobs) {
  std::vector<Notification> orphans;  // pending for a target no longer configured
  absl::MutexLock lock(&mu_);
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(CoordinatorFamily::kNotifications)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    Notification n;
    if (!n.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("a stored notification does not parse (key of ", it->key().size(), " bytes)"));
    }
    next_seq_ = std::max(next_seq_, n.seq() + 1);
    if (n.state() != Notification::PENDING) continue;
    auto lane = lanes_.find(n.target());
    if (lane == lanes_.end()) {
      orphans.push_back(std::move(n));
    } else {
      lane->second->queue.push_back(std::move(n));
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading the notifications");
  size_t pending = 0;
  for (auto& [name, lane] : lanes_) {
    std::sort(lane->queue.begin(), lane->queue.end(), [](const Notification& a, const Notification& b) { return a.seq() < b.seq(); });
    pending += lane->queue.size();
  }
  for (const auto& job : recent_jobs) {
    if (job.state() != assay::v1::JOB_SUCCEEDED && job.state() != assay::v1::JOB_FAILED) continue;
    last_failed_.emplace(absl::StrCat(job.name(), std::string(1, '\0'), BranchOf(job)), job.state() == assay::v1::JOB_FAILED);
  }
  for (Notification& n : orphans) {
    n.set_state(Notification::FAILED);
    n.set_error(absl::StrCat("no target '", n.target(), "' is configured on this coordinator any more"));
    n.set_finished_at_ms(UnixMillis(clock_->Now()));
    Save(n);
  }
  if (pending > 0) spdlog::info("{} notifications to send from before the restart", pending);
  return absl::OkStatus();
}

void Notifier::Start(JobLoader load_job) {
  load_job_ = std::move(load_job);
  absl::MutexLock lock(&mu_);
  for (auto& [name, lane] : lanes_) {
    Lane* l = lane.get();
    l->thread = std::thread([this, l] { Run(l); });
  }
}

void Notifier::Stop() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [name, lane] : lanes_) {
      lane->wake.SignalAll();
      if (lane->thread.joinable()) threads.push_back(std::move(lane->thread));
    }
  }
  for (std::thread& t : threads) t.join();
}

std::map<std::string, NotifyTarget::Kind> Notifier::Targets() const {
  std::map<std::string, NotifyTarget::Kind> out;
  for (const auto& [name, target] : config_.targets) out[name] = target.kind;
  return out;
}

void Notifier::OnJobStateLocked(const assay::v1::Job& job, assay::v1::JobState previous, GroupCommit::Change* change) {
  const std::string event = JobEvent(previous, job.state());
  if (event.empty()) return;
  absl::MutexLock lock(&mu_);
  bool recovered = false;
  if (event == "success" || event == "failure") {
    bool& failed = last_failed_[absl::StrCat(job.name(), std::string(1, '\0'), BranchOf(job))];
    recovered = event == "success" && failed;
    failed = event == "failure";
  }
  if (job.notify_size() == 0) return;
  auto number = ParseJobId(job.id());
  if (!number.ok()) return;
  const int64_t now = UnixMillis(clock_->Now());
  for (const assay::v1::NotifySpec& spec : job.notify()) {
    const std::string told = EventFor(spec, event, recovered);
    if (told.empty()) continue;
    Notification n;
    n.set_seq(next_seq_++);
    n.set_id(absl::StrCat(job.id(), "-", n.seq()));
    n.set_job_id(job.id());
    n.set_target(spec.to());
    n.set_event(told);
    n.set_created_at_ms(now);
    n.set_next_attempt_ms(now);
    auto lane = lanes_.find(spec.to());
    if (lane == lanes_.end()) {  // configured at submit, gone since (the coordinator restarted without it)
      n.set_state(Notification::FAILED);
      n.set_error(absl::StrCat("no target '", spec.to(), "' is configured on this coordinator any more"));
      n.set_finished_at_ms(now);
    } else {
      n.set_kind(KindName(lane->second->target.kind));
      change->after.push_back([this, n] { Queue(n); });
    }
    change->batch.Put(db_->cf(CoordinatorFamily::kNotifications), EncodeU64(*number) + EncodeU64(n.seq()),
                      n.SerializeAsString());
    change->sync = true;
  }
}

void Notifier::Queue(const Notification& n) {
  absl::MutexLock lock(&mu_);
  auto lane = lanes_.find(n.target());
  if (lane == lanes_.end()) return;
  lane->second->queue.push_back(n);
  lane->second->wake.Signal();
}

void Notifier::Run(Lane* lane) {
  while (true) {
    Notification n;
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_) {
        if (lane->queue.empty()) {
          lane->wake.Wait(&mu_);
          continue;
        }
        const absl::Duration wait = absl::FromUnixMillis(lane->queue.front().next_attempt_ms()) - clock_->Now();
        if (wait <= absl::ZeroDuration()) break;
        lane->wake.WaitWithTimeout(&mu_, wait);
      }
      if (stopping_) return;
      n = lane->queue.front();
    }
    Attempt(lane->target, &n);
    if (stopping_ && n.state() == Notification::PENDING) return;  // cut short by Stop: tried again at the next start
    Save(n);
    absl::MutexLock lock(&mu_);
    if (n.state() == Notification::PENDING) {
      lane->queue.front() = n;
      lane->stats.retries++;
    } else {
      lane->queue.pop_front();
      (n.state() == Notification::DELIVERED ? lane->stats.delivered : lane->stats.failed)++;
    }
  }
}

absl::Duration Notifier::Backoff(int attempts) const {
  absl::Duration d = config_.retry_initial;
  for (int i = 1; i < attempts && d < config_.retry_max; ++i) d *= 2;
  return std::min(d, config_.retry_max);
}

void Notifier::Attempt(const NotifyTarget& target, Notification* n) {
  n->set_attempts(n->attempts() + 1);
  DeliveryVerdict verdict = DeliveryVerdict::kRetry;
  n->set_http_status(0);
  auto job = load_job_(n->job_id());
  if (!job.ok()) {
    verdict = absl::IsNotFound(job.status()) ? DeliveryVerdict::kGiveUp : DeliveryVerdict::kRetry;
    n->set_error(absl::StrCat("reading the job: ", job.status().message()));
  } else if (auto request = BuildNotificationRequest(config_, target, *n, *job); !request.ok()) {
    verdict = DeliveryVerdict::kGiveUp;
    n->set_error(std::string(request.status().message()));
  } else if (auto response = sender_(*request, HttpOptions{config_.timeout, target.ca_file, &stopping_}); !response.ok()) {
    n->set_error(std::string(response.status().message()));
  } else {
    n->set_http_status(response->status);
    verdict = JudgeResponse(response->status);
    n->set_error(verdict == DeliveryVerdict::kDelivered
                     ? ""
                     : absl::StrCat("HTTP ", response->status, ": ", response->body.substr(0, 200)));
  }
  const absl::Time now = clock_->Now();
  if (verdict == DeliveryVerdict::kRetry && now - absl::FromUnixMillis(n->created_at_ms()) >= config_.give_up_after) {
    verdict = DeliveryVerdict::kGiveUp;
    n->set_error(absl::StrCat(n->error(), " (given up after ", absl::FormatDuration(config_.give_up_after), ")"));
  }
  switch (verdict) {
    case DeliveryVerdict::kDelivered:
      n->set_state(Notification::DELIVERED);
      n->set_finished_at_ms(UnixMillis(now));
      spdlog::info("notification {} ({} of job {}) delivered to {}", n->id(), n->event(), n->job_id(), n->target());
      break;
    case DeliveryVerdict::kGiveUp:
      n->set_state(Notification::FAILED);
      n->set_finished_at_ms(UnixMillis(now));
      spdlog::warn("notification {} to {} failed: {}", n->id(), n->target(), n->error());
      break;
    case DeliveryVerdict::kRetry:
      n->set_next_attempt_ms(UnixMillis(now + Backoff(n->attempts())));
      spdlog::warn("notification {} to {}: attempt {} failed ({}); trying again in {}", n->id(), n->target(),
                   n->attempts(), n->error(), absl::FormatDuration(Backoff(n->attempts())));
      break;
  }
}

void Notifier::Save(const Notification& n) {
  auto number = ParseJobId(n.job_id());
  if (!number.ok()) return;
  // No sync: losing this write to a machine crash only means the event is sent again (at least once).
  if (absl::Status s = db_->Put(CoordinatorFamily::kNotifications, EncodeU64(*number) + EncodeU64(n.seq()),
                                n.SerializeAsString(), /*sync=*/false);
      !s.ok()) {
    spdlog::warn("notification {}: its state was not written: {}", n.id(), std::string(s.message()));
  }
}

absl::StatusOr<std::vector<Notification>> Notifier::List(const std::string& job_id) const {
  auto number = ParseJobId(job_id);
  if (!number.ok()) return number.status();
  const std::string prefix = EncodeU64(*number);
  std::vector<Notification> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(CoordinatorFamily::kNotifications)));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    Notification n;
    if (n.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) out.push_back(std::move(n));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading the notifications");
  return out;
}

Notifier::Stats Notifier::GetStats() const {
  Stats s;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, lane] : lanes_) {
    Stats::Target t = lane->stats;
    t.pending = static_cast<int64_t>(lane->queue.size());
    s.targets[name] = t;
  }
  return s;
}

}  // namespace assay
