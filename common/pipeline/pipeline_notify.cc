// `notify:` in the pipeline file (docs/pipeline.md, "Notifications"): which of the targets the
// coordinator's admin configured hear of which job events. Only names here: a pipeline never gives an
// address, so a submitter cannot make the coordinator call one of their choosing.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/pipeline/pipeline.h"
#include "common/pipeline/pipeline_parser.h"

namespace assay {
namespace pipeline_internal {

namespace {

bool IsTargetName(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                  c == '.';
         });
}

}  // namespace

absl::StatusOr<std::vector<NotifySpec>> Parser::ParseNotify(const YAML::Node& node) const {
  if (!node.IsSequence()) return Error(node, "notify must be a list like [{to: team-hook, on: [failure, recovered]}]");
  std::vector<NotifySpec> out;
  std::set<std::string> targets;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node entry = node[i];
    const std::string what = absl::StrCat("notify[", i, "]");
    if (!entry.IsMap()) return Error(entry, absl::StrCat(what, " must be a mapping like {to: team-hook, on: [failure]}"));
    if (absl::Status s = CheckKeys(entry, what, {"to", "on"}); !s.ok()) return s;
    NotifySpec spec;
    spec.line = entry.Mark().line + 1;
    if (!entry["to"]) return Error(entry, absl::StrCat(what, " has no 'to' (the name of a notification target)"));
    auto to = Scalar(entry["to"], absl::StrCat(what, ".to"));
    if (!to.ok()) return to.status();
    if (!IsTargetName(*to)) {
      return Error(entry["to"], absl::StrCat(what, ".to '", *to, "' is not a target name (letters, digits, '-', '_', '.')"));
    }
    if (!targets.insert(*to).second) return Error(entry["to"], absl::StrCat(what, ".to names '", *to, "' twice"));
    spec.to = *to;
    spec.on = DefaultNotifyEvents();
    if (entry["on"]) {
      auto on = entry["on"].IsScalar() ? absl::StatusOr<std::vector<std::string>>(std::vector{entry["on"].Scalar()})
                                       : StringList(entry["on"], absl::StrCat(what, ".on"));
      if (!on.ok()) return on.status();
      if (on->empty()) return Error(entry["on"], absl::StrCat(what, ".on is empty"));
      for (const std::string& event : *on) {
        if (std::find(NotifyEvents().begin(), NotifyEvents().end(), event) == NotifyEvents().end()) {
          return Error(entry["on"], absl::StrCat(what, ".on: '", event, "' is not an event (",
                                                 absl::StrJoin(NotifyEvents(), ", "), ")"));
        }
      }
      spec.on = std::move(*on);
    }
    out.push_back(std::move(spec));
  }
  return out;
}

}  // namespace pipeline_internal
}  // namespace assay
