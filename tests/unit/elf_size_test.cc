// ELF section sizes against what binutils' `size` prints for the same files: the example firmware
// built for both targets by the real cross toolchains.
#include "worker/elf_size.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace assay {
namespace {
namespace fs = std::filesystem;

std::string RunCommand(const std::string& command) {
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), p)) > 0) out.append(buffer, n);
    EXPECT_EQ(::pclose(p), 0) << command << "\n" << out;
  }
  return out;
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class ElfSizeTest : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(ElfSizeTest, SectionsEqualWhatBinutilsSizePrints) {
  const auto [target, size_tool] = GetParam();
  const fs::path dir = fs::temp_directory_path() / absl::StrCat("assay-elf-", ::getpid(), "-", target);
  fs::remove_all(dir);
  fs::copy(fs::path(ASSAY_SOURCE_DIR) / "examples/karatos-mini", dir, fs::copy_options::recursive);
  for (const char* profile : {"debug", "release"}) {
    RunCommand(absl::StrCat("make -s -C ", dir.string(), " TARGET=", target, " PROFILE=", profile, " >/dev/null 2>&1"));
    const fs::path elf = dir / "out" / absl::StrCat(target, "-", profile) / "karatos.elf";
    ASSERT_TRUE(fs::exists(elf)) << elf;
    // "   text    data     bss     dec     hex filename\n   1280       0     136 ..."
    std::vector<std::string> lines = absl::StrSplit(RunCommand(absl::StrCat(size_tool, " ", elf.string())), '\n');
    ASSERT_GE(lines.size(), 2u);
    std::vector<std::string> fields = absl::StrSplit(lines[1], absl::ByAnyChar(" \t"), absl::SkipWhitespace());
    ASSERT_GE(fields.size(), 3u) << lines[1];
    auto sizes = ReadElfSizes(ReadAll(elf));
    ASSERT_TRUE(sizes.ok()) << sizes.status();
    EXPECT_EQ(absl::StrCat(sizes->text), fields[0]) << target << " " << profile;
    EXPECT_EQ(absl::StrCat(sizes->data), fields[1]) << target << " " << profile;
    EXPECT_EQ(absl::StrCat(sizes->bss), fields[2]) << target << " " << profile;
    EXPECT_GT(sizes->text, 0);
    EXPECT_EQ(sizes->type, 2) << "a linked firmware is an executable (ET_EXEC)";
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Targets, ElfSizeTest,
                         ::testing::Values(std::pair{"cortex-m3", "arm-none-eabi-size"},
                                           std::pair{"rv32imac", "riscv64-unknown-elf-size"}));

// A 64-bit ELF with a data section: this test program itself, against the host's binutils.
TEST(ElfSizeHostTest, ThisProgramsSectionsEqualWhatSizePrints) {
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::string> lines = absl::StrSplit(RunCommand(absl::StrCat("size ", self)), '\n');
  ASSERT_GE(lines.size(), 2u);
  std::vector<std::string> fields = absl::StrSplit(lines[1], absl::ByAnyChar(" \t"), absl::SkipWhitespace());
  ASSERT_GE(fields.size(), 3u);
  auto sizes = ReadElfSizes(ReadAll(self));
  ASSERT_TRUE(sizes.ok()) << sizes.status();
  EXPECT_EQ(absl::StrCat(sizes->text), fields[0]);
  EXPECT_EQ(absl::StrCat(sizes->data), fields[1]);
  EXPECT_EQ(absl::StrCat(sizes->bss), fields[2]);
  EXPECT_GT(sizes->data, 0);
  EXPECT_NE(sizes->type, 1) << "a program is not an object file";
}

// An object file is told from a linked program by its ELF type, so reports can leave it out.
TEST(ElfSizeHostTest, AnObjectFileIsRelocatable) {
  const fs::path dir = fs::temp_directory_path() / absl::StrCat("assay-elf-object-", ::getpid());
  fs::create_directories(dir);
  std::ofstream(dir / "one.c") << "int one(void) { return 1; }\n";
  RunCommand(absl::StrCat("cc -c -o ", (dir / "one.o").string(), " ", (dir / "one.c").string()));
  auto sizes = ReadElfSizes(ReadAll(dir / "one.o"));
  fs::remove_all(dir);
  ASSERT_TRUE(sizes.ok()) << sizes.status();
  EXPECT_EQ(sizes->type, 1);
  EXPECT_GT(sizes->text, 0);
}

TEST(ElfSizeHostileTest, TruncatedAndLyingFilesAreErrorsNotCrashes) {
  EXPECT_FALSE(LooksLikeElf("MZ"));
  EXPECT_FALSE(ReadElfSizes("not an elf at all").ok());
  // A 32-bit little-endian header whose section table points far beyond the file.
  std::string header(52, '\0');
  header.replace(0, 4, "\x7f" "ELF");
  header[4] = 1;
  header[5] = 1;
  header[0x20] = '\xff';
  header[0x21] = '\xff';
  header[0x2e] = 40;  // shentsize
  header[0x30] = 3;   // shnum
  auto sizes = ReadElfSizes(header);
  ASSERT_FALSE(sizes.ok());
  EXPECT_EQ(sizes.status().message(), "ELF section headers beyond the end of the file");
  header[0x2e] = 4;  // entries smaller than a section header
  EXPECT_FALSE(ReadElfSizes(header).ok());
}

}  // namespace
}  // namespace assay
