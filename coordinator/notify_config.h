// The coordinator's notification targets (--notify-config FILE, docs/operations.md "Notifications"):
// named webhooks and commit-status endpoints with their secrets, chosen by name in pipelines
// (`notify:`). Only the admin gives addresses: a submitter can name a target, never a URL.
//
//   job_url: https://assay.example.com/jobs/{job}        # the link in statuses and webhook bodies
//   retry: {initial: 1s, max: 10m, give_up_after: 24h}    # backoff between attempts (defaults shown)
//   targets:
//     team-hook: {kind: webhook, url: https://hooks.example.com/assay, secret_file: team-hook.secret}
//     github:    {kind: github, token_file: /etc/assay/github-token}   # url: https://api.github.com
//     gitlab:    {kind: gitlab, url: https://gitlab.example.com/api/v4, token_file: gitlab-token}
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace assay {

struct NotifyTarget {
  enum class Kind { kWebhook, kGitHub, kGitLab };
  std::string name;
  Kind kind = Kind::kWebhook;
  std::string url;      // the webhook's address, or the API's base (GitHub: https://api.github.com)
  std::string secret;   // a webhook's HMAC key, or the API token (read from secret_file / token_file)
  std::string context;  // a commit status's context ("{pipeline}" replaced); default "assay/{pipeline}"
  std::string ca_file;  // PEM bundle to verify the server with ("": the system's)
};

struct NotifyConfig {
  std::map<std::string, NotifyTarget> targets;
  std::string job_url;  // "{job}" replaced by the job's id; "": no link
  absl::Duration retry_initial = absl::Seconds(1);
  absl::Duration retry_max = absl::Minutes(10);
  absl::Duration give_up_after = absl::Hours(24);
  absl::Duration timeout = absl::Seconds(10);  // one attempt, connecting included
};

// "webhook", "github", "gitlab".
const char* KindName(NotifyTarget::Kind kind);
// A commit-status target needs the job's `commit` and `repo` labels.
inline bool PostsCommitStatus(NotifyTarget::Kind kind) { return kind != NotifyTarget::Kind::kWebhook; }

// Parses the file's text; relative secret files are read from `base_dir`. Errors name the file, the
// line and the key.
absl::StatusOr<NotifyConfig> ParseNotifyConfig(absl::string_view text, const std::string& file_name,
                                               const std::string& base_dir);
absl::StatusOr<NotifyConfig> LoadNotifyConfig(const std::string& path);

}  // namespace assay
