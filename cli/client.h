// The CLI's connection to a coordinator.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>

#include "assay/v1/admin.grpc.pb.h"
#include "assay/v1/jobs.grpc.pb.h"
#include "cli/exit_codes.h"
#include "common/base/retrier.h"
#include "common/remote/cas_client.h"

namespace assay::cli {

struct Client {
  Client(const std::string& address, std::shared_ptr<grpc::ChannelCredentials> credentials, RetryPolicy retry = {});
  // One unary call under the retry policy, with a deadline on each try.
  absl::Status Call(absl::string_view what, const std::function<grpc::Status(grpc::ClientContext*)>& call);

  Retrier retrier;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<assay::v1::Jobs::Stub> jobs;
  std::unique_ptr<assay::v1::Admin::Stub> admin;
  std::unique_ptr<CasClient> cas;
};

// Prints "error: ..." and returns the exit code that fits the status (exit_codes.h).
int ReportError(const absl::Status& status);

}  // namespace assay::cli
