// assay: the command line of the farm. Parses arguments and calls one command.
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "common/security/security_flags.h"

namespace {

using namespace assay::cli;

// Every value the command line sets.
struct Args {
  std::string address;
  bool json = false;
  assay::ClientSecurity security;
  double retry_timeout = 10;
  std::string output = "text";
  SubmitOptions submit;
  std::vector<std::string> labels;
  std::string job_id, task, out_dir;
  bool follow = false;
  int limit = 20;
  std::string worker_id;
  bool drain_wait = false;
  ReportOptions report;
  std::vector<std::string> release_globs;
  std::string cache_key, cache_pipeline, cache_branch;
  bool cache_all = false;
};

// The subcommands, to tell which one was given.
struct Commands {
  CLI::App* submit = nullptr;
  CLI::App* status = nullptr;
  CLI::App* wait = nullptr;
  CLI::App* jobs = nullptr;
  CLI::App* logs = nullptr;
  CLI::App* cancel = nullptr;
  CLI::App* notifications = nullptr;
  CLI::App* workers = nullptr;
  CLI::App* cordon = nullptr;
  CLI::App* uncordon = nullptr;
  CLI::App* drain = nullptr;
  CLI::App* artifacts = nullptr;
  CLI::App* report = nullptr;
  CLI::App* release = nullptr;
  CLI::App* cache_stats = nullptr;
  CLI::App* cache_list = nullptr;
  CLI::App* cache_delete = nullptr;
  CLI::App* health = nullptr;
  CLI::App* web = nullptr;
};

void AddGlobalOptions(CLI::App& app, Args& args) {
  // Global options may come after the subcommand too (`assay jobs --output json`), as in git or
  // kubectl: subcommands hand options they do not know to the app. Set before any subcommand.
  app.fallthrough();
  const char* env_address = std::getenv("ASSAY_COORDINATOR");
  args.address = env_address != nullptr ? env_address : "127.0.0.1:7171";
  app.add_option("--coordinator", args.address, "coordinator address:port (env ASSAY_COORDINATOR)")->capture_default_str();
  app.add_flag("--json", args.json, "print JSON for scripts (same as --output json)");
  assay::AddClientSecurityFlags(app, &args.security, "ASSAY_");
  app.add_option("--retry-timeout", args.retry_timeout,
                 "keep retrying an unreachable or restarting coordinator this many seconds (env ASSAY_RETRY_TIMEOUT)")
      ->envname("ASSAY_RETRY_TIMEOUT")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--output,-o", args.output, "text or json")->check(CLI::IsMember({"text", "json"}));
}

// submit, status, wait, jobs, logs, cancel, notifications.
void AddJobCommands(CLI::App& app, Args& args, Commands& cmds) {
  SubmitOptions& submit = args.submit;
  cmds.submit = app.add_subcommand("submit", "upload a source tree and run its pipeline");
  cmds.submit->add_option("dir", submit.dir, "the tree to submit")->capture_default_str();
  cmds.submit->add_option("-f,--file", submit.pipeline_file, "pipeline file inside the tree")->capture_default_str();
  cmds.submit->add_flag("--wait,-w", submit.wait, "wait for the job, showing progress; exit 0 only if it succeeded");
  cmds.submit->add_flag("--logs", submit.stream_logs, "with --wait: stream every task's output live");
  cmds.submit->add_option("--junit", submit.junit, "with --wait: write a JUnit XML report here");
  cmds.submit->add_option("--markdown", submit.markdown, "with --wait: write a Markdown report here");
  cmds.submit->add_option("--label", args.labels, "key=value attached to the job (repeatable)");
  cmds.submit->add_option("--priority", submit.priority,
                          "higher runs first; jobs of equal priority share free slots round-robin (default 0)")
      ->check(CLI::Range(-1000, 1000));

  cmds.status = app.add_subcommand("status", "show a job's matrix");
  cmds.status->add_option("job", args.job_id, "job id")->required();
  cmds.wait = app.add_subcommand("wait", "watch a job until it ends; exit 0 only if it succeeded");
  cmds.wait->add_option("job", args.job_id, "job id")->required();
  cmds.wait->add_flag("--logs", submit.stream_logs, "stream every task's output live");
  cmds.wait->add_option("--junit", submit.junit, "write a JUnit XML report here");
  cmds.wait->add_option("--markdown", submit.markdown, "write a Markdown report here");
  cmds.jobs = app.add_subcommand("jobs", "list recent jobs");
  cmds.jobs->add_option("-n,--limit", args.limit, "how many")->capture_default_str();
  cmds.logs = app.add_subcommand("logs", "print the logs of a job, a cell or one step");
  cmds.logs->add_option("job", args.job_id, "job id")->required();
  cmds.logs->add_option("task", args.task, "CELL or CELL/STEP (default: every task)");
  cmds.logs->add_flag("-f,--follow", args.follow, "keep printing until the tasks end");
  cmds.cancel = app.add_subcommand("cancel", "cancel a job; running steps are killed");
  cmds.cancel->add_option("job", args.job_id, "job id")->required();
  cmds.notifications = app.add_subcommand("notifications", "what a job's `notify:` sent where, and how it went");
  cmds.notifications->add_option("job", args.job_id, "job id")->required();
}

// workers, cordon, uncordon, drain.
void AddWorkerCommands(CLI::App& app, Args& args, Commands& cmds) {
  cmds.workers = app.add_subcommand("workers", "list workers");
  cmds.cordon = app.add_subcommand("cordon", "give a worker no new tasks (its running tasks go on)");
  cmds.cordon->add_option("worker", args.worker_id, "worker id")->required();
  cmds.uncordon = app.add_subcommand("uncordon", "let a cordoned or drained worker take tasks again");
  cmds.uncordon->add_option("worker", args.worker_id, "worker id")->required();
  cmds.drain = app.add_subcommand("drain", "give a worker no new tasks and let its running ones finish");
  cmds.drain->add_option("worker", args.worker_id, "worker id")->required();
  cmds.drain->add_flag("--wait", args.drain_wait, "return once the worker has nothing running");
}

// artifacts, report, release: what a job produced.
void AddResultCommands(CLI::App& app, Args& args, Commands& cmds) {
  cmds.artifacts = app.add_subcommand("artifacts", "download a job's outputs");
  cmds.artifacts->add_option("job", args.job_id, "job id")->required();
  cmds.artifacts->add_option("task", args.task, "CELL or CELL/STEP (default: every task)");
  cmds.artifacts->add_option("--out", args.out_dir, "destination folder")->required();
  ReportOptions& report = args.report;
  cmds.report = app.add_subcommand("report", "a job's report: a table per cell; JUnit, JSON and Markdown files");
  cmds.report->add_option("job", args.job_id, "job id")->required();
  cmds.report->add_option("--junit", report.junit, "write JUnit XML here (a test case per cell x step)");
  cmds.report->add_option("--json", report.json, "write the report as JSON here (its sizes serve as a size baseline)");
  cmds.report->add_option("--markdown", report.markdown, "write Markdown here (a GitHub step summary, an MR comment)");
  cmds.release = app.add_subcommand("release", "collect a finished job's artifacts with manifest.json and SHA256SUMS");
  cmds.release->add_option("job", args.job_id, "job id")->required();
  cmds.release->add_option("--out", args.out_dir, "a new or empty folder")->required();
  cmds.release->add_option("--artifacts", args.release_globs,
                           "only artifacts whose CELL/STEP/PATH or PATH matches this glob (repeatable; * spans folders)");
}

// cache stats, health: the farm itself.
void AddFarmCommands(CLI::App& app, Args& args, Commands& cmds) {
  auto* cache_cmd = app.add_subcommand("cache", "the farm's cache and its step caches");
  cmds.cache_stats = cache_cmd->add_subcommand("stats", "size, blobs, hits, misses, evictions");
  cmds.cache_list = cache_cmd->add_subcommand("list", "the step caches (`caches:` in pipelines), newest first");
  cmds.cache_list->add_option("--pipeline", args.cache_pipeline, "only this pipeline's");
  cmds.cache_delete = cache_cmd->add_subcommand("delete", "delete step caches: one key (in every branch) or --all");
  cmds.cache_delete->add_option("key", args.cache_key, "the cache key");
  cmds.cache_delete->add_flag("--all", args.cache_all, "every step cache (narrowed by --pipeline, --branch)");
  cmds.cache_delete->add_option("--pipeline", args.cache_pipeline, "only this pipeline's");
  cmds.cache_delete->add_option("--branch", args.cache_branch, "only this branch's");
  cache_cmd->require_subcommand(1);
  cmds.health = app.add_subcommand("health", "is the coordinator serving? (gRPC health check; no token needed)");
  cmds.web = app.add_subcommand("web", "print the address of the coordinator's web dashboard");
}

// The command's work is done and its output flushed: the process ends here, before the client and
// gRPC are torn down (grpc_shutdown joins its executor and timer threads: ~10 ms at the end of
// every call, after the answer is known). Sanitizer builds return, so that LeakSanitizer checks the
// whole exit.
int EndNow(int code) {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
#ifndef ASSAY_SANITIZED
  std::_Exit(code);
#endif
  return code;
}

int Dispatch(Args& args, const Commands& cmds, Client& client, bool json);

// Runs the subcommand given, once the arguments are parsed.
int Run(Args& args, const Commands& cmds) {
  const bool json = args.json || args.output == "json";
  for (const auto& l : args.labels) {
    std::vector<std::string> kv = absl::StrSplit(l, absl::MaxSplits('=', 1));
    args.submit.labels[kv[0]] = kv.size() > 1 ? kv[1] : "";
  }
  args.submit.json = json;

  auto credentials = assay::MakeChannelCredentials(args.security, args.address);
  if (!credentials.ok()) return ReportError(absl::InvalidArgumentError(credentials.status().message()));
  assay::RetryPolicy retry;
  retry.overall_timeout = absl::Seconds(args.retry_timeout);
  Client client(args.address, *credentials, retry);
  return EndNow(Dispatch(args, cmds, client, json));
}

int Dispatch(Args& args, const Commands& cmds, Client& client, bool json) {
  const std::string& job_id = args.job_id;
  if (*cmds.submit) return Submit(client, args.submit);
  if (*cmds.status) return Status(client, job_id, json);
  if (*cmds.wait) return Wait(client, job_id, args.submit);
  if (*cmds.jobs) return ListJobs(client, args.limit, json);
  if (*cmds.logs) return Logs(client, job_id, args.task, args.follow);
  if (*cmds.cancel) return Cancel(client, job_id, json);
  if (*cmds.notifications) return Notifications(client, job_id, json);
  if (*cmds.workers) return Workers(client, json);
  if (*cmds.cordon) return SetWorkerState(client, args.worker_id, assay::v1::WORKER_CORDONED, false);
  if (*cmds.uncordon) return SetWorkerState(client, args.worker_id, assay::v1::WORKER_ACTIVE, false);
  if (*cmds.drain) return SetWorkerState(client, args.worker_id, assay::v1::WORKER_DRAINING, args.drain_wait);
  if (*cmds.artifacts) return Artifacts(client, job_id, args.task, args.out_dir);
  if (*cmds.cache_stats) return CacheStats(client, json);
  if (*cmds.cache_list) return CacheList(client, args.cache_pipeline, json);
  if (*cmds.cache_delete) {
    return CacheDelete(client, args.cache_key, args.cache_all, args.cache_pipeline, args.cache_branch);
  }
  if (*cmds.report) {
    args.report.print_json = args.output == "json";  // (`--json FILE` is the report's own option here)
    return ReportCommand(client, job_id, args.report);
  }
  if (*cmds.health) return Health(client);
  if (*cmds.web) return Web(client, args.address);
  if (*cmds.release) return Release(client, job_id, args.out_dir, args.release_globs);
  return kBadInput;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"assay: run build/test matrices on an Assay farm"};
  app.require_subcommand(1);
  Args args;
  Commands cmds;
  AddGlobalOptions(app, args);
  AddJobCommands(app, args, cmds);
  AddWorkerCommands(app, args, cmds);
  AddResultCommands(app, args, cmds);
  AddFarmCommands(app, args, cmds);
  CLI11_PARSE(app, argc, argv);
  return Run(args, cmds);
}
