// Which exit code the `assay` command gives a failure: the farm's own failures are not bad input.
#include "cli/exit_codes.h"

#include <gtest/gtest.h>

namespace assay::cli {
namespace {

TEST(ExitCodesTest, TheFarmsOwnFailuresHaveTheirOwnCodeNotBadInput) {
  for (const absl::Status& s : {absl::ResourceExhaustedError("coordinator CAS: disk full"),
                                absl::InternalError("oops"), absl::DataLossError("chunk missing"),
                                absl::UnknownError("?"), absl::UnimplementedError("no such rpc")}) {
    EXPECT_EQ(ExitCodeFor(s), kServerFailed) << s;
  }
  EXPECT_EQ(static_cast<int>(kServerFailed), 5);
}

TEST(ExitCodesTest, AnUnreachableCoordinatorStaysThreeAndRefusedCredentialsFour) {
  EXPECT_EQ(ExitCodeFor(absl::UnavailableError("connection refused")), 3);
  EXPECT_EQ(ExitCodeFor(absl::DeadlineExceededError("no answer")), 3);
  EXPECT_EQ(ExitCodeFor(absl::UnauthenticatedError("no token")), 4);
  EXPECT_EQ(ExitCodeFor(absl::PermissionDeniedError("scope")), 4);
}

TEST(ExitCodesTest, WhatTheUserGaveWrongIsBadInput) {
  for (const absl::Status& s : {absl::InvalidArgumentError("assay.yaml:3:5: unknown key"),
                                absl::NotFoundError("no job 9"), absl::FailedPreconditionError("not empty"),
                                absl::OutOfRangeError("offset")}) {
    EXPECT_EQ(ExitCodeFor(s), kBadInput) << s;
  }
  EXPECT_EQ(ExitCodeFor(absl::OkStatus()), kOk);
}

TEST(ExitCodesTest, TheServerFailureCodeSaysItIsTheFarmsSide) {
  EXPECT_NE(std::string(ExitCodeHint(kServerFailed)).find("farm failed on its side"), std::string::npos);
  EXPECT_EQ(std::string(ExitCodeHint(kBadInput)), "");
}

}  // namespace
}  // namespace assay::cli
