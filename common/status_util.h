// absl::Status helpers and the single conversion to and from grpc::Status.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/log_format.h"

namespace assay {

grpc::Status ToGrpc(const absl::Status& status);
absl::Status FromGrpc(const grpc::Status& status);

// Adds context in front of a status message, keeping its code.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace assay

#define ASSAY_STATUS_CONCAT_INNER(a, b) a##b
#define ASSAY_STATUS_CONCAT(a, b) ASSAY_STATUS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::absl::Status _assay_status = (expr);     \
    if (!_assay_status.ok()) return _assay_status; \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(*tmp)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(ASSAY_STATUS_CONCAT(_assay_statusor_, __LINE__), lhs, expr)
