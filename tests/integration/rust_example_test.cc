// examples/karatos-rs, the Rust no_std firmware, on a real farm of two sandboxed workers: cold, every
// cell builds core with cargo -Zbuild-std and boots in QEMU; the ELF sizes the farm reports are
// what binutils' size prints; after a one-line edit of the application crate every build restores
// its step cache and compiles only the application, never core.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;
using assay::v1::Job;
using assay::v1::Task;

// text, data and bss as binutils' size (Berkeley format) prints them for `elf`.
std::vector<int64_t> BinutilsSize(const std::string& tool, const fs::path& elf) {
  RunResult size = RunCommand({tool, elf.string()});
  EXPECT_EQ(size.exit_code, 0) << size.err;
  std::smatch m;
  static const std::regex kRow(R"(\n\s*([0-9]+)\s+([0-9]+)\s+([0-9]+)\s)");
  if (!std::regex_search(size.out, m, kRow)) {
    ADD_FAILURE() << size.out;
    return {};
  }
  return {std::stoll(m[1].str()), std::stoll(m[2].str()), std::stoll(m[3].str())};
}

TEST(RustExampleTest, BuildsAndBootsInTheSandboxThenAnEditRebuildsOnlyTheApplicationFromTheStepCache) {
  ASSERT_TRUE(fs::exists("/usr/bin/cargo") && fs::exists("/usr/lib/rustlib/src/rust/library/core"))
      << "Debian's Rust toolchain is missing (scripts/install-deps.sh installs rustc-web, cargo-web, rust-web-src)";
  Farm farm;
  farm.set_executor("sandbox");
  farm.StartCoordinator();
  farm.StartWorker("w1");
  farm.StartWorker("w2");
  const fs::path tree = farm.dir() / "karatos-rs";
  fs::copy(SourceDir() + "/examples/karatos-rs", tree, fs::copy_options::recursive);
  for (const char* built : {"target", ".cargo-home", "out"}) fs::remove_all(tree / built);

  RunResult cold = farm.Cli({"submit", tree.string(), "--wait"}, absl::Minutes(25));
  ASSERT_EQ(cold.exit_code, 0) << cold.out << cold.err;
  EXPECT_TRUE(absl::StrContains(cold.out, "succeeded: 8/8 tasks done")) << cold.out;
  auto first = farm.GetJob("1");
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(absl::StrContains(farm.Log("1", "rv32imac/release/test"), "KARATOS OK: all tasks done"));

  // The sizes the farm measured are binutils' own.
  const fs::path artifacts = farm.dir() / "artifacts";
  RunResult download = farm.Cli({"artifacts", "1", "--out", artifacts.string()});
  ASSERT_EQ(download.exit_code, 0) << download.err;
  int measured = 0;
  for (const Task& t : first->tasks()) {
    if (t.step() != "build") continue;
    const std::string target = t.matrix().at("target"), profile = t.matrix().at("profile");
    const std::string path = absl::StrCat("out/", target, "-", profile, "/karatos.elf");
    const std::string tool = target == "cortex-m3" ? "/usr/bin/arm-none-eabi-size" : "/usr/bin/riscv64-unknown-elf-size";
    const std::vector<int64_t> expected = BinutilsSize(tool, artifacts / t.id() / path);
    for (const auto& size : t.sizes()) {
      if (size.path() != path) continue;
      ASSERT_EQ(expected.size(), 3u);
      EXPECT_EQ(size.text(), expected[0]) << t.id();
      EXPECT_EQ(size.data(), expected[1]) << t.id();
      EXPECT_EQ(size.bss(), expected[2]) << t.id();
      EXPECT_GT(size.text(), 1000) << t.id();
      ++measured;
    }
    EXPECT_TRUE(absl::StrContains(farm.Log("1", t.id()), ": saved, ")) << farm.Log("1", t.id());
  }
  EXPECT_EQ(measured, 4);

  // One line of the application changes: each build restores its cache and compiles the application only.
  const fs::path main_rs = tree / "app/src/main.rs";
  std::ifstream in(main_rs);
  std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(absl::StrContains(source, "Blink { counter: 0, limit: 3 }"));
  std::ofstream(main_rs) << absl::StrReplaceAll(source, {{"Blink { counter: 0, limit: 3 }", "Blink { counter: 0, limit: 4 }"}});
  RunResult warm = farm.Cli({"submit", tree.string(), "--wait"}, absl::Minutes(10));
  ASSERT_EQ(warm.exit_code, 0) << warm.out << warm.err;
  auto second = farm.GetJob("2");
  ASSERT_TRUE(second.ok());
  for (const Task& t : second->tasks()) {
    EXPECT_FALSE(t.cached()) << t.id() << ": its input changed";
    if (t.step() != "build") continue;
    const std::string log = farm.Log("2", t.id());
    EXPECT_TRUE(absl::StrContains(log, ": restored, ")) << log;
    EXPECT_FALSE(absl::StrContains(log, ": saved, ")) << "an exact hit is not saved again\n" << log;
    EXPECT_TRUE(absl::StrContains(log, "Compiling app ")) << log;
    EXPECT_FALSE(absl::StrContains(log, "Compiling core")) << log;
    EXPECT_FALSE(absl::StrContains(log, "Compiling compiler_builtins")) << log;
  }
  // The edit is in the firmware the farm booted: a restored target/ never hides a change.
  for (const char* cell : {"cortex-m3/debug", "cortex-m3/release", "rv32imac/debug", "rv32imac/release"}) {
    const std::string console = farm.Log("2", absl::StrCat(cell, "/test"));
    EXPECT_TRUE(absl::StrContains(console, "[blink] tick 3\n")) << console;
    EXPECT_TRUE(absl::StrContains(console, "KARATOS OK: all tasks done")) << console;
  }
}

}  // namespace
}  // namespace assay::testing
