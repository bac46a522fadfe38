#include "coordinator/planner.h"

#include "absl/strings/str_cat.h"

namespace assay {

using assay::v1::Job;
using assay::v1::Task;

namespace {

// An emulator step's part of the spec.
void FillQemu(const QemuStep& q, const Step& step, assay::v1::TaskSpec* spec) {
  auto* qemu = spec->mutable_qemu();
  qemu->set_system(q.system);
  qemu->set_machine(q.machine);
  qemu->set_cpu(q.cpu);
  qemu->set_kernel(q.kernel);
  for (const auto& a : q.args) qemu->add_args(a);
  qemu->set_semihosting(q.semihosting);
  for (const auto& e : q.expect) qemu->add_expect(e);
  qemu->set_ordered(q.ordered);
  for (const auto& f : q.fail_on) qemu->add_fail_on(f);
  qemu->set_exit_code(q.exit_code);
  // Workers advertise "qemu-system-arm=VERSION"; in an image, the image brings the emulator.
  if (step.image.empty()) spec->add_required_labels(q.system);
  // Unless it declares inputs, an emulator run reads only its kernel (a needed step's output):
  // a source change that leaves the kernel as it was does not run it again.
  if (step.inputs.empty()) spec->add_inputs(q.kernel);
}

// What a worker needs to run one expanded step (the size and time baselines aside).
void FillSpec(const Pipeline& pipeline, const Step& step, const PlanInput& input, assay::v1::TaskSpec* spec) {
  spec->set_run(step.run);
  for (const auto& [k, v] : pipeline.env) (*spec->mutable_env())[k] = v;
  for (const auto& [k, v] : step.env) (*spec->mutable_env())[k] = v;  // the step's win
  for (const auto& o : step.outputs) spec->add_outputs(o);
  for (const auto& in : step.inputs) spec->add_inputs(in);
  spec->set_timeout_ms(absl::ToInt64Milliseconds(step.timeout));
  for (const auto& r : step.requires_labels) spec->add_required_labels(r);
  spec->set_cache(step.cache);
  spec->set_cache_failures(step.cache_failures);
  spec->set_retry(step.retry);
  for (const auto& w : step.retry_when) spec->add_retry_when(w);
  if (step.qemu) FillQemu(*step.qemu, step, spec);
  if (!step.image.empty()) {
    auto* container = spec->mutable_container();
    container->set_image(step.image);
    if (auto it = input.image_ids.find(step.image); it != input.image_ids.end()) container->set_image_id(it->second);
    container->set_network(step.network);
    container->set_user(step.user);
    spec->add_required_labels("container");  // workers with an engine offer "container"
  }
  spec->mutable_limits()->set_cpus(step.cpus);
  spec->mutable_limits()->set_memory_bytes(step.memory_bytes);
  spec->mutable_limits()->set_pids(step.pids);
  spec->set_output_limit(step.output_limit);
  spec->set_output_limit_fails(step.output_limit_fails);
  for (const SizeBudget& b : step.size_budgets) {
    auto* budget = spec->add_size_budgets();
    budget->set_path(b.path);
    budget->set_file(b.file);
    budget->set_text(b.text);
    budget->set_data(b.data);
    budget->set_bss(b.bss);
    budget->set_rom(b.rom);
    budget->set_ram(b.ram);
    budget->set_line(b.line);
  }
  for (const StepCache& c : step.caches) {
    auto* cache = spec->add_caches();
    cache->set_key(c.key);
    for (const auto& r : c.restore_keys) cache->add_restore_keys(r);
    for (const auto& p : c.paths) cache->add_paths(p);
    cache->set_line(c.line);
  }
  spec->mutable_size_regression()->set_warn_percent(pipeline.size_regression.warn_percent);
  spec->mutable_size_regression()->set_fail_percent(pipeline.size_regression.fail_percent);
  if (pipeline.time_regression.Times(step.id)) {  // its baseline is Intake's (time_baseline)
    auto* rule = spec->mutable_time_regression();
    rule->set_warn_percent(pipeline.time_regression.warn_percent);
    rule->set_fail_percent(pipeline.time_regression.fail_percent);
    rule->set_runs(pipeline.time_regression.runs);
  }
}

}  // namespace

absl::StatusOr<Job> PlanJob(const Pipeline& pipeline, const PlanInput& input) {
  Job job;
  job.set_name(pipeline.name);
  *job.mutable_source_root() = input.source_root;
  job.set_pipeline_path(input.pipeline_path);
  for (const auto& [k, v] : input.labels) (*job.mutable_labels())[k] = v;
  job.set_state(assay::v1::JOB_QUEUED);
  job.set_created_at_ms(input.created_at_ms);
  job.set_submit_request_id(input.request_id);
  job.set_priority(input.priority);
  job.set_max_parallel(pipeline.max_parallel);
  job.set_fail_fast(pipeline.fail_fast);
  for (const NotifySpec& spec : pipeline.notify) {
    assay::v1::NotifySpec* out = job.add_notify();
    out->set_to(spec.to);
    for (const std::string& event : spec.on) out->add_on(event);
    out->set_line(spec.line);
  }

  const int steps = static_cast<int>(pipeline.steps.size());
  for (size_t c = 0; c < pipeline.cells.size(); ++c) {
    const MatrixCell& cell = pipeline.cells[c];
    const std::string cell_name = CellName(pipeline, cell);
    auto qualified = [&](const std::string& step_id) {
      return cell_name.empty() ? step_id : absl::StrCat(cell_name, "/", step_id);
    };
    for (int s = 0; s < steps; ++s) {
      auto step = ExpandStep(pipeline, pipeline.steps[static_cast<size_t>(s)], cell, input.pipeline_path,
                             input.hash_files ? &input.hash_files : nullptr);
      if (!step.ok()) return step.status();
      Task* task = job.add_tasks();
      task->set_index(static_cast<int32_t>(c) * steps + s);
      task->set_cell(cell_name);
      task->set_step(step->id);
      task->set_id(qualified(step->id));
      for (const auto& [k, v] : cell) (*task->mutable_matrix())[k] = v;
      for (const std::string& need : step->needs) task->add_needs(qualified(need));
      task->set_state(assay::v1::TASK_PENDING);
      FillSpec(pipeline, *step, input, task->mutable_spec());
      if (auto it = input.baseline.find(task->id()); it != input.baseline.end()) {
        for (const auto& [path, size] : it->second) (*task->mutable_spec()->mutable_baseline())[path] = size;
      }
    }
  }
  job.set_task_count(job.tasks_size());
  return job;
}

}  // namespace assay
