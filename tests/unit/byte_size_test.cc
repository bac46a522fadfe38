#include "common/base/byte_size.h"

#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace assay {
namespace {

TEST(ByteSizeTest, SizesParseInBinaryAndDecimalUnits) {
  EXPECT_EQ(*ParseSize("4096"), 4096);
  EXPECT_EQ(*ParseSize("32KiB"), 32768);
  EXPECT_EQ(*ParseSize("32 KB"), 32000);
  EXPECT_EQ(*ParseSize("1.5MiB"), 1572864);
  EXPECT_EQ(*ParseSize("2 GiB"), int64_t{2} << 30);
  EXPECT_EQ(*ParseSize("100 bytes"), 100);
}

TEST(ByteSizeTest, BadSizesAreRefusedNamingTheText) {
  for (const char* bad : {"-1", "0", "KiB", "12 parsecs", "1e30", ""}) {
    auto parsed = ParseSize(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_TRUE(absl::StrContains(parsed.status().message(), absl::StrCat("'", bad, "'"))) << parsed.status();
  }
  EXPECT_TRUE(absl::StrContains(ParseSize("12 parsecs").status().message(), "unknown unit 'parsecs'"));
}

TEST(ByteSizeTest, WholeUnitsPrintWithoutDecimalsAndOthersWithOne) {
  EXPECT_EQ(FormatBytes(0), "0 bytes");
  EXPECT_EQ(FormatBytes(1), "1 byte");
  EXPECT_EQ(FormatBytes(1023), "1023 bytes");
  EXPECT_EQ(FormatBytes(4096), "4 KiB");
  EXPECT_EQ(FormatBytes(32 << 20), "32 MiB");
  EXPECT_EQ(FormatBytes(1536 << 10), "1.5 MiB");
  EXPECT_EQ(FormatBytes(int64_t{3} << 30), "3 GiB");
  EXPECT_EQ(FormatBytes(int64_t{5} << 40), "5 TiB");
  EXPECT_EQ(FormatBytes(int64_t{5000} << 40), "5000 TiB");  // TiB is the largest unit
  EXPECT_EQ(FormatBytes(-(4 << 20)), "-4 MiB");
  EXPECT_EQ(FormatBytes(std::numeric_limits<int64_t>::min()).front(), '-');
}

TEST(ByteSizeTest, ParseSizeReadsBackWhatFormatBytesWrites) {
  for (int64_t bytes : {int64_t{1}, int64_t{512}, int64_t{1024}, int64_t{64} << 20, int64_t{7} << 30}) {
    auto parsed = ParseSize(FormatBytes(bytes));
    ASSERT_TRUE(parsed.ok()) << FormatBytes(bytes) << ": " << parsed.status();
    EXPECT_EQ(*parsed, bytes) << FormatBytes(bytes);
  }
}

}  // namespace
}  // namespace assay
