#include "coordinator/dispatcher.h"

#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "absl/strings/str_join.h"

namespace assay {

Dispatcher::Dispatcher(const Clock* clock, absl::Duration lease_ttl, BlobPinner* pinner)
    : clock_(clock), pinner_(pinner), scheduler_(clock, lease_ttl) {}

Dispatcher::~Dispatcher() {
  for (auto& [key, action] : actions_) {
    if (pinner_ != nullptr && !action.pins.empty()) pinner_->Unpin(action.pins);
  }
}

std::vector<Lease> Dispatcher::Connect(const assay::v1::WorkerHello& hello, std::shared_ptr<WorkerSession> session) {
  std::vector<Lease> displaced;
  auto existing = workers_.find(hello.worker_id());
  if (existing != workers_.end() && existing->second.connected && existing->second.session) {
    // The same worker reconnecting before its old stream noticed it was gone: the new one wins.
    spdlog::warn("worker {} connected again; dropping its previous session", hello.worker_id());
    existing->second.session->Close();
    displaced = scheduler_.RemoveWorker(hello.worker_id());
  }
  WorkerState& w = workers_[hello.worker_id()];
  w.hello = hello;
  w.session = std::move(session);
  w.connected = true;
  w.stopping = false;
  w.unresponsive = false;
  w.host_problem = false;
  w.connected_at_ms = w.last_seen_ms = UnixMillis(clock_->Now());
  std::vector<std::string> labels(hello.labels().begin(), hello.labels().end());
  scheduler_.AddWorker(hello.worker_id(), labels, hello.slots(), hello.prefetch());
  UpdateEligibility(hello.worker_id());
  spdlog::info("worker {} connected from {} with {} slots (prefetch {}), labels [{}]", hello.worker_id(),
               hello.hostname(), hello.slots(), hello.prefetch(), absl::StrJoin(labels, ", "));
  return displaced;
}

bool Dispatcher::Disconnect(const std::shared_ptr<WorkerSession>& session, std::vector<Lease>* lost) {
  auto it = workers_.find(session->worker_id());
  if (it == workers_.end() || it->second.session != session) return false;  // already replaced
  it->second.connected = false;
  it->second.session.reset();
  it->second.last_seen_ms = UnixMillis(clock_->Now());
  spdlog::info("worker {} disconnected", session->worker_id());
  *lost = scheduler_.RemoveWorker(session->worker_id());
  return true;
}

bool Dispatcher::Heartbeat(const std::string& worker, const std::vector<std::pair<TaskKey, std::string>>& leases) {
  bool revived = false;
  auto it = workers_.find(worker);
  if (it != workers_.end()) {
    it->second.last_seen_ms = UnixMillis(clock_->Now());
    if (it->second.unresponsive) {
      spdlog::info("worker {} is heard from again", worker);
      it->second.unresponsive = false;
      UpdateEligibility(worker);
      revived = true;
    }
    if (it->second.host_problem) {
      it->second.host_problem = false;
      UpdateEligibility(worker);
      revived = true;
    }
  }
  scheduler_.Renew(worker, leases);
  return revived;
}

std::shared_ptr<WorkerSession> Dispatcher::SessionOf(const std::string& worker) const {
  auto it = workers_.find(worker);
  return it == workers_.end() ? nullptr : it->second.session;
}

void Dispatcher::Queue(TaskKey task, std::vector<std::string> required_labels, ReadyAction action,
                       int64_t expected_ms, std::string preferred_worker) {
  Forget(task);  // a task is queued once; should it come back, its old pins must not leak
  actions_[task] = std::move(action);
  scheduler_.Enqueue(task, std::move(required_labels), expected_ms, std::move(preferred_worker));
}

void Dispatcher::Requeue(TaskKey task, std::vector<std::string> required_labels, int64_t expected_ms) {
  scheduler_.Enqueue(task, std::move(required_labels), expected_ms);
}

void Dispatcher::Forget(TaskKey task) {
  auto it = actions_.find(task);
  if (it == actions_.end()) return;
  if (pinner_ != nullptr && !it->second.pins.empty()) pinner_->Unpin(it->second.pins);
  actions_.erase(it);
}

std::vector<Dispatcher::Grant> Dispatcher::Dispatch() {
  std::vector<Grant> grants;
  for (Lease& lease : scheduler_.Dispatch()) {
    Grant grant;
    grant.session = SessionOf(lease.worker);
    auto action = actions_.find(lease.task);
    grant.action = action == actions_.end() ? nullptr : &action->second;
    grant.lease = std::move(lease);
    grants.push_back(std::move(grant));
  }
  return grants;
}

std::string Dispatcher::WhyUnschedulable(const std::vector<std::string>& labels, absl::Duration grace) const {
  const int64_t seen_after = UnixMillis(clock_->Now() - grace);
  std::vector<std::pair<std::vector<std::string>, std::string>> closest;  // missing labels, worker
  std::set<std::string> missing_everywhere(labels.begin(), labels.end());
  for (const auto& [id, w] : workers_) {
    if (!w.connected && w.last_seen_ms < seen_after) continue;
    const std::vector<std::string> offered(w.hello.labels().begin(), w.hello.labels().end());
    if (w.hello.slots() > 0 && LabelsMatch(labels, offered)) return "";
    std::vector<std::string> missing;
    for (const std::string& label : labels) {
      if (LabelsMatch({label}, offered)) {
        missing_everywhere.erase(label);
      } else {
        missing.push_back(label);
      }
    }
    closest.emplace_back(std::move(missing), id);
  }
  if (closest.empty()) {
    return absl::StrCat("no worker is connected or was seen in the last ", absl::FormatDuration(grace),
                        " (needed labels: ", labels.empty() ? "none" : absl::StrJoin(labels, ", "), ")");
  }
  std::sort(closest.begin(), closest.end(), [](const auto& a, const auto& b) {
    return a.first.size() != b.first.size() ? a.first.size() < b.first.size() : a.second < b.second;
  });
  std::vector<std::string> nearest;
  for (size_t i = 0; i < closest.size() && i < 3; ++i) {
    nearest.push_back(absl::StrCat(closest[i].second, " (lacks ",
                                   closest[i].first.empty() ? "free slots" : absl::StrJoin(closest[i].first, ", "),
                                   ")"));
  }
  return absl::StrCat("no worker has the labels ",
                      absl::StrJoin(missing_everywhere.empty() ? std::set<std::string>(labels.begin(), labels.end())
                                                               : missing_everywhere,
                                    ", "),
                      "; closest: ", absl::StrJoin(nearest, ", "));
}

std::vector<std::pair<TaskKey, std::string>> Dispatcher::TakeUnschedulable(absl::Duration grace) {
  std::map<std::vector<std::string>, std::string> why;  // one answer per label set
  auto satisfiable = [&](const std::vector<std::string>& labels) {
    auto it = why.find(labels);
    if (it == why.end()) it = why.emplace(labels, WhyUnschedulable(labels, grace)).first;
    return it->second.empty();
  };
  std::vector<std::pair<TaskKey, std::string>> out;
  for (auto& [task, labels] : scheduler_.TakeUnschedulable(clock_->Now() - grace, satisfiable)) {
    out.emplace_back(task, why[labels]);
  }
  return out;
}

void Dispatcher::SetStopping(const std::string& worker) {
  auto it = workers_.find(worker);
  if (it == workers_.end() || !it->second.connected) return;
  it->second.stopping = true;
  UpdateEligibility(worker);
}

void Dispatcher::SetUnresponsive(const std::string& worker) {
  auto it = workers_.find(worker);
  if (it == workers_.end() || !it->second.connected || it->second.unresponsive) return;
  spdlog::warn("worker {} missed its heartbeats: no new tasks for it until it is heard from", worker);
  it->second.unresponsive = true;
  UpdateEligibility(worker);
}

void Dispatcher::SetHostProblem(const std::string& worker) {
  auto it = workers_.find(worker);
  if (it == workers_.end() || !it->second.connected) return;
  it->second.host_problem = true;
  UpdateEligibility(worker);
}

void Dispatcher::SetAdminState(const std::string& worker, assay::v1::WorkerAdminState state) {
  if (state == assay::v1::WORKER_ACTIVE) {
    admin_states_.erase(worker);
  } else {
    admin_states_[worker] = state;
  }
  UpdateEligibility(worker);
}

void Dispatcher::UpdateEligibility(const std::string& worker) {
  auto it = workers_.find(worker);
  const bool held = it != workers_.end() && (it->second.stopping || it->second.unresponsive || it->second.host_problem);
  scheduler_.SetEligible(worker, !held && AdminState(worker) == assay::v1::WORKER_ACTIVE);
}

}  // namespace assay
