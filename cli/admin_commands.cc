// The operators' commands: workers, cordon / uncordon / drain, cache stats, health, web.
#include <iostream>

#include <grpcpp/client_context.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/render.h"
#include "assay/v1/dashboard.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace assay::cli {
namespace {

absl::StatusOr<assay::v1::ListWorkersResponse> ListWorkers(Client& client) {
  assay::v1::ListWorkersResponse response;
  absl::Status status = client.Call("ListWorkers", [&](grpc::ClientContext* c) {
    return client.admin->ListWorkers(c, assay::v1::ListWorkersRequest(), &response);
  });
  if (!status.ok()) return status;
  return response;
}

}  // namespace

int Workers(Client& client, bool json) {
  auto listed = ListWorkers(client);
  if (!listed.ok()) return ReportError(listed.status());
  const assay::v1::ListWorkersResponse& response = *listed;
  if (json) {
    std::cout << ToJson(response) << "\n";
    return kOk;
  }
  // One row a worker; its running tasks follow on lines of their own.
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  std::cout << absl::StrFormat("%-20s %-10s %-9s %-9s %-7s %-8s %-8s %-9s %s\n", "WORKER", "HOST", "LINK", "STATE",
                               "SLOTS", "EXECUTOR", "VERSION", "SEEN", "LABELS");
  for (const auto& w : response.workers()) {
    const char* link = !w.connected()    ? "gone"
                       : w.unresponsive() ? "silent"
                       : w.stopping()     ? "stopping"
                                          : "connected";
    std::cout << absl::StrFormat("%-20s %-10s %-9s %-9s %-7s %-8s %-8s %-9s %s\n", w.id(), w.hostname(), link,
                                 AdminStateName(w), absl::StrCat(w.busy(), "/", w.slots()),
                                 absl::StrJoin(w.executors(), ","), w.version().empty() ? "-" : w.version(),
                                 FormatSeconds(now_ms - w.last_seen_ms()) + " ago", absl::StrJoin(w.labels(), ","));
    for (const auto& task : w.running()) std::cout << "    running " << task << "\n";
  }
  return kOk;
}

std::string AdminStateName(const assay::v1::Worker& w) {
  switch (w.admin_state()) {
    case assay::v1::WORKER_CORDONED: return "cordoned";
    case assay::v1::WORKER_DRAINING: return w.drained() ? "drained" : "draining";
    default: return "active";
  }
}

int SetWorkerState(Client& client, const std::string& worker, assay::v1::WorkerAdminState state, bool wait) {
  assay::v1::SetWorkerStateRequest request;
  request.set_worker_id(worker);
  request.set_state(state);
  assay::v1::Worker response;
  absl::Status status = client.Call("SetWorkerState", [&](grpc::ClientContext* c) {
    return client.admin->SetWorkerState(c, request, &response);
  });
  if (!status.ok()) return ReportError(status);
  std::cout << "worker " << worker << " is " << AdminStateName(response);
  if (response.busy() > 0) std::cout << " (" << response.busy() << " task(s) running)";
  std::cout << "\n";
  if (!wait || state != assay::v1::WORKER_DRAINING) return kOk;
  // Waits for the running tasks to finish (they are not interrupted), checking twice a second.
  while (!response.drained()) {
    absl::SleepFor(absl::Milliseconds(500));
    auto list = ListWorkers(client);
    if (!list.ok()) return ReportError(list.status());
    bool found = false;
    for (const auto& w : list->workers()) {
      if (w.id() == worker) {
        response = w;
        found = true;
      }
    }
    if (!found || response.admin_state() != assay::v1::WORKER_DRAINING) {
      return ReportError(absl::AbortedError(absl::StrCat("worker ", worker, " is no longer being drained")));
    }
  }
  std::cout << "worker " << worker << " is drained\n";
  return kOk;
}

int CacheStats(Client& client, bool json) {
  assay::v1::CacheStats stats;
  absl::Status status = client.Call("GetCacheStats", [&](grpc::ClientContext* c) {
    return client.admin->GetCacheStats(c, assay::v1::GetCacheStatsRequest(), &stats);
  });
  if (!status.ok()) return ReportError(status);
  if (json) {
    std::cout << ToJson(stats) << "\n";
    return kOk;
  }
  std::cout << "blobs:          " << stats.blobs() << "\n"
            << "bytes:          " << stats.bytes() << "\n"
            << "budget:         " << (stats.budget_bytes() > 0 ? absl::StrCat(stats.budget_bytes()) : "unlimited") << "\n"
            << "action results: " << stats.action_results() << "\n"
            << "hits:           " << stats.ac_hits() << "\n"
            << "misses:         " << stats.ac_misses() << "\n"
            << "evictions:      " << stats.evicted_blobs() << " blobs, " << stats.evicted_bytes() << " bytes\n"
            << "blob reads:     " << stats.cas_reads() << "\n"
            << "blob writes:    " << stats.cas_writes() << "\n"
            << "blob bytes:     " << stats.cas_read_bytes() << " read, " << stats.cas_written_bytes()
            << " written through the coordinator\n";
  if (stats.direct_reads() + stats.direct_writes() > 0) {
    std::cout << "in the bucket:  " << stats.direct_read_bytes() << " bytes read (" << stats.direct_reads() << " blobs), "
              << stats.direct_written_bytes() << " written (" << stats.direct_writes()
              << " blobs) by clients with requests the coordinator signed\n";
  }
  return kOk;
}

int Health(Client& client) {
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  absl::Status status = client.Call("Health.Check", [&](grpc::ClientContext* c) {
    return grpc::health::v1::Health::NewStub(client.channel)->Check(c, request, &response);
  });
  if (!status.ok()) return ReportError(status);
  std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()) << "\n";
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kOk : kUnavailable;
}

int Web(Client& client, const std::string& coordinator) {
  assay::v1::DashboardInfo info;
  absl::Status status = client.Call("Dashboard.GetDashboard", [&](grpc::ClientContext* c) {
    return assay::v1::Dashboard::NewStub(client.channel)->GetDashboard(c, {}, &info);
  });
  if (!status.ok()) return ReportError(status);
  std::cout << DashboardUrl(info.url(), coordinator) << "\n";
  return kOk;
}

std::string DashboardUrl(const std::string& url, const std::string& coordinator) {
  // A listener on every address names none: the coordinator's host as this CLI reaches it does.
  for (const std::string wildcard : {"//0.0.0.0:", "//[::]:", "//:"}) {
    const size_t at = url.find(wildcard);
    if (at == std::string::npos) continue;
    const std::string host = coordinator.substr(0, coordinator.rfind(':'));
    return absl::StrCat(url.substr(0, at + 2), host, ":", url.substr(at + wildcard.size()));
  }
  return url;
}

}  // namespace assay::cli
