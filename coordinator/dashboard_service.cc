#include "coordinator/dashboard_service.h"

namespace assay {

grpc::ServerUnaryReactor* DashboardService::GetDashboard(grpc::CallbackServerContext* context,
                                                         const assay::v1::GetDashboardRequest*,
                                                         assay::v1::DashboardInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::MutexLock lock(&mu_);
  if (url_.empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                 "this coordinator serves no dashboard (start it with --http-listen HOST:PORT)"));
    return reactor;
  }
  response->set_url(url_);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace assay
