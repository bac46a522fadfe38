#include "common/digest/digest.h"

#include <gtest/gtest.h>

#include "common/base/file_util.h"

namespace assay {
namespace {

TEST(DigestTest, OfBytesIsSha256AndSize) {
  Digest d = Digest::OfBytes("abc");
  EXPECT_EQ(d.hash(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(d.size(), 3);
  EXPECT_EQ(Digest().hash(), Digest::OfBytes("").hash());
  EXPECT_TRUE(Digest().empty_blob());
}

TEST(DigestTest, RejectsMalformedHashesAndSizes) {
  EXPECT_FALSE(Digest::Create("abc", 3).ok());
  EXPECT_FALSE(Digest::Create(std::string(64, 'A'), 3).ok()) << "upper-case hex is not canonical";
  EXPECT_FALSE(Digest::Create(std::string(64, 'g'), 3).ok());
  EXPECT_FALSE(Digest::Create(std::string(64, 'a'), -1).ok());
  EXPECT_FALSE(Digest::Create(std::string(64, 'a'), 0).ok()) << "size 0 is only the empty blob";
  EXPECT_TRUE(Digest::Create(std::string(64, 'a'), 5).ok());
  EXPECT_FALSE(Digest::Parse("nohash").ok());
  EXPECT_FALSE(Digest::Parse(std::string(64, 'a') + "/x").ok());
}

TEST(DigestTest, KeyRoundTripsAndSortsLikeTheDigest) {
  Digest a = Digest::OfBytes("a"), b = Digest::OfBytes("b");
  auto back = Digest::FromKey(a.Key());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, a);
  EXPECT_EQ(a < b, a.Key() < b.Key());
  EXPECT_EQ(Digest::Parse(a.ToString()).value(), a);
}

TEST(DigestTest, FileDigestMatchesBytesDigest) {
  ScopedTempDir dir;
  std::string data(3 << 20, 'x');
  data[12345] = 'y';
  ASSERT_TRUE(WriteFile(dir.path() / "f", data).ok());
  auto d = DigestFile((dir.path() / "f").string());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, Digest::OfBytes(data));
}

}  // namespace
}  // namespace assay
