// `assay web`'s address: a coordinator listening on every address names none, so the CLI puts in the
// host it reaches the coordinator at.
#include <gtest/gtest.h>

#include "cli/commands.h"

namespace assay::cli {
namespace {

TEST(DashboardUrlTest, AWildcardHostBecomesTheCoordinatorsHost) {
  EXPECT_EQ(DashboardUrl("http://0.0.0.0:7180/", "farm.example:7171"), "http://farm.example:7180/");
  EXPECT_EQ(DashboardUrl("https://[::]:443/", "10.0.0.5:7171"), "https://10.0.0.5:443/");
  EXPECT_EQ(DashboardUrl("http://127.0.0.1:7180/", "farm.example:7171"), "http://127.0.0.1:7180/");
}

}  // namespace
}  // namespace assay::cli
