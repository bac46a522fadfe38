// The `requires` label of the assay_tasks_queued gauge: what queued tasks ask of a worker, one
// string per set of required labels, so that each pool of workers can scale on the sets it can run
// (deploy/k8s/scaledobject.yaml, docs/operations.md "Kubernetes"). Pure functions, no locking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "google/protobuf/repeated_ptr_field.h"

namespace assay {

// At most this many sets get a sample of their own in one scrape; the others are summed under
// kOtherRequirements, so the gauge has at most kMaxRequirementSets + 1 series at any one time.
inline constexpr size_t kMaxRequirementSets = 50;
inline constexpr char kOtherRequirements[] = "other";

// A task's required labels sorted, each once, joined with ",": "" when it requires nothing.
// (`requires: [qemu, arm]` is "arm,qemu".)
std::string RequirementsKey(const google::protobuf::RepeatedPtrField<std::string>& required_labels);

// The samples of assay_tasks_queued from the queued tasks counted by RequirementsKey: unchanged when
// there are at most `max_sets` sets; else the `max_sets` sets with the most tasks (on a tie, the
// first in the keys' order) keep their count and the rest are summed under "other" (with the set
// that is the single label `other`, when there is one).
std::map<std::string, int64_t> CapRequirementSets(const std::map<std::string, int64_t>& queued_by_set,
                                                  size_t max_sets = kMaxRequirementSets);

}  // namespace assay
