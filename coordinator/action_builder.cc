#include "coordinator/action_builder.h"

#include <map>

#include <google/protobuf/util/json_util.h>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/status_util.h"
#include "common/task/platform_properties.h"
#include "common/task/qemu_spec.h"
#include "common/tree/merkle.h"

namespace assay {

using assay::v1::LogChunk;
using assay::v1::Task;

namespace {

// The blobs one Build makes (the trees of the step's inputs, its Command and Action), stored
// together at its end: one fsync for all of them, not one each. A tree made here is read back from
// here before it is stored.
class PendingBlobs {
 public:
  explicit PendingBlobs(BlobStore* store) : store_(store) {}
  absl::Status Put(const Digest& digest, const std::string& bytes) {
    made_.try_emplace(digest, bytes);
    return absl::OkStatus();
  }
  absl::StatusOr<reapi::Directory> LoadDirectory(const Digest& digest) const {
    auto it = made_.find(digest);
    if (it == made_.end()) return assay::LoadDirectory(*store_, digest);
    reapi::Directory dir;
    if (!dir.ParseFromString(it->second)) {
      return absl::InternalError(absl::StrCat("tree ", digest.ToString(), " made here does not parse"));
    }
    return dir;
  }
  absl::Status Store() const {
    std::vector<BlobToPut> blobs;
    blobs.reserve(made_.size());
    for (const auto& [digest, bytes] : made_) blobs.push_back(BlobToPut{digest, bytes});
    for (const absl::Status& s : store_->PutMany(blobs)) {
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  BlobStore* store_;
  absl::flat_hash_map<Digest, std::string> made_;
};

// The command's platform properties: the required labels, and what the worker must know to run it
// (harness, container, limits, output limit). Sorted, as REAPI asks.
absl::Status AddPlatform(const assay::v1::TaskSpec& spec, reapi::Command* command) {
  std::vector<std::pair<std::string, std::string>> props;
  for (const std::string& label : spec.required_labels()) {
    std::vector<std::string> kv = absl::StrSplit(label, absl::MaxSplits('=', 1));
    props.emplace_back(kv[0], kv.size() > 1 ? kv[1] : "");
  }
  if (spec.has_qemu()) {
    std::string harness;
    if (!google::protobuf::util::MessageToJsonString(spec.qemu(), &harness).ok()) {
      return absl::InternalError("encoding the qemu step's harness");
    }
    props.emplace_back(kConsoleHarnessProperty, harness);
  }
  if (spec.has_container()) {
    const auto& c = spec.container();
    props.emplace_back(kContainerImageProperty, c.image_id().empty() ? c.image() : c.image_id());
    if (c.network()) props.emplace_back(kContainerNetworkProperty, "true");
    if (!c.user().empty()) props.emplace_back(kContainerUserProperty, c.user());
  }
  // Limits are part of the action: a step given more memory is another action (its result may differ).
  if (spec.limits().cpus() > 0) props.emplace_back(kLimitCpusProperty, absl::StrCat(spec.limits().cpus()));
  if (spec.limits().memory_bytes() > 0) props.emplace_back(kLimitMemoryProperty, absl::StrCat(spec.limits().memory_bytes()));
  if (spec.limits().pids() > 0) props.emplace_back(kLimitPidsProperty, absl::StrCat(spec.limits().pids()));
  // So is the output limit: it bounds what the result holds (its stdout and stderr).
  if (spec.output_limit() > 0) props.emplace_back(kOutputLimitProperty, absl::StrCat(spec.output_limit()));
  if (spec.output_limit_fails()) props.emplace_back(kOutputLimitFailsProperty, "true");
  std::sort(props.begin(), props.end());
  for (const auto& [k, v] : props) {
    auto* p = command->mutable_platform()->add_properties();
    p->set_name(k);
    p->set_value(v);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Digest> ActionBuilder::Build(const Work& work, reapi::Action* action, reapi::Command* command) const {
  action->Clear();
  command->Clear();
  auto source = Digest::Create(work.source_root_hash, work.source_root_size);
  if (!source.ok()) return source.status();
  const Task* task = &work.task;
  PendingBlobs made(blobs_);
  auto load = [&made](const Digest& d) { return made.LoadDirectory(d); };
  auto put = [&made](const Digest& d, const std::string& bytes) { return made.Put(d, bytes); };
  // Only what the step declares it reads is part of its action, so other changes do not rerun it.
  auto root = FilterTree(*source, {task->spec().inputs().begin(), task->spec().inputs().end()}, load, put);
  if (!root.ok()) return Annotate(root.status(), "selecting the step's inputs");
  auto input_root = AddFilesToTree(*root, work.need_files, work.need_links, load, put);
  if (!input_root.ok()) return Annotate(input_root.status(), "merging the outputs of needed steps");

  const auto& spec = task->spec();
  if (spec.has_qemu()) {
    // The emulator itself is the command; the worker judges its console by the harness property.
    for (const std::string& arg : QemuCommandLine(QemuStepFromProto(spec.qemu()))) command->add_arguments(arg);
  } else {
    command->add_arguments("/bin/sh");
    command->add_arguments("-ec");
    command->add_arguments(spec.run());
  }
  std::map<std::string, std::string> env(spec.env().begin(), spec.env().end());
  for (const auto& [k, v] : task->matrix()) env[absl::StrCat("ASSAY_MATRIX_", absl::AsciiStrToUpper(k))] = v;
  env["ASSAY_CELL"] = task->cell();
  env["ASSAY_STEP"] = task->step();
  for (const auto& [k, v] : env) {
    auto* var = command->add_environment_variables();
    var->set_name(k);
    var->set_value(v);
  }
  std::vector<std::string> outputs(spec.outputs().begin(), spec.outputs().end());
  std::sort(outputs.begin(), outputs.end());
  for (const auto& o : outputs) command->add_output_paths(o);
  if (absl::Status st = AddPlatform(spec, command); !st.ok()) return st;
  *action->mutable_platform() = command->platform();
  std::string command_bytes = command->SerializeAsString();
  Digest command_digest = Digest::OfBytes(command_bytes);
  made.Put(command_digest, command_bytes).IgnoreError();  // (never fails: kept until Store)
  *action->mutable_command_digest() = command_digest.ToProto();
  *action->mutable_input_root_digest() = input_root->ToProto();
  action->mutable_timeout()->set_seconds(spec.timeout_ms() / 1000);
  action->mutable_timeout()->set_nanos(static_cast<int32_t>(spec.timeout_ms() % 1000) * 1'000'000);
  action->set_do_not_cache(!spec.cache());
  std::string action_bytes = action->SerializeAsString();
  Digest action_digest = Digest::OfBytes(action_bytes);
  made.Put(action_digest, action_bytes).IgnoreError();
  if (absl::Status s = made.Store(); !s.ok()) return Annotate(s, "storing the step's action");
  return action_digest;
}

absl::StatusOr<Digest> ActionBuilder::Load(const assay::v1::Task& task, reapi::Action* action,
                                           reapi::Command* command) const {
  auto read = [this](const reapi::Digest& proto, const char* what, google::protobuf::Message* message) -> absl::Status {
    auto digest = Digest::FromProto(proto);
    if (!digest.ok()) return digest.status();
    auto bytes = blobs_->Get(*digest);
    if (!bytes.ok()) return Annotate(bytes.status(), absl::StrCat("reading the ", what));
    if (!message->ParseFromString(*bytes)) return absl::DataLossError(absl::StrCat("the ", what, " does not parse"));
    return absl::OkStatus();
  };
  if (absl::Status s = read(task.action_digest(), "action", action); !s.ok()) return s;
  if (absl::Status s = read(action->command_digest(), "command", command); !s.ok()) return s;
  return Digest::FromProto(task.action_digest());
}

ActionBuilder::Prepared ActionBuilder::Prepare(const Work& work) const {
  Prepared out;
  // A remote action is the client's own, as it sent it (checked by ExecuteIntake); Execute consulted
  // the action cache already.
  const bool remote = work.task.spec().remote();
  auto action_digest = remote ? Load(work.task, &out.action, &out.command) : Build(work, &out.action, &out.command);
  if (!action_digest.ok()) {
    out.status = action_digest.status();
    return out;
  }
  out.action_digest = *action_digest;
  if (work.task.spec().cache() && !remote) {
    auto cached = action_cache_->Get("", *action_digest);
    if (cached.ok()) {
      // The logs of the run that produced the result: one note standing for its stdout and stderr,
      // served from those blobs like any finished task's dropped output (complete_log.h).
      const int64_t out_bytes = cached->stdout_digest().size_bytes();
      const int64_t err_bytes = cached->stderr_digest().size_bytes();
      if (out_bytes > 0 || err_bytes > 0) {
        LogChunk note;
        note.set_stream(LogChunk::SYSTEM);
        note.mutable_gap()->set_stdout_bytes(out_bytes);
        note.mutable_gap()->set_stderr_bytes(err_bytes);
        note.set_data(absl::StrCat("[assay] the cached run's output (", out_bytes, " bytes of stdout, ", err_bytes,
                                   " bytes of stderr) is no longer in the CAS\n"));
        out.cached_logs.push_back(std::move(note));
      }
      out.cached = std::move(*cached);
      return out;
    }
  }
  // Pinned from now until the task is final, so eviction cannot take its inputs while it waits.
  const bool pin = pinner_ != nullptr && pinner_->pinning_matters();
  std::vector<Digest> inputs = InputDigests(out.action, *action_digest, &out.input_tree);
  if (pin) {
    out.pins = std::move(inputs);
    pinner_->Pin(out.pins);
    // Pinned first, then checked: an eviction that took an input just before is seen here.
    auto missing = blobs_->FindMissing(out.pins);
    if (missing.ok() && !missing->empty()) {
      pinner_->Unpin(out.pins);
      out.pins.clear();
      out.status = absl::FailedPreconditionError(absl::StrCat(
          "input ", missing->front().ToString(), " was evicted from the CAS before the step could be queued; "
          "submit again (or raise --cache-budget-bytes)"));
    }
  }
  return out;
}

std::vector<Digest> ActionBuilder::InputDigests(const reapi::Action& action, const Digest& action_digest,
                                                std::vector<reapi::Directory>* tree) const {
  int64_t tree_bytes = 0;
  std::vector<Digest> digests = {action_digest};
  auto command = Digest::FromProto(action.command_digest());
  if (command.ok()) digests.push_back(*command);
  // Every directory and file of the input tree.
  auto root = Digest::FromProto(action.input_root_digest());
  std::vector<Digest> pending;
  if (root.ok()) pending.push_back(*root);
  absl::flat_hash_set<Digest> seen;
  while (!pending.empty()) {
    Digest d = pending.back();
    pending.pop_back();
    if (!seen.insert(d).second) continue;
    digests.push_back(d);
    auto dir = LoadDirectory(*blobs_, d);
    if (!dir.ok()) continue;
    if (tree != nullptr) {
      tree_bytes += d.size();
      if (tree_bytes <= kInlineTreeBytes) tree->push_back(*dir);
    }
    for (const auto& f : dir->files()) {
      if (auto fd = Digest::FromProto(f.digest()); fd.ok()) digests.push_back(*fd);
    }
    for (const auto& sub : dir->directories()) {
      if (auto sd = Digest::FromProto(sub.digest()); sd.ok()) pending.push_back(*sd);
    }
  }
  if (tree != nullptr && tree_bytes > kInlineTreeBytes) tree->clear();
  return digests;
}

}  // namespace assay
