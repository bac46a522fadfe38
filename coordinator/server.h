// The coordinator's composition root: opens the store, builds the services, serves them.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <grpcpp/server.h>

#include "absl/status/status.h"
#include "common/base/clock.h"
#include "common/cas/blob_store.h"
#include "common/cas/disk_space.h"
#include "common/cas/evicting_blob_store.h"
#include "common/rocksdb/blob_store_stack.h"
#include "common/rocksdb/database.h"
#include "common/rocksdb/rocksdb_blob_store.h"
#include "common/security/security.h"
#include "coordinator/action_cache.h"
#include "coordinator/admin_service.h"
#include "coordinator/blob_access_service.h"
#include "coordinator/dashboard_service.h"
#include "coordinator/execution_service.h"
#include "coordinator/http_api.h"
#include "coordinator/http_server.h"
#include "coordinator/job_manager.h"
#include "coordinator/job_store.h"
#include "coordinator/jobs_service.h"
#include "coordinator/log_retention.h"
#include "coordinator/metrics.h"
#include "coordinator/notifier.h"
#include "common/s3/s3_client.h"
#include "coordinator/reapi_services.h"
#include "coordinator/worker_link_service.h"

namespace assay {

class CoordinatorServer {
 public:
  struct Options {
    std::string listen = "127.0.0.1:7171";
    std::string data_dir = "assay-data";
    std::string port_file;               // when set, the bound port is written here once serving
    int64_t cache_budget_bytes = 0;      // 0: unbounded
    JobManager::Options jobs;
    ServerSecurity security;             // TLS and tokens; plaintext only on loopback
    std::string metrics_listen;          // host:port of the Prometheus endpoint; empty: none
    std::string metrics_port_file;       // when set, its bound port is written here
    // The web dashboard and its JSON API (docs/dashboard.md); listen "" turns it off. Its security
    // (TLS certificate, tokens) is the gRPC one's.
    HttpServer::Options http;
    // --- disk space (issue 22)
    // Free space the CAS keeps on the data folder's disk: uploads that would cross it are refused
    // (RESOURCE_EXHAUSTED), and eviction runs below twice it. A size or a percentage ("0": none).
    std::string min_free_disk = kDefaultMinFreeDisk;
    // Finished jobs' logs older than this are removed ("90d", "12h"; "0": kept however old); below
    // twice min_free_disk, the oldest finished jobs' logs go too (log_retention.h).
    std::string log_retention = "90d";
    StepCacheStore::Options step_caches;  // --step-cache-budget, --default-branch
    std::string notify_config;            // --notify-config: notification targets (notify_config.h); "": none
    // REAPI Execute (docs/bazel.md): the longest Action.timeout accepted; a longer one is INVALID_ARGUMENT.
    absl::Duration max_action_timeout = absl::Hours(1);
    // --- the CAS in a bucket (issue 21, docs/operations.md): s3://BUCKET/PREFIX?endpoint=URL&region=R.
    // Empty: blobs in the embedded RocksDB only. Otherwise the bucket holds every blob, within
    // cache_budget_bytes, and RocksDB keeps the index and a hot tier of hot_tier_bytes.
    std::string cas_store;
    std::string cas_credentials;                 // a credentials file; "": AWS_ACCESS_KEY_ID / _SECRET_ACCESS_KEY
    int64_t hot_tier_bytes = int64_t{2} << 30;   // the local copies' budget with a bucket
    // Clients move blob bytes in the bucket itself with requests the coordinator signs (BlobAccess),
    // at this endpoint ("": the --cas-store one), which workers and CLIs must be able to reach.
    bool cas_direct_access = true;
    std::string cas_direct_endpoint;
  };

  CoordinatorServer() = default;
  ~CoordinatorServer();

  absl::Status Start(const Options& options);
  int port() const { return port_; }
  void Shutdown();
  void Wait();

 private:
  // The job store, the step caches and the JobManager, which recovers the unfinished jobs.
  absl::Status StartJobs(const Options& options, std::optional<NotifyConfig> notify);
  // The Prometheus endpoint, when --metrics-listen is given.
  absl::Status StartMetrics(const Options& options);
  // The dashboard's listener, once the gRPC server serves (its API calls the services in-process).
  absl::Status StartHttp(const Options& options);
  // Removes old and, while the disk is low, the oldest finished jobs' logs (log_retention.h).
  absl::Status StartLogRetention();

  // With --cas-store: the bucket under the stack (server_bucket.cc).
  absl::Status AddBucket(const Options& options, EvictingBlobStore::Options eviction);
  // After AddBucket rebuilt the bucket's index (a new data folder): the action results it holds.
  absl::Status RestoreActionResults();
  bool bucket_rebuilt_ = false;
  BucketBlobStore* bucket_ = nullptr;  // with --cas-store: the stack's slow tier

  Options options_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<S3Client> bucket_client_;  // with --cas-store; before the stack, which uses it
  BlobStoreStack blob_stack_;
  std::unique_ptr<ActionCache> action_cache_;
  std::unique_ptr<JobStore> job_store_;
  std::unique_ptr<StepCacheStore> step_caches_;
  std::unique_ptr<Notifier> notifier_;  // before jobs_: the jobs' last writes may still queue notifications
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<LogRetention> log_retention_;
  CasCounters cas_counters_;
  std::unique_ptr<CapabilitiesService> capabilities_service_;
  std::unique_ptr<CasService> cas_service_;
  std::unique_ptr<ActionCacheService> ac_service_;
  std::unique_ptr<ByteStreamService> bytestream_service_;
  std::unique_ptr<ThreadPool> watch_executor_;
  std::unique_ptr<JobsService> jobs_service_;
  std::unique_ptr<AdminService> admin_service_;
  std::unique_ptr<ThreadPool> link_executor_;
  std::unique_ptr<WorkerLinkService> worker_link_service_;
  std::unique_ptr<ExecuteIntake> execute_intake_;
  std::unique_ptr<ExecutionService> execution_service_;
  std::unique_ptr<BlobAccessService> blob_access_service_;  // with --cas-store and direct access
  std::unique_ptr<MetricsServer> metrics_;
  std::unique_ptr<grpc::Server> server_;
  DashboardService dashboard_service_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<HttpApi> http_api_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread ticker_;
};

}  // namespace assay
