// `assay notifications JOB`: what the job's `notify:` sent to which target, and how it went
// (docs/pipeline.md, "Notifications").
#include <algorithm>
#include <iostream>

#include <grpcpp/client_context.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/render.h"

namespace assay::cli {

int Notifications(Client& client, const std::string& job_id, bool json) {
  assay::v1::ListNotificationsRequest request;
  request.set_job_id(job_id);
  assay::v1::ListNotificationsResponse response;
  absl::Status status = client.Call("ListNotifications", [&](grpc::ClientContext* c) {
    return client.jobs->ListNotifications(c, request, &response);
  });
  if (!status.ok()) return ReportError(status);
  if (json) {
    std::cout << ToJson(response) << "\n";
    return kOk;
  }
  if (response.notifications().empty()) {
    std::cout << "job " << job_id << " has sent no notifications (its pipeline has no `notify:`, or no event it asked for has happened)\n";
    return kOk;
  }
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  std::cout << absl::StrFormat("%-10s %-16s %-8s %-10s %-10s %8s  %s\n", "ID", "TARGET", "KIND", "EVENT", "STATE",
                               "ATTEMPTS", "DETAIL");
  for (const auto& n : response.notifications()) {
    std::string detail;
    if (n.state() == assay::v1::Notification::DELIVERED) {
      detail = absl::StrCat("HTTP ", n.http_status(), ", ", FormatSeconds(now_ms - n.finished_at_ms()), " ago");
    } else if (n.state() == assay::v1::Notification::PENDING) {
      detail = n.attempts() == 0 ? "sending"
                                 : absl::StrCat("next try in ", FormatSeconds(std::max<int64_t>(0, n.next_attempt_ms() - now_ms)),
                                                ": ", n.error());
    } else {
      detail = n.error();
    }
    std::cout << absl::StrFormat("%-10s %-16s %-8s %-10s %-10s %8d  %s\n", n.id(), n.target(), n.kind(), n.event(),
                                 absl::AsciiStrToLower(assay::v1::Notification::State_Name(n.state())), n.attempts(),
                                 detail);
  }
  return kOk;
}

}  // namespace assay::cli
