// What the coordinator tells notification targets (docs/pipeline.md "Notifications"): which events
// a job's state change raises for which targets, and the HTTP request each becomes. Pure functions:
// the Notifier persists, delivers and retries them.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "assay/v1/job.pb.h"
#include "assay/v1/jobs.pb.h"
#include "coordinator/http_client.h"
#include "coordinator/notify_config.h"

namespace assay {

// The event a job's move from `previous` to its state is ("started", "success", "failure",
// "cancelled"), or "" when it is none.
std::string JobEvent(assay::v1::JobState previous, assay::v1::JobState now);

// What a target named in `spec` hears of `event`: a success that follows a failure of the same
// pipeline and branch (`recovered`) is told as "recovered" to a target that asked for it, else as
// "success"; "" when the target did not ask for it.
std::string EventFor(const assay::v1::NotifySpec& spec, const std::string& event, bool recovered);

// "sha256=" and the hex HMAC-SHA256 of `body` keyed with `secret` (the X-Assay-Signature-256 header).
std::string SignBody(const std::string& secret, const std::string& body);

// The job's link ("" when job_url is not configured).
std::string JobUrl(const NotifyConfig& config, const std::string& job_id);

// Checks the labels a commit-status target needs: `commit` (7-64 hex digits) and `repo` (OWNER/REPO
// for GitHub; GROUP/.../PROJECT for GitLab), each made of safe path segments.
absl::Status CheckStatusLabels(const assay::v1::Job& job, NotifyTarget::Kind kind);

// The request telling `target` of `n`, about `job` (with its tasks).
absl::StatusOr<HttpRequest> BuildNotificationRequest(const NotifyConfig& config, const NotifyTarget& target,
                                                     const assay::v1::Notification& n, const assay::v1::Job& job);

// Whether an answer means delivered, try again later, or give up (other 4xx: the request is wrong).
enum class DeliveryVerdict { kDelivered, kRetry, kGiveUp };
DeliveryVerdict JudgeResponse(int http_status);

}  // namespace assay
