// `assay cache list` and `assay cache delete`: the farm's step caches (docs/pipeline.md, "Caches").
#include <iostream>

#include <grpcpp/client_context.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/render.h"
#include "common/base/byte_size.h"

namespace assay::cli {

int CacheList(Client& client, const std::string& pipeline, bool json) {
  assay::v1::ListStepCachesRequest request;
  request.set_pipeline(pipeline);
  assay::v1::ListStepCachesResponse response;
  absl::Status status = client.Call("ListStepCaches", [&](grpc::ClientContext* c) {
    return client.jobs->ListStepCaches(c, request, &response);
  });
  if (!status.ok()) return ReportError(status);
  if (json) {
    std::cout << ToJson(response) << "\n";
    return kOk;
  }
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  std::cout << absl::StrFormat("%-16s %-10s %10s %8s %-10s %-10s %s\n", "PIPELINE", "BRANCH", "SIZE", "FILES", "SAVED",
                               "USED", "KEY");
  for (const auto& c : response.caches()) {
    std::cout << absl::StrFormat("%-16s %-10s %10s %8d %-10s %-10s %s\n", c.pipeline(), c.branch(), FormatBytes(c.bytes()),
                                 c.files(), FormatSeconds(now_ms - c.created_at_ms()) + " ago",
                                 FormatSeconds(now_ms - c.last_used_at_ms()) + " ago", c.key());
  }
  std::cout << response.caches_size() << " cache(s), " << FormatBytes(response.total_bytes()) << " of "
            << FormatBytes(response.budget_bytes()) << " (--step-cache-budget)\n";
  return kOk;
}

int CacheDelete(Client& client, const std::string& key, bool all, const std::string& pipeline,
                const std::string& branch) {
  if (key.empty() == !all) {
    return ReportError(absl::InvalidArgumentError("name a cache key, or --all (not both)"));
  }
  assay::v1::DeleteStepCachesRequest request;
  request.set_key(key);
  request.set_all(all);
  request.set_pipeline(pipeline);
  request.set_branch(branch);
  assay::v1::DeleteStepCachesResponse response;
  absl::Status status = client.Call("DeleteStepCaches", [&](grpc::ClientContext* c) {
    return client.jobs->DeleteStepCaches(c, request, &response);
  });
  if (!status.ok()) return ReportError(status);
  if (response.deleted() == 0 && !all) {
    return ReportError(absl::NotFoundError(absl::StrCat("no cache has the key '", key, "'",
                                                        pipeline.empty() ? "" : absl::StrCat(" in ", pipeline))));
  }
  std::cout << "deleted " << response.deleted() << " cache(s)\n";
  return kOk;
}

}  // namespace assay::cli
