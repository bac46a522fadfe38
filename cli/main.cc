// assay: the command line of the farm. Parses arguments and calls one command.
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "common/security_flags.h"

int main(int argc, char** argv) {
  using namespace assay::cli;
  CLI::App app{"assay: run build/test matrices on an Assay farm"};
  app.require_subcommand(1);
  // Global options may come after the subcommand too (`assay jobs --output json`), as in git or
  // kubectl: subcommands hand options they do not know to the app. Set before any subcommand.
  app.fallthrough();
  const char* env_address = std::getenv("ASSAY_COORDINATOR");
  std::string address = env_address != nullptr ? env_address : "127.0.0.1:7171";
  bool json = false;
  app.add_option("--coordinator", address, "coordinator address:port (env ASSAY_COORDINATOR)")->capture_default_str();
  app.add_flag("--json", json, "print JSON for scripts (same as --output json)");
  assay::ClientSecurity security;
  assay::AddClientSecurityFlags(app, &security, "ASSAY_");
  double retry_timeout = 10;
  app.add_option("--retry-timeout", retry_timeout,
                 "keep retrying an unreachable or restarting coordinator this many seconds (env ASSAY_RETRY_TIMEOUT)")
      ->envname("ASSAY_RETRY_TIMEOUT")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  std::string output = "text";
  app.add_option("--output,-o", output, "text or json")->check(CLI::IsMember({"text", "json"}));

  SubmitOptions submit;
  std::vector<std::string> labels;
  auto* submit_cmd = app.add_subcommand("submit", "upload a source tree and run its pipeline");
  submit_cmd->add_option("dir", submit.dir, "the tree to submit")->capture_default_str();
  submit_cmd->add_option("-f,--file", submit.pipeline_file, "pipeline file inside the tree")->capture_default_str();
  submit_cmd->add_flag("--wait,-w", submit.wait, "wait for the job, showing progress; exit 0 only if it succeeded");
  submit_cmd->add_flag("--logs", submit.stream_logs, "with --wait: stream every task's output live");
  submit_cmd->add_option("--junit", submit.junit, "with --wait: write a JUnit XML report here");
  submit_cmd->add_option("--markdown", submit.markdown, "with --wait: write a Markdown report here");
  submit_cmd->add_option("--label", labels, "key=value attached to the job (repeatable)");
  submit_cmd->add_option("--priority", submit.priority,
                         "higher runs first; jobs of equal priority share free slots round-robin (default 0)")
      ->check(CLI::Range(-1000, 1000));

  std::string job_id, task, out_dir;
  bool follow = false;
  int limit = 20;
  auto* status_cmd = app.add_subcommand("status", "show a job's matrix");
  status_cmd->add_option("job", job_id, "job id")->required();
  auto* wait_cmd = app.add_subcommand("wait", "watch a job until it ends; exit 0 only if it succeeded");
  wait_cmd->add_option("job", job_id, "job id")->required();
  wait_cmd->add_flag("--logs", submit.stream_logs, "stream every task's output live");
  wait_cmd->add_option("--junit", submit.junit, "write a JUnit XML report here");
  wait_cmd->add_option("--markdown", submit.markdown, "write a Markdown report here");
  auto* jobs_cmd = app.add_subcommand("jobs", "list recent jobs");
  jobs_cmd->add_option("-n,--limit", limit, "how many")->capture_default_str();
  auto* logs_cmd = app.add_subcommand("logs", "print the logs of a job, a cell or one step");
  logs_cmd->add_option("job", job_id, "job id")->required();
  logs_cmd->add_option("task", task, "CELL or CELL/STEP (default: every task)");
  logs_cmd->add_flag("-f,--follow", follow, "keep printing until the tasks end");
  auto* cancel_cmd = app.add_subcommand("cancel", "cancel a job; running steps are killed");
  cancel_cmd->add_option("job", job_id, "job id")->required();
  auto* workers_cmd = app.add_subcommand("workers", "list workers");
  std::string worker_id;
  bool drain_wait = false;
  auto* cordon_cmd = app.add_subcommand("cordon", "give a worker no new tasks (its running tasks go on)");
  cordon_cmd->add_option("worker", worker_id, "worker id")->required();
  auto* uncordon_cmd = app.add_subcommand("uncordon", "let a cordoned or drained worker take tasks again");
  uncordon_cmd->add_option("worker", worker_id, "worker id")->required();
  auto* drain_cmd = app.add_subcommand("drain", "give a worker no new tasks and let its running ones finish");
  drain_cmd->add_option("worker", worker_id, "worker id")->required();
  drain_cmd->add_flag("--wait", drain_wait, "return once the worker has nothing running");
  auto* artifacts_cmd = app.add_subcommand("artifacts", "download a job's outputs");
  artifacts_cmd->add_option("job", job_id, "job id")->required();
  artifacts_cmd->add_option("task", task, "CELL or CELL/STEP (default: every task)");
  artifacts_cmd->add_option("--out", out_dir, "destination folder")->required();
  ReportOptions report;
  auto* report_cmd = app.add_subcommand("report", "a job's report: a table per cell; JUnit, JSON and Markdown files");
  report_cmd->add_option("job", job_id, "job id")->required();
  report_cmd->add_option("--junit", report.junit, "write JUnit XML here (a test case per cell x step)");
  report_cmd->add_option("--json", report.json, "write the report as JSON here (its sizes serve as a size baseline)");
  report_cmd->add_option("--markdown", report.markdown, "write Markdown here (a GitHub step summary, an MR comment)");
  std::vector<std::string> release_globs;
  auto* release_cmd = app.add_subcommand("release", "collect a finished job's artifacts with manifest.json and SHA256SUMS");
  release_cmd->add_option("job", job_id, "job id")->required();
  release_cmd->add_option("--out", out_dir, "a new or empty folder")->required();
  release_cmd->add_option("--artifacts", release_globs,
                          "only artifacts whose CELL/STEP/PATH or PATH matches this glob (repeatable; * spans folders)");
  auto* cache_cmd = app.add_subcommand("cache", "the farm's cache");
  auto* cache_stats_cmd = cache_cmd->add_subcommand("stats", "size, blobs, hits, misses, evictions");
  cache_cmd->require_subcommand(1);
  auto* health_cmd = app.add_subcommand("health", "is the coordinator serving? (gRPC health check; no token needed)");

  CLI11_PARSE(app, argc, argv);
  json = json || output == "json";
  for (const auto& l : labels) {
    std::vector<std::string> kv = absl::StrSplit(l, absl::MaxSplits('=', 1));
    submit.labels[kv[0]] = kv.size() > 1 ? kv[1] : "";
  }
  submit.json = json;

  auto credentials = assay::MakeChannelCredentials(security, address);
  if (!credentials.ok()) return ReportError(absl::InvalidArgumentError(credentials.status().message()));
  assay::RetryPolicy retry;
  retry.overall_timeout = absl::Seconds(retry_timeout);
  Client client(address, *credentials, retry);
  if (*submit_cmd) return Submit(client, submit);
  if (*status_cmd) return Status(client, job_id, json);
  if (*wait_cmd) return Wait(client, job_id, submit);
  if (*jobs_cmd) return ListJobs(client, limit, json);
  if (*logs_cmd) return Logs(client, job_id, task, follow);
  if (*cancel_cmd) return Cancel(client, job_id, json);
  if (*workers_cmd) return Workers(client, json);
  if (*cordon_cmd) return SetWorkerState(client, worker_id, assay::v1::WORKER_CORDONED, false);
  if (*uncordon_cmd) return SetWorkerState(client, worker_id, assay::v1::WORKER_ACTIVE, false);
  if (*drain_cmd) return SetWorkerState(client, worker_id, assay::v1::WORKER_DRAINING, drain_wait);
  if (*artifacts_cmd) return Artifacts(client, job_id, task, out_dir);
  if (*cache_stats_cmd) return CacheStats(client, json);
  if (*report_cmd) return ReportCommand(client, job_id, report);
  if (*health_cmd) return Health(client);
  if (*release_cmd) return Release(client, job_id, out_dir, release_globs);
  return kBadInput;
}
