#include "coordinator/queued_requirements.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_join.h"

namespace assay {

std::string RequirementsKey(const google::protobuf::RepeatedPtrField<std::string>& required_labels) {
  if (required_labels.empty()) return "";
  std::vector<std::string> labels(required_labels.begin(), required_labels.end());
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  return absl::StrJoin(labels, ",");
}

std::map<std::string, int64_t> CapRequirementSets(const std::map<std::string, int64_t>& queued_by_set,
                                                  size_t max_sets) {
  if (queued_by_set.size() <= max_sets) return queued_by_set;
  std::vector<std::pair<std::string, int64_t>> by_count(queued_by_set.begin(), queued_by_set.end());
  // Most tasks first; the map's order (the keys') breaks ties, as stable_sort keeps it.
  std::stable_sort(by_count.begin(), by_count.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::map<std::string, int64_t> out;
  for (size_t i = 0; i < by_count.size(); ++i) {
    out[i < max_sets ? by_count[i].first : kOtherRequirements] += by_count[i].second;
  }
  return out;
}

}  // namespace assay
