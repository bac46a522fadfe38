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
  std::string junit;
  std::map<std::string, std::string> labels;
};

int Submit(Client& client, const SubmitOptions& options);
// Watches a job to its end (progress, failing logs, JUnit); exit 0 only if it succeeded.
int Wait(Client& client, const std::string& job_id, const SubmitOptions& options);
int Status(Client& client, const std::string& job_id, bool json);
int ListJobs(Client& client, int limit, bool json);
int Logs(Client& client, const std::string& job_id, const std::string& task, bool follow);
int Cancel(Client& client, const std::string& job_id, bool json);
int Workers(Client& client, bool json);
int Artifacts(Client& client, const std::string& job_id, const std::string& task, const std::string& out_dir);
int CacheStats(Client& client, bool json);

}  // namespace assay::cli
