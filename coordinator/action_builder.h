// Turns a task whose needs are settled into an REAPI Action: the step's input tree (the source
// filtered by `inputs:`, with the outputs of the steps it needs merged in), its Command (argv, env
// with the matrix values, output paths, platform from required labels), both written to the CAS.
// Then it consults the action cache (a hit comes back with a note standing for the run's logs) and pins the inputs of a
// task that will run. Everything here is CAS and action-cache I/O and touches no JobManager state:
// the JobManager calls it with its lock released.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "assay/v1/job.pb.h"
#include "assay/v1/worker_link.pb.h"
#include "common/cas/blob_pinner.h"
#include "common/cas/blob_store.h"
#include "coordinator/action_cache.h"
#include "coordinator/scheduler.h"

namespace assay {

class ActionBuilder {
 public:
  // What building a task's action needs, copied out of its job.
  struct Work {
    TaskKey key;
    std::string source_root_hash;
    int64_t source_root_size = 0;
    assay::v1::Task task;                        // spec, cell, step, matrix
    std::vector<reapi::OutputFile> need_files;   // outputs of the steps it needs
    std::vector<reapi::OutputSymlink> need_links;
    std::string pipeline, branch;                // the job's pipeline name and `branch` label (step caches)
  };
  // What preparing found: the action (or why it cannot be built), a cached result and its logs, and
  // the blobs pinned for a task that will run (unpin them when it is final).
  struct Prepared {
    absl::Status status;
    Digest action_digest;
    reapi::Action action;
    reapi::Command command;
    std::optional<reapi::ActionResult> cached;
    std::vector<assay::v1::LogChunk> cached_logs;
    std::vector<Digest> pins;
    // The input tree's directories when they add up to at most kInlineTreeBytes (sent with the
    // assignment, saving the worker a GetTree); empty otherwise.
    std::vector<reapi::Directory> input_tree;
    // What the run restores and saves of its step caches (JobManager fills it, for a task that will run).
    std::vector<assay::v1::StepCacheUse> caches;
  };
  static constexpr int64_t kInlineTreeBytes = 64 << 10;

  // `pinner` may be null (nothing is evicted).
  ActionBuilder(BlobStore* blobs, ActionCache* action_cache, BlobPinner* pinner)
      : blobs_(blobs), action_cache_(action_cache), pinner_(pinner) {}

  Prepared Prepare(const Work& work) const;
  // The Action and Command, stored in the CAS; returns the action digest (the cache key).
  absl::StatusOr<Digest> Build(const Work& work, reapi::Action* action, reapi::Command* command) const;
  // A remote action's Action and Command, read from the CAS (Task.action_digest).
  absl::StatusOr<Digest> Load(const assay::v1::Task& task, reapi::Action* action, reapi::Command* command) const;
  // The action, the command and every blob of the input tree; with `tree`, also the tree's
  // directories (cleared if they add up to more than kInlineTreeBytes).
  std::vector<Digest> InputDigests(const reapi::Action& action, const Digest& action_digest,
                                   std::vector<reapi::Directory>* tree = nullptr) const;

 private:
  BlobStore* const blobs_;
  ActionCache* const action_cache_;
  BlobPinner* const pinner_;
};

}  // namespace assay
