// One function per `assay` subcommand; each returns the process exit code.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cli/client.h"

namespace assay::cli {

struct SubmitOptions {
  std::string dir = ".";
  std::string pipeline_file = "assay.yaml";
  bool wait = false;
  bool stream_logs = false;      // with --wait: every task's output, live, prefixed by task
  bool json = false;
  std::string junit;              // with --wait: JUnit XML written here
  std::string markdown;           // with --wait: the Markdown report written here
  std::map<std::string, std::string> labels;
  int priority = 0;               // higher runs first
};

int Submit(Client& client, const SubmitOptions& options);
// Watches a job to its end (progress, failing logs, JUnit); exit 0 only if it succeeded.
int Wait(Client& client, const std::string& job_id, const SubmitOptions& options);
int Status(Client& client, const std::string& job_id, bool json);
int ListJobs(Client& client, int limit, bool json);
int Logs(Client& client, const std::string& job_id, const std::string& task, bool follow);
int Cancel(Client& client, const std::string& job_id, bool json);
int Workers(Client& client, bool json);
// The step caches (cache_commands.cc): a table, newest first; delete by key or all.
int CacheList(Client& client, const std::string& pipeline, bool json);
// `assay notifications JOB`: the job's notifications (`notify:`), one line each.
int Notifications(Client& client, const std::string& job_id, bool json);
int CacheDelete(Client& client, const std::string& key, bool all, const std::string& pipeline,
                const std::string& branch);
// cordon, uncordon, drain; with `wait`, a drain returns once the worker has nothing running.
int SetWorkerState(Client& client, const std::string& worker, assay::v1::WorkerAdminState state, bool wait);
std::string AdminStateName(const assay::v1::Worker& worker);
int Artifacts(Client& client, const std::string& job_id, const std::string& task, const std::string& out_dir);
int CacheStats(Client& client, bool json);
// Asks the coordinator's gRPC health service; prints SERVING (exit 0) or why not (exit 3).
int Health(Client& client);
// Prints the coordinator's web dashboard address (docs/dashboard.md).
int Web(Client& client, const std::string& coordinator);
// The dashboard's URL as the coordinator gives it, with a wildcard host ("0.0.0.0", "::") replaced by
// the host in `coordinator` (HOST:PORT as this CLI reaches it).
std::string DashboardUrl(const std::string& url, const std::string& coordinator);

struct ReportOptions {
  std::string junit, json, markdown;  // files to write; the table goes to stdout
  bool print_json = false;            // `--output json`: the JSON report to stdout instead of the table
};
// A finished job's report (cli/report.h). Exit 0 when the job succeeded, 1 when it did not.
int ReportCommand(Client& client, const std::string& job_id, const ReportOptions& options);
// Collects a job's artifacts into `out_dir` with manifest.json and SHA256SUMS; `globs` choose
// artifacts by CELL/STEP/PATH or PATH (empty: all). The same job gives byte-identical folders.
int Release(Client& client, const std::string& job_id, const std::string& out_dir, const std::vector<std::string>& globs);

// Every file a task's result holds: its output files and the files of its output directories.
struct OutputEntry {
  std::string path;  // relative to the task's work directory, checked
  Digest digest;
  bool executable = false;
};
absl::StatusOr<std::vector<OutputEntry>> ListOutputs(Client& client, const assay::v1::Task& task);
// The logs of a job's failed tasks, by task id.
std::map<std::string, std::string> FailedLogs(Client& client, const assay::v1::Job& job);
absl::StatusOr<assay::v1::Job> GetJob(Client& client, const std::string& id);

}  // namespace assay::cli
