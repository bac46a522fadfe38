// The coordinator's CAS in an S3-compatible bucket (--cas-store): the client, the bucket's store
// with its index in the coordinator's database, and the stack's slow tier over it.
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/base/log_format.h"
#include "common/bucket/bucket_blob_store.h"
#include "coordinator/families.h"
#include "coordinator/server.h"

namespace assay {
namespace {

// A blob of at most this many bytes read from the bucket is kept in the hot tier.
constexpr int64_t kHotFillLimit = int64_t{64} << 20;

S3ClientOptions BucketClientOptions() {
  S3ClientOptions options;
  options.max_connections = 32;
  options.retry.attempt_timeout = absl::Seconds(60);  // one 8 MiB part, or a ranged read, on a slow link
  // A bucket that does not answer fails the request within this (UNAVAILABLE), not a client's deadline.
  options.retry.overall_timeout = absl::Seconds(10);
  return options;
}

}  // namespace

absl::Status CoordinatorServer::AddBucket(const Options& options, EvictingBlobStore::Options eviction) {
  auto location = ParseS3Location(options.cas_store);
  if (!location.ok()) return absl::InvalidArgumentError(absl::StrCat("--cas-store: ", location.status().message()));
  auto credentials = options.cas_credentials.empty() ? S3CredentialsFromEnvironment()
                                                     : S3CredentialsFromFile(options.cas_credentials);
  if (!credentials.ok()) {
    return absl::Status(credentials.status().code(), absl::StrCat("--cas-store: ", credentials.status().message()));
  }
  spdlog::info("CAS in bucket {} (credentials {}); hot tier of {} bytes on {}", location->ToString(),
               credentials->Describe(), options.hot_tier_bytes, options.data_dir);
  bucket_client_ = std::make_unique<S3Client>(*std::move(location), *std::move(credentials), BucketClientOptions());
  BucketBlobStore::Options bucket_options;
  bucket_options.index = CoordinatorFamily::kBucketIndex;
  auto bucket = BucketBlobStore::Open(bucket_client_.get(), db_.get(), RealClock::Get(), bucket_options);
  if (!bucket.ok()) {
    return absl::Status(bucket.status().code(), absl::StrCat("--cas-store ", bucket_client_->location().ToString(), ": ",
                                                             bucket.status().message()));
  }
  bucket_rebuilt_ = (*bucket)->index_rebuilt();
  bucket_ = bucket->get();
  if (options.cas_direct_access) {
    S3Location for_clients = bucket_client_->location();
    if (!options.cas_direct_endpoint.empty()) {
      auto other = ParseS3Location(absl::StrCat("s3://", for_clients.bucket, "?endpoint=", options.cas_direct_endpoint,
                                                "&region=", for_clients.region));
      if (!other.ok()) return absl::InvalidArgumentError(absl::StrCat("--cas-direct-endpoint: ", other.status().message()));
      for_clients.endpoint = other->endpoint;
    }
    spdlog::info("clients read and write blobs in the bucket itself at {}", for_clients.endpoint);
    blob_access_service_ = std::make_unique<BlobAccessService>(bucket_, std::move(for_clients),
                                                               bucket_client_->credentials(), &cas_counters_,
                                                               RealClock::Get());
  }
  AddSlowTier(&blob_stack_, std::move(*bucket), eviction, kHotFillLimit);
  return absl::OkStatus();
}

absl::Status CoordinatorServer::RestoreActionResults() {
  if (!bucket_rebuilt_) return absl::OkStatus();
  auto restored = action_cache_->RestoreFromBucket();
  if (!restored.ok()) return restored.status();
  if (*restored > 0) spdlog::info("action cache: {} results restored from the bucket", *restored);
  return absl::OkStatus();
}

}  // namespace assay
