// absl::Status helpers and the single conversion to and from grpc::Status.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/base/log_format.h"

namespace assay {

grpc::Status ToGrpc(const absl::Status& status);
absl::Status FromGrpc(const grpc::Status& status);

// Adds context in front of a status message, keeping its code.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace assay
