#include "coordinator/planner.h"

#include "absl/strings/str_cat.h"

namespace assay {

using assay::v1::Job;
using assay::v1::Task;

absl::StatusOr<Job> PlanJob(const Pipeline& pipeline, const PlanInput& input) {
  Job job;
  job.set_name(pipeline.name);
  *job.mutable_source_root() = input.source_root;
  job.set_pipeline_path(input.pipeline_path);
  for (const auto& [k, v] : input.labels) (*job.mutable_labels())[k] = v;
  job.set_state(assay::v1::JOB_QUEUED);
  job.set_created_at_ms(input.created_at_ms);
  job.set_submit_request_id(input.request_id);

  const int steps = static_cast<int>(pipeline.steps.size());
  for (size_t c = 0; c < pipeline.cells.size(); ++c) {
    const MatrixCell& cell = pipeline.cells[c];
    const std::string cell_name = CellName(pipeline, cell);
    auto qualified = [&](const std::string& step_id) {
      return cell_name.empty() ? step_id : absl::StrCat(cell_name, "/", step_id);
    };
    for (int s = 0; s < steps; ++s) {
      auto step = ExpandStep(pipeline, pipeline.steps[static_cast<size_t>(s)], cell, input.pipeline_path);
      if (!step.ok()) return step.status();
      Task* task = job.add_tasks();
      task->set_index(static_cast<int32_t>(c) * steps + s);
      task->set_cell(cell_name);
      task->set_step(step->id);
      task->set_id(qualified(step->id));
      for (const auto& [k, v] : cell) (*task->mutable_matrix())[k] = v;
      for (const std::string& need : step->needs) task->add_needs(qualified(need));
      task->set_state(assay::v1::TASK_PENDING);
      auto* spec = task->mutable_spec();
      spec->set_run(step->run);
      for (const auto& [k, v] : pipeline.env) (*spec->mutable_env())[k] = v;
      for (const auto& [k, v] : step->env) (*spec->mutable_env())[k] = v;  // the step's win
      for (const auto& o : step->outputs) spec->add_outputs(o);
      for (const auto& in : step->inputs) spec->add_inputs(in);
      spec->set_timeout_ms(absl::ToInt64Milliseconds(step->timeout));
      for (const auto& r : step->requires_labels) spec->add_required_labels(r);
      spec->set_cache(step->cache);
      spec->set_cache_failures(step->cache_failures);
      spec->set_retry(step->retry);
    }
  }
  job.set_task_count(job.tasks_size());
  return job;
}

}  // namespace assay
