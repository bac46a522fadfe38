#include "coordinator/notify_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/base/file_util.h"

namespace assay {

const char* KindName(NotifyTarget::Kind kind) {
  switch (kind) {
    case NotifyTarget::Kind::kWebhook: return "webhook";
    case NotifyTarget::Kind::kGitHub: return "github";
    case NotifyTarget::Kind::kGitLab: return "gitlab";
  }
  return "webhook";
}

namespace {

class ConfigParser {
 public:
  ConfigParser(std::string file, std::string base_dir) : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

  absl::StatusOr<NotifyConfig> Parse(const YAML::Node& root) const {
    if (!root.IsMap()) return absl::InvalidArgumentError(absl::StrCat(file_, ": must be a mapping with 'targets'"));
    if (absl::Status s = CheckKeys(root, "the file", {"targets", "job_url", "retry", "timeout"}); !s.ok()) return s;
    NotifyConfig config;
    if (root["job_url"]) {
      auto url = Url(root["job_url"], "job_url");
      if (!url.ok()) return url.status();
      config.job_url = *url;
    }
    if (root["timeout"]) {
      auto d = Duration(root["timeout"], "timeout");
      if (!d.ok()) return d.status();
      config.timeout = *d;
    }
    if (const YAML::Node retry = root["retry"]) {
      if (!retry.IsMap()) return Error(retry, "retry must be a mapping like {initial: 1s, max: 10m, give_up_after: 24h}");
      if (absl::Status s = CheckKeys(retry, "retry", {"initial", "max", "give_up_after"}); !s.ok()) return s;
      for (auto [key, field] : {std::pair{"initial", &config.retry_initial}, std::pair{"max", &config.retry_max},
                                std::pair{"give_up_after", &config.give_up_after}}) {
        if (!retry[key]) continue;
        auto d = Duration(retry[key], absl::StrCat("retry.", key));
        if (!d.ok()) return d.status();
        *field = *d;
      }
      if (config.retry_max < config.retry_initial) return Error(retry, "retry.max is shorter than retry.initial");
    }
    const YAML::Node targets = root["targets"];
    if (!targets) return absl::InvalidArgumentError(absl::StrCat(file_, ": has no 'targets'"));
    if (!targets.IsMap()) return Error(targets, "targets must be a mapping of names to targets");
    for (const auto& kv : targets) {
      auto target = Target(kv.first.Scalar(), kv.second);
      if (!target.ok()) return target.status();
      config.targets[target->name] = std::move(*target);
    }
    return config;
  }

 private:
  absl::Status Error(const YAML::Node& node, absl::string_view message) const {
    return absl::InvalidArgumentError(
        absl::StrCat(file_, ":", node.Mark().line + 1, ":", node.Mark().column + 1, ": ", message));
  }

