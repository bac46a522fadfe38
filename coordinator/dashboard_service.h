// Dashboard.GetDashboard: where the web dashboard is, for `assay web` (docs/dashboard.md). The
// address is set once the HTTP listener serves, after the gRPC server started.
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "assay/v1/dashboard.grpc.pb.h"

namespace assay {

class DashboardService final : public assay::v1::Dashboard::CallbackService {
 public:
  void set_url(std::string url) {
    absl::MutexLock lock(&mu_);
    url_ = std::move(url);
  }
  grpc::ServerUnaryReactor* GetDashboard(grpc::CallbackServerContext* context, const assay::v1::GetDashboardRequest*,
                                         assay::v1::DashboardInfo* response) override;

 private:
  absl::Mutex mu_;
  std::string url_ ABSL_GUARDED_BY(mu_);  // "": no dashboard
};

}  // namespace assay
