// The `requires` label of assay_tasks_queued: one string per set of required labels, and the bound
// on how many sets one scrape shows.
#include "coordinator/queued_requirements.h"

#include <gtest/gtest.h>

#include <numeric>

#include "absl/strings/str_cat.h"

namespace assay {
namespace {

std::string Key(std::initializer_list<const char*> labels) {
  google::protobuf::RepeatedPtrField<std::string> field;
  for (const char* l : labels) field.Add(l);
  return RequirementsKey(field);
}

int64_t Total(const std::map<std::string, int64_t>& counts) {
  return std::accumulate(counts.begin(), counts.end(), int64_t{0}, [](int64_t t, const auto& kv) { return t + kv.second; });
}

TEST(RequirementsKeyTest, IsTheLabelsSortedOnceEachAndJoinedWithCommas) {
  EXPECT_EQ(Key({}), "");
  EXPECT_EQ(Key({"qemu"}), "qemu");
  EXPECT_EQ(Key({"qemu", "arm"}), "arm,qemu");
  EXPECT_EQ(Key({"arm", "qemu"}), "arm,qemu");
  EXPECT_EQ(Key({"qemu", "os=linux", "qemu", "arch=x86_64"}), "arch=x86_64,os=linux,qemu");
  EXPECT_EQ(Key({"qemu-system-arm", "qemu"}), "qemu,qemu-system-arm");
}

TEST(CapRequirementSetsTest, UpToTheBoundEverySetKeepsItsOwnSample) {
  std::map<std::string, int64_t> counts;
  for (int i = 0; i < 50; ++i) counts[absl::StrCat("board=b", i)] = 1;
  EXPECT_EQ(CapRequirementSets(counts), counts);
  EXPECT_EQ(CapRequirementSets({{"", 3}, {"qemu", 2}}), (std::map<std::string, int64_t>{{"", 3}, {"qemu", 2}}));
  EXPECT_TRUE(CapRequirementSets({}).empty());
}

TEST(CapRequirementSetsTest, BeyondTheBoundTheSetsWithTheFewestTasksAreSummedUnderOther) {
  // 120 sets: set i has i + 1 queued tasks, so the 50 biggest are i = 70..119.
  std::map<std::string, int64_t> counts;
  for (int i = 0; i < 120; ++i) counts[absl::StrCat("board=b", i)] = i + 1;
  const std::map<std::string, int64_t> capped = CapRequirementSets(counts);
  EXPECT_EQ(capped.size(), kMaxRequirementSets + 1);
  for (int i = 70; i < 120; ++i) EXPECT_EQ(capped.at(absl::StrCat("board=b", i)), i + 1) << i;
  EXPECT_EQ(capped.at("other"), 70 * 71 / 2) << "tasks of sets 0..69";
  EXPECT_EQ(Total(capped), Total(counts)) << "no queued task is lost or counted twice";
}

TEST(CapRequirementSetsTest, OneSetOverTheBoundAndTiesGoByTheKeysOrder) {
  // 51 sets of one task each: the first 50 in the keys' order keep theirs, the last goes to "other".
  std::map<std::string, int64_t> counts;
  for (int i = 0; i < 51; ++i) counts[absl::StrCat("s", 100 + i)] = 1;
  const std::map<std::string, int64_t> capped = CapRequirementSets(counts);
  EXPECT_EQ(capped.size(), 51u);
  EXPECT_EQ(capped.count("s150"), 0u);
  EXPECT_EQ(capped.at("s149"), 1);
  EXPECT_EQ(capped.at("other"), 1);
  // A smaller bound, the same rule: the empty set with the most tasks stays; ties go by key.
  const std::map<std::string, int64_t> two = CapRequirementSets({{"", 9}, {"a", 1}, {"b", 1}, {"qemu", 4}}, 2);
  EXPECT_EQ(two, (std::map<std::string, int64_t>{{"", 9}, {"other", 2}, {"qemu", 4}}));
}

TEST(CapRequirementSetsTest, ASetThatIsTheLabelOtherSharesTheOverflowSample) {
  const std::map<std::string, int64_t> capped = CapRequirementSets({{"", 5}, {"other", 3}, {"x", 1}}, 2);
  EXPECT_EQ(capped, (std::map<std::string, int64_t>{{"", 5}, {"other", 4}}));
}

}  // namespace
}  // namespace assay