  absl::Status CheckKeys(const YAML::Node& node, absl::string_view what, std::set<std::string> allowed) const {
    for (const auto& kv : node) {
      if (!allowed.contains(kv.first.Scalar())) {
        return Error(kv.first, absl::StrCat("unknown key '", kv.first.Scalar(), "' in ", what, " (known: ",
                                            absl::StrJoin(allowed, ", "), ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Scalar(const YAML::Node& node, absl::string_view what) const {
    if (!node.IsScalar() || node.Scalar().empty()) return Error(node, absl::StrCat(what, " must be a non-empty string"));
    return node.Scalar();
  }

  absl::StatusOr<std::string> Url(const YAML::Node& node, absl::string_view what) const {
    auto url = Scalar(node, what);
    if (!url.ok()) return url.status();
    if (!absl::StartsWith(*url, "http://") && !absl::StartsWith(*url, "https://")) {
      return Error(node, absl::StrCat(what, " '", *url, "' must start with https:// or http://"));
    }
    return url;
  }

  absl::StatusOr<absl::Duration> Duration(const YAML::Node& node, absl::string_view what) const {
    absl::Duration d;
    if (!node.IsScalar() || !absl::ParseDuration(node.Scalar(), &d) || d <= absl::ZeroDuration()) {
      return Error(node, absl::StrCat(what, " must be a positive duration like 500ms, 30s or 10m"));
    }
    return d;
  }

  // The secret in `key`'s file, its trailing whitespace dropped.
  absl::StatusOr<std::string> Secret(const YAML::Node& node, absl::string_view what) const {
    auto path = Scalar(node, what);
    if (!path.ok()) return path.status();
    std::filesystem::path file(*path);
    if (file.is_relative()) file = std::filesystem::path(base_dir_) / file;
    auto text = ReadFile(file);
    if (!text.ok()) return Error(node, absl::StrCat(what, ": cannot read '", file.string(), "': ", text.status().message()));
    std::string secret(absl::StripTrailingAsciiWhitespace(*text));
    if (secret.empty()) return Error(node, absl::StrCat(what, ": '", file.string(), "' is empty"));
    return secret;
  }

  absl::StatusOr<NotifyTarget> Target(const std::string& name, const YAML::Node& node) const {
    const std::string what = absl::StrCat("targets.", name);
    if (name.empty() || name.size() > 64 || !std::all_of(name.begin(), name.end(), [](char c) {
          return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
        })) {
      return Error(node, absl::StrCat("target name '", name, "' may hold only letters, digits, '-', '_' and '.'"));
    }
    if (!node.IsMap()) return Error(node, absl::StrCat(what, " must be a mapping with kind and url"));
    if (absl::Status s = CheckKeys(node, what, {"kind", "url", "secret_file", "token_file", "context", "ca_file"});
        !s.ok()) {
      return s;
    }
    NotifyTarget target;
    target.name = name;
    if (!node["kind"]) return Error(node, absl::StrCat(what, " has no 'kind' (webhook, github or gitlab)"));
    auto kind = Scalar(node["kind"], absl::StrCat(what, ".kind"));
    if (!kind.ok()) return kind.status();
    if (*kind == "webhook") {
      target.kind = NotifyTarget::Kind::kWebhook;
    } else if (*kind == "github") {
      target.kind = NotifyTarget::Kind::kGitHub;
    } else if (*kind == "gitlab") {
      target.kind = NotifyTarget::Kind::kGitLab;
    } else {
      return Error(node["kind"], absl::StrCat(what, ".kind '", *kind, "' is not webhook, github or gitlab"));
    }
    if (node["url"]) {
      auto url = Url(node["url"], absl::StrCat(what, ".url"));
      if (!url.ok()) return url.status();
      target.url = std::string(absl::StripSuffix(*url, "/"));
    } else if (target.kind == NotifyTarget::Kind::kGitHub) {
      target.url = "https://api.github.com";
    } else {
      return Error(node, absl::StrCat(what, " has no 'url'"));
    }
    const char* secret_key = target.kind == NotifyTarget::Kind::kWebhook ? "secret_file" : "token_file";
    const char* other_key = target.kind == NotifyTarget::Kind::kWebhook ? "token_file" : "secret_file";
    if (node[other_key]) {
      return Error(node[other_key], absl::StrCat(what, ": a ", *kind, " target takes '", secret_key, "', not '", other_key, "'"));
    }
    if (!node[secret_key]) return Error(node, absl::StrCat(what, " has no '", secret_key, "'"));
    auto secret = Secret(node[secret_key], absl::StrCat(what, ".", secret_key));
    if (!secret.ok()) return secret.status();
    target.secret = std::move(*secret);
    target.context = "assay/{pipeline}";
    if (node["context"]) {
      auto context = Scalar(node["context"], absl::StrCat(what, ".context"));
      if (!context.ok()) return context.status();
      target.context = *context;
    }
    if (node["ca_file"]) {
      auto ca = Scalar(node["ca_file"], absl::StrCat(what, ".ca_file"));
      if (!ca.ok()) return ca.status();
      std::filesystem::path file(*ca);
      target.ca_file = file.is_relative() ? (std::filesystem::path(base_dir_) / file).string() : file.string();
    }
    return target;
  }

  std::string file_, base_dir_;
};

}  // namespace

absl::StatusOr<NotifyConfig> ParseNotifyConfig(absl::string_view text, const std::string& file_name,
                                               const std::string& base_dir) {
  try {
    return ConfigParser(file_name, base_dir).Parse(YAML::Load(std::string(text)));
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) return absl::InvalidArgumentError(absl::StrCat(file_name, ": invalid YAML: ", e.msg));
    return absl::InvalidArgumentError(
        absl::StrCat(file_name, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML: ", e.msg));
  }
}

absl::StatusOr<NotifyConfig> LoadNotifyConfig(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat("--notify-config: cannot read '", path, "': ",
                                                                 text.status().message()));
  return ParseNotifyConfig(*text, path, std::filesystem::path(path).parent_path().string());
}

}  // namespace assay
