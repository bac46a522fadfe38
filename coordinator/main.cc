// assay-coordinator: parses flags and runs the CoordinatorServer.
#include <iostream>
#include <thread>
#include <tuple>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

#include "common/base/byte_size.h"
#include "common/base/daemon.h"
#include "common/pipeline/pipeline.h"
#include "common/security/security_flags.h"
#include "common/tree/tree_limit_flags.h"

#include "coordinator/server.h"

namespace {

// Serves until SIGINT or SIGTERM; 0 on a clean stop, 1 when the server cannot start.
// A restart in place (RequestRestart) stops the server and starts it again on the same data and the
// port it had: a database whose write-ahead log failed on a full disk reopens without a supervisor.
int Serve(assay::CoordinatorServer::Options options) {
  for (bool restarting = false;; restarting = true) {
    assay::ClearRestartRequest();  // asked again by the stopped server's threads as they wound down
    assay::CoordinatorServer server;
    if (absl::Status s = server.Start(options); !s.ok()) {
      if (!restarting) {
        spdlog::error("cannot start: {}", s.ToString());
        return 1;
      }
      spdlog::warn("cannot start again yet ({}); trying again in 1 s", s.ToString());
      if (assay::StopSignalWithin(absl::Seconds(1))) return 1;
      continue;
    }
    std::thread waiter([&]() { server.Wait(); });
    const int signal = assay::WaitForStopSignal();
    if (signal == 0) {
      spdlog::warn("restarting in place: {}", assay::RestartReason());
    } else {
      spdlog::info("shutting down");
    }
    server.Shutdown();
    waiter.join();
    if (signal != 0) return 0;
    // The same port again (the first start may have asked for any free one with :0).
    options.listen = absl::StrCat(options.listen.substr(0, options.listen.rfind(':')), ":", server.port());
  }
}

// Step caches (`caches:` in pipelines): their budget (parsed after) and the default branch.
void AddStepCacheFlags(CLI::App& app, std::string* budget, assay::StepCacheStore::Options* options) {
  app.add_option("--step-cache-budget", *budget,
                 "keep the step caches (`caches:`) within this size: beyond it the least recently used are dropped")
      ->capture_default_str();
  app.add_option("--default-branch", options->default_branch,
                 "the branch whose step caches every other branch may restore (jobs without a `branch` label are on it)")
      ->capture_default_str();
}

// --- remote execution (docs/bazel.md)
void AddRemoteExecutionFlags(CLI::App& app, assay::CoordinatorServer::Options* options) {
  app.add_option_function<double>(
         "--max-action-timeout-seconds", [options](double s) { options->max_action_timeout = absl::Seconds(s); },
         "the longest Action.timeout an Execute may ask (a test's --test_timeout); longer: INVALID_ARGUMENT")
      ->default_str("3600")
      ->check(CLI::Range(1.0, 7.0 * 86400));
  app.add_option_function<double>(
         "--remote-job-idle-seconds", [options](double s) { options->jobs.remote_job_idle = absl::Seconds(s); },
         "a Bazel invocation's job ends after this long with nothing running and no new action")
      ->default_str("30")
      ->check(CLI::Range(0.1, 86400.0));
  app.add_option_function<double>(
         "--remote-abandoned-seconds", [options](double s) { options->jobs.remote_abandoned_grace = absl::Seconds(s); },
         "a Bazel action no client has waited for this long (every Execute and WaitExecution stream ended) is cancelled")
      ->default_str("60")
      ->check(CLI::Range(0.1, 86400.0));
}

// The CAS's budget, and its bucket (issue 21, docs/operations.md).
// The web dashboard (docs/dashboard.md). An address given is required; the default one is not.
void AddHttpFlags(CLI::App& app, assay::HttpServer::Options* http) {
  http->web_root = ASSAY_WEB_ROOT;
  http->required = false;
  CLI::Option* listen = app.add_option("--http-listen", http->listen,
                                     "serve the web dashboard and its JSON API at HOST:PORT (\"\": off; beyond loopback "
                                     "it needs TLS and tokens; docs/dashboard.md)")
                          ->capture_default_str();
  app.add_option("--http-port-file", http->port_file, "write the dashboard's port here once serving");
  app.add_option("--web-root", http->web_root, "the dashboard's files (index.html, app/, node_modules/)")
      ->capture_default_str();
  app.add_option("--http-max-streams", http->max_streams,
                 "pushed responses (live jobs, logs, workers) open at once; one more is answered 503")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  listen->each([http](const std::string&) { http->required = true; });
}

void AddStoreFlags(CLI::App& app, assay::CoordinatorServer::Options* options) {
  app.add_option("--cache-budget-bytes", options->cache_budget_bytes, "keep the CAS within this many bytes (0: no limit)")
      ->capture_default_str();
  app.add_option("--cas-store", options->cas_store,
                 "keep blobs in an S3-compatible bucket: s3://BUCKET/PREFIX?endpoint=URL&region=R (credentials from "
                 "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or --cas-credentials); --cache-budget-bytes is then the "
                 "bucket's budget and --data keeps its index and a hot tier");
  app.add_option("--cas-credentials", options->cas_credentials,
                 "the bucket's access key pair from this file (AWS's credentials file format) instead of the environment")
      ->check(CLI::ExistingFile);
  app.add_option("--hot-tier-bytes", options->hot_tier_bytes,
                 "with --cas-store: the budget of the local copies of recently used blobs on --data")
      ->capture_default_str();
  app.add_option("--cas-direct-access", options->cas_direct_access,
                 "with --cas-store: workers and CLIs read and write large blobs in the bucket itself, with requests "
                 "the coordinator signs for each (false: every byte through the coordinator)")
      ->capture_default_str();
  app.add_option("--cas-direct-endpoint", options->cas_direct_endpoint,
                 "with --cas-store: the bucket's endpoint as workers reach it (default: the --cas-store endpoint)");
}

}  // namespace

