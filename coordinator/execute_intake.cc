#include "coordinator/execute_intake.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/digest/resource_name.h"
#include "common/tree/tree_validator.h"
#include "google/rpc/error_details.pb.h"

namespace assay {
namespace {

constexpr size_t kMaxNamedMissing = 5;  // in the message; the payload names every one

absl::StatusOr<Digest> ParseDigest(const reapi::Digest& proto, absl::string_view field) {
  auto digest = Digest::FromProto(proto);
  if (!digest.ok()) return absl::InvalidArgumentError(absl::StrCat(field, ": ", digest.status().message()));
  return digest;
}

// Reads a message the client uploaded; a blob that is not there is a MISSING violation.
template <typename Message>
absl::StatusOr<Message> LoadMessage(BlobStore& blobs, const Digest& digest, absl::string_view what) {
  auto bytes = blobs.Get(digest);
  if (absl::IsNotFound(bytes.status())) return MissingBlobsError({digest}, what);
  if (!bytes.ok()) return bytes.status();
  Message message;
  if (!message.ParseFromString(*bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("the ", what, " ", digest.ToString(), " does not parse as a ",
                                                   Message::descriptor()->name()));
  }
  return message;
}

// The properties as labels. Names starting "assay-" are the farm's own settings (containers, the
// console harness, limits), which an Execute may not set: refused, so a client cannot open a
// container's network or judge a console.
absl::StatusOr<std::vector<std::string>> Labels(const reapi::Platform& platform) {
  std::vector<std::string> labels;
  for (const auto& p : platform.properties()) {
    if (p.name().empty()) return absl::InvalidArgumentError("a platform property has an empty name");
    if (absl::StartsWith(p.name(), "assay-")) {
      return absl::InvalidArgumentError(absl::StrCat("platform property '", p.name(),
                                                     "' is reserved for the farm's pipelines; use exec properties "
                                                     "that match worker labels (docs/bazel.md)"));
    }
    labels.push_back(p.value().empty() ? p.name() : absl::StrCat(p.name(), "=", p.value()));
  }
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  return labels;
}

}  // namespace

absl::Status MissingBlobsError(const std::vector<Digest>& missing, absl::string_view what, absl::string_view then) {
  google::rpc::PreconditionFailure failure;
  std::vector<std::string> named;
  for (const Digest& d : missing) {
    auto* v = failure.add_violations();
    v->set_type("MISSING");
    v->set_subject(absl::StrCat("blobs/", d.ToString()));
    if (named.size() < kMaxNamedMissing) named.push_back(d.ToString());
  }
  absl::Status status = absl::FailedPreconditionError(absl::StrCat(
      missing.size(), " blob(s) of the ", what, " missing from the CAS: ", absl::StrJoin(named, ", "),
      missing.size() > named.size() ? ", ..." : "", " (", then, ")"));
  status.SetPayload(kPreconditionFailureType, absl::Cord(failure.SerializeAsString()));
  return status;
}

absl::StatusOr<RemoteAction> ExecuteIntake::Accept(const reapi::ExecuteRequest& request,
                                                   const reapi::RequestMetadata& metadata) const {
  if (absl::Status s = CheckInstanceName(request.instance_name()); !s.ok()) return s;
  RemoteAction out;
  out.instance_name = request.instance_name();
  auto action_digest = ParseDigest(request.action_digest(), "action_digest");
  if (!action_digest.ok()) return action_digest.status();
  out.action_digest = *action_digest;
  auto action = LoadMessage<reapi::Action>(*blobs_, out.action_digest, "action");
  if (!action.ok()) return action.status();
  out.action = std::move(*action);
  auto command_digest = ParseDigest(out.action.command_digest(), "Action.command_digest");
  if (!command_digest.ok()) return command_digest.status();
  if (auto root = ParseDigest(out.action.input_root_digest(), "Action.input_root_digest"); !root.ok()) {
    return root.status();
  }
  auto command = LoadMessage<reapi::Command>(*blobs_, *command_digest, "command");
  if (!command.ok()) return command.status();
  out.command = std::move(*command);
  if (out.command.arguments_size() == 0 || out.command.arguments(0).empty()) {
    return absl::InvalidArgumentError("Command.arguments is empty: nothing to run");
  }
  const auto& timeout = out.action.timeout();
  const absl::Duration asked = absl::Seconds(timeout.seconds()) + absl::Nanoseconds(timeout.nanos());
  if (asked < absl::ZeroDuration()) return absl::InvalidArgumentError("Action.timeout is negative");
  if (asked > max_timeout_) {
    return absl::InvalidArgumentError(absl::StrCat("Action.timeout ", absl::FormatDuration(asked),
                                                   " is above this farm's maximum of ",
                                                   absl::FormatDuration(max_timeout_), " (--max-action-timeout)"));
  }
  auto labels = Labels(out.action.platform().properties_size() > 0 ? out.action.platform() : out.command.platform());
  if (!labels.ok()) return labels.status();
  out.required_labels = std::move(*labels);
  auto missing = MissingInputs(out.action);
  if (!missing.ok()) return missing.status();
  if (!missing->empty()) return MissingBlobsError(*missing, "action's inputs");
  out.skip_cache_lookup = request.skip_cache_lookup();
  out.priority = request.execution_policy().priority();
  out.invocation_id = metadata.tool_invocation_id();
  const auto& tool = metadata.tool_details();
  out.tool = tool.tool_name().empty() ? "remote" : absl::StrCat(tool.tool_name(), " ", tool.tool_version());
  out.mnemonic = metadata.action_mnemonic();
  out.target = metadata.target_id();
  return out;
}

absl::StatusOr<std::vector<Digest>> ExecuteIntake::MissingInputsOf(const Digest& action_digest) const {
  auto action = LoadMessage<reapi::Action>(*blobs_, action_digest, "action");
  if (absl::IsFailedPrecondition(action.status())) return std::vector<Digest>{action_digest};
  if (!action.ok()) return action.status();
  return MissingInputs(*action);
}

absl::StatusOr<std::vector<Digest>> ExecuteIntake::MissingInputs(const reapi::Action& action) const {
  auto root = Digest::FromProto(action.input_root_digest());
  if (!root.ok()) return root.status();
  std::vector<Digest> missing;
  std::vector<Digest> files;
  if (auto command = Digest::FromProto(action.command_digest()); command.ok()) files.push_back(*command);
  std::vector<std::pair<Digest, std::string>> pending = {{*root, ""}};
  absl::flat_hash_set<Digest> seen;
  while (!pending.empty()) {
    const auto [d, path] = pending.back();
    pending.pop_back();
    if (!seen.insert(d).second) continue;
    auto dir = LoadDirectory(*blobs_, d);
    if (absl::IsNotFound(dir.status())) {
      missing.push_back(d);
      continue;
    }
    if (!dir.ok()) return dir.status();
    // Hostile names ("..", "a/b", duplicates, unsorted) are refused here, and again by the worker.
    if (absl::Status s = ValidateDirectory(*dir, path); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("the action's input tree: ", s.message()));
    }
    for (const auto& f : dir->files()) {
      auto fd = Digest::FromProto(f.digest());
      if (!fd.ok()) return absl::InvalidArgumentError(absl::StrCat("input file '", f.name(), "': ", fd.status().message()));
      files.push_back(*fd);
    }
    for (const auto& sub : dir->directories()) {
      auto sd = Digest::FromProto(sub.digest());
      if (!sd.ok()) return absl::InvalidArgumentError(absl::StrCat("input directory '", sub.name(), "': ", sd.status().message()));
      pending.emplace_back(*sd, path.empty() ? sub.name() : absl::StrCat(path, "/", sub.name()));
    }
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  auto absent = blobs_->FindMissing(files);
  if (!absent.ok()) return absent.status();
  missing.insert(missing.end(), absent->begin(), absent->end());
  return missing;
}

}  // namespace assay
