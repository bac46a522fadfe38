#include "coordinator/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"
#include "coordinator/families.h"

namespace assay {

namespace {
constexpr int kNotifierRecentJobs = 2000;

// The dashboard's options with the gRPC security settings it shares.
HttpServer::Options HttpOptionsOf(const CoordinatorServer::Options& options) {
  HttpServer::Options http = options.http;
  http.security = options.security;
  return http;
}

// --notify-config read, when given.
absl::StatusOr<std::optional<NotifyConfig>> NotifyConfigOf(const CoordinatorServer::Options& options) {
  if (options.notify_config.empty()) return std::optional<NotifyConfig>();
  auto config = LoadNotifyConfig(options.notify_config);
  if (!config.ok()) return config.status();
  return std::optional<NotifyConfig>(std::move(*config));
}
}  // namespace

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

absl::Status CoordinatorServer::Start(const Options& options) {
  options_ = options;
  // Refuse an unsafe or broken security setup before touching the database.
  auto credentials = MakeServerCredentials(options.security, options.listen);
  if (!credentials.ok()) return credentials.status();
  if (absl::Status s = HttpServer::CheckOptions(HttpOptionsOf(options)); !s.ok()) return s;
  auto min_free = ParseMinFreeDisk(options.min_free_disk);
  if (!min_free.ok()) return min_free.status();
  auto notify = NotifyConfigOf(options);
  if (!notify.ok()) return notify.status();
  auto db = Database::Open(options.data_dir, CoordinatorDatabaseOptions());
  if (!db.ok()) return db.status();
  db_ = std::move(*db);
  EvictingBlobStore::Options eviction;
  eviction.budget_bytes = options.cas_store.empty() ? options.cache_budget_bytes : options.hot_tier_bytes;
  DiskReserve::Options reserve;
  reserve.store = options.cas_store.empty() ? "coordinator CAS" : "coordinator hot tier";
  reserve.min_free = *min_free;
  auto stack = MakeBlobStoreStack(db_.get(), RealClock::Get(), eviction, /*durable=*/true, &reserve);
  if (!stack.ok()) return stack.status();
  blob_stack_ = std::move(*stack);
  if (!options.cas_store.empty()) {
    eviction.budget_bytes = options.cache_budget_bytes;
    if (absl::Status s = AddBucket(options, eviction); !s.ok()) return s;
  }
  action_cache_ = std::make_unique<ActionCache>(db_.get(), blob_stack_.store(), bucket_client_.get());
  if (absl::Status s = RestoreActionResults(); !s.ok()) return s;
  if (absl::Status s = StartJobs(options, std::move(*notify)); !s.ok()) return s;
  if (absl::Status s = StartLogRetention(); !s.ok()) return s;
  // A smaller budget than what is stored takes effect at once.
  if (auto evicted = blob_stack_.budget()->MaybeEvict(); !evicted.ok()) return evicted.status();

  capabilities_service_ = std::make_unique<CapabilitiesService>();
  cas_service_ = std::make_unique<CasService>(blob_stack_.store(), &cas_counters_);
  ac_service_ = std::make_unique<ActionCacheService>(action_cache_.get(), blob_stack_.store());
  bytestream_service_ = std::make_unique<ByteStreamService>(blob_stack_.store(), &cas_counters_);
  watch_executor_ = std::make_unique<ThreadPool>(2);
  jobs_service_ = std::make_unique<JobsService>(jobs_.get(), watch_executor_.get(), step_caches_.get(), notifier_.get());
  admin_service_ = std::make_unique<AdminService>(jobs_.get(), blob_stack_.primary(), blob_stack_.budget(),
                                                  action_cache_.get(), &cas_counters_);
  link_executor_ = std::make_unique<ThreadPool>(4);
  worker_link_service_ = std::make_unique<WorkerLinkService>(jobs_.get(), link_executor_.get());
  execute_intake_ = std::make_unique<ExecuteIntake>(blob_stack_.store(), options.max_action_timeout);
  execution_service_ = std::make_unique<ExecutionService>(jobs_.get(), action_cache_.get(), execute_intake_.get(),
                                                          blob_stack_.store(), watch_executor_.get());

  if (absl::Status s = StartMetrics(options); !s.ok()) return s;
  // gRPC's standard health service (load balancers, Kubernetes probes, `assay health`) and server
  // reflection (grpcurl, grpc_cli): both are gRPC's own implementations.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, *credentials, &port_);
  builder.SetMaxReceiveMessageSize(16 << 20);
  builder.SetMaxSendMessageSize(16 << 20);
  for (grpc::Service* service : std::initializer_list<grpc::Service*>{
           capabilities_service_.get(), cas_service_.get(), ac_service_.get(), bytestream_service_.get(),
           jobs_service_.get(), admin_service_.get(), worker_link_service_.get(), execution_service_.get()}) {
    builder.RegisterService(service);
  }
  if (blob_access_service_) builder.RegisterService(blob_access_service_.get());
  builder.RegisterService(&dashboard_service_);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  server_->GetHealthCheckService()->SetServingStatus(true);
  spdlog::info("coordinator serving on {} (port {}), data in {}", options.listen, port_, options.data_dir);
  if (!options.port_file.empty()) {
    if (absl::Status s = WriteFile(options.port_file, absl::StrCat(port_, "\n")); !s.ok()) return s;
  }
  if (absl::Status s = StartHttp(options); !s.ok()) return s;
  ticker_ = std::thread([this]() {
    while (!stopping_.load()) {
      jobs_->Tick();
      absl::SleepFor(absl::Milliseconds(500));
    }
  });
  return absl::OkStatus();
}

absl::Status CoordinatorServer::StartMetrics(const Options& options) {
  if (options.metrics_listen.empty()) return absl::OkStatus();
  auto metrics = MetricsServer::Start(options.metrics_listen, jobs_.get(), [this]() {
    return CollectCacheStats(blob_stack_.primary(), blob_stack_.budget(), action_cache_.get(), &cas_counters_,
                             /*count_action_results=*/false);
  }, notifier_.get(), bucket_client_ != nullptr ? &bucket_client_->metrics() : nullptr, blob_stack_.tiers.get());
  if (!metrics.ok()) return metrics.status();
  metrics_ = std::move(*metrics);
  spdlog::info("metrics at http://{}:{}/metrics", options.metrics_listen.substr(0, options.metrics_listen.rfind(':')),
               metrics_->port());
  if (!options.metrics_port_file.empty()) {
    if (absl::Status s = WriteFile(options.metrics_port_file, absl::StrCat(metrics_->port(), "\n")); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CoordinatorServer::StartHttp(const Options& options) {
  if (options.http.listen.empty()) return absl::OkStatus();
  const HttpServer::Options http = HttpOptionsOf(options);
  http_ = std::make_unique<HttpServer>();
  if (absl::Status s = http_->Init(http); !s.ok()) return s;
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(-1);
  http_api_ = std::make_unique<HttpApi>(http_.get(), server_->InProcessChannel(arguments));
  http_api_->AddRoutes();
  if (absl::Status s = http_->Start(); !s.ok()) {
    if (http.required) return s;
    spdlog::warn("no dashboard: {} (the default --http-listen; give another one)", std::string(s.message()));
    http_api_.reset();
    http_.reset();
    return absl::OkStatus();
  }
  const std::string url = absl::StrCat(http.security.cert_file.empty() ? "http" : "https", "://",
                                       http.listen.substr(0, http.listen.rfind(':')), ":", http_->port(), "/");
  dashboard_service_.set_url(url);
  spdlog::info("dashboard at {}", url);
  return absl::OkStatus();
}

absl::Status CoordinatorServer::StartJobs(const Options& options, std::optional<NotifyConfig> notify) {
  job_store_ = std::make_unique<JobStore>(db_.get());
  step_caches_ = std::make_unique<StepCacheStore>(db_.get(), RealClock::Get(), options.step_caches);
  if (absl::Status s = step_caches_->Load(); !s.ok()) return s;
  JobManager::Options jobs = options.jobs;
  jobs.step_caches = step_caches_.get();
  if (notify.has_value()) {
    notifier_ = std::make_unique<Notifier>(db_.get(), std::move(*notify), RealClock::Get());
    auto recent = job_store_->ListJobs(kNotifierRecentJobs);  // each pipeline's last outcome, for `recovered`
    if (!recent.ok()) return recent.status();
    if (absl::Status s = notifier_->Load(*recent); !s.ok()) return s;
    jobs.notifier = notifier_.get();
    spdlog::info("notifications: {} targets from {}", notifier_->Targets().size(), options.notify_config);
  }
  jobs_ = std::make_unique<JobManager>(job_store_.get(), blob_stack_.store(), blob_stack_.pinner(), action_cache_.get(),
                                       RealClock::Get(), jobs);
  if (absl::Status s = jobs_->Recover(); !s.ok()) return s;
  if (notifier_) notifier_->Start([jobs = jobs_.get()](const std::string& id) { return jobs->GetJob(id, /*with_tasks=*/true); });
  return absl::OkStatus();
}

absl::Status CoordinatorServer::StartLogRetention() {
  auto max_age = ParseRetention(options_.log_retention);
  if (!max_age.ok()) return max_age.status();
  LogRetention::Options retention;
  retention.max_age = *max_age;
  retention.max_age_text = options_.log_retention;
  retention.min_free_text = options_.min_free_disk;
  if (DiskReserve* disk = blob_stack_.reserve.get()) {
    retention.disk_low = [disk] {
      disk->Refresh();
      return disk->Low();
    };
  }
  log_retention_ = std::make_unique<LogRetention>(job_store_.get(), RealClock::Get(), retention);
  log_retention_->Start();
  return absl::OkStatus();
}

void CoordinatorServer::Wait() {
  if (server_) server_->Wait();
}

void CoordinatorServer::Shutdown() {
  if (stopping_.exchange(true)) return;
  if (server_) server_->GetHealthCheckService()->SetServingStatus(false);  // probes see it going
  if (http_) http_->Stop();  // its streams are calls into the server
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (ticker_.joinable()) ticker_.join();
  if (log_retention_) log_retention_->Stop();
  if (notifier_) notifier_->Stop();
  link_executor_.reset();  // what the streams handed over is done before anything is torn down
  watch_executor_.reset();
  metrics_.reset();
}

}  // namespace assay