int main(int argc, char** argv) {
  assay::InitDaemon();
  assay::CoordinatorServer::Options options;
  double lease_seconds = 30, heartbeat_seconds = 5, unschedulable_seconds = 300;
  std::string log_level = "info";
  CLI::App app{"assay-coordinator: schedules build/test matrices to workers and serves the REAPI cache"};
  app.add_option("--listen", options.listen, "address:port to serve on (beyond loopback: TLS and authentication required)")
      ->capture_default_str();
  app.add_option("--data", options.data_dir, "folder of the RocksDB database")->capture_default_str();
  app.add_option("--port-file", options.port_file, "write the bound port here once serving");
  app.add_option("--max-matrix-cells", options.jobs.limits.max_cells, "refuse pipelines with more cells")
      ->capture_default_str();
  app.add_option("--lease-seconds", lease_seconds, "a task's lease lasts this long without a heartbeat")
      ->capture_default_str();
  app.add_option("--heartbeat-seconds", heartbeat_seconds, "how often workers renew their leases")
      ->capture_default_str();
  app.add_option("--unschedulable-grace-seconds", unschedulable_seconds,
                 "a queued task whose labels no worker connected (or seen this long ago) offers fails after this long")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 7.0 * 86400));
  assay::AddTreeLimitFlags(app, &options.jobs.tree_limits);
  AddStoreFlags(app, &options);
  // --- disk space (issue 22)
  app.add_option("--min-free-disk", options.min_free_disk,
                 "free space the CAS keeps on the --data disk: a size (2GiB) or a percentage (5%); uploads that "
                 "would cross it are refused, eviction runs below twice it; 0: none")
      ->capture_default_str();
  app.add_option("--log-retention", options.log_retention,
                 "remove the logs of jobs finished longer ago than this (90d, 12h; 0: keep them however old); below "
                 "twice --min-free-disk, the oldest finished jobs' logs go first")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  assay::AddServerSecurityFlags(app, &options.security);
  app.add_option("--metrics-listen", options.metrics_listen,
                 "serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464; default: off)");
  app.add_option("--metrics-port-file", options.metrics_port_file, "write the metrics port here once serving");
  AddHttpFlags(app, &options.http);
  // A step's output limit: the default, and the most a pipeline's output_limit may ask.
  std::string step_output_limit = "64MiB", max_step_output_limit = "1GiB";
  app.add_option("--step-output-limit", step_output_limit,
                 "bytes of a step's output (stdout and stderr) kept when its pipeline sets no output_limit")
      ->capture_default_str();
  app.add_option("--max-step-output-limit", max_step_output_limit,
                 "the most a pipeline's output_limit may ask; a pipeline asking more is refused at submit")
      ->capture_default_str();
  std::string step_cache_budget = "20GiB";
  AddStepCacheFlags(app, &step_cache_budget, &options.step_caches);
  app.add_option("--notify-config", options.notify_config,
                 "notification targets (webhooks, GitHub/GitLab commit statuses) that pipelines' `notify:` may name "
                 "(docs/operations.md, \"Notifications\")");
  AddRemoteExecutionFlags(app, &options);
  CLI11_PARSE(app, argc, argv);
  if (auto budget = assay::ParseSize(step_cache_budget); budget.ok()) {
    options.step_caches.budget_bytes = *budget;
  } else {
    std::cerr << "--step-cache-budget: '" << step_cache_budget << "' is not a size like 20GiB\n";
    return 2;
  }
  for (auto [flag, text, bytes] : {std::tuple{"--step-output-limit", &step_output_limit, &options.jobs.limits.default_output_limit},
                                   std::tuple{"--max-step-output-limit", &max_step_output_limit, &options.jobs.limits.max_output_limit}}) {
    auto parsed = assay::ParseSize(*text);
    if (!parsed.ok() || *parsed < 1024) {
      std::cerr << flag << ": '" << *text << "' is not a size of at least 1KiB, like 64MiB\n";
      return 2;
    }
    *bytes = *parsed;
  }
  if (options.jobs.limits.default_output_limit > options.jobs.limits.max_output_limit) {
    std::cerr << "--step-output-limit " << step_output_limit << " is more than --max-step-output-limit "
              << max_step_output_limit << "\n";
    return 2;
  }

  spdlog::set_level(spdlog::level::from_str(log_level));
  options.jobs.lease_ttl = absl::Seconds(lease_seconds);
  options.jobs.heartbeat_interval = absl::Seconds(heartbeat_seconds);
  options.jobs.unschedulable_grace = absl::Seconds(unschedulable_seconds);

  return Serve(options);
}
