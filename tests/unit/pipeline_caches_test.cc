// `caches:` in the pipeline file: parsed on steps and the pipeline, expanded per cell (hashFiles
// included), and every bad key or path refused with FILE:LINE before a job exists.
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "common/pipeline/pipeline.h"

namespace assay {
namespace {

constexpr char kCargo[] = R"(name: fw
matrix:
  target: [arm, riscv]
steps:
  - id: build
    run: cargo build
    caches:
      - key: cargo-${{ matrix.target }}-${{ hashFiles('Cargo.lock', "rust-toolchain.toml") }}
        restore_keys: [cargo-${{ matrix.target }}-]
        paths: [target/, .cargo-home/]
  - id: test
    needs: [build]
    run: ./test
)";

TEST(PipelineCachesTest, AStepsCachesAreExpandedPerCellWithHashFilesComputedByTheCaller) {
  auto p = ParsePipeline(kCargo, "assay.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->steps[0].caches.size(), 1u);
  EXPECT_EQ(p->steps[0].caches[0].line, 8);
  EXPECT_TRUE(p->steps[1].caches.empty());
  std::vector<std::string> asked;
  const HashFilesFn hash = [&asked](const std::vector<std::string>& patterns) -> absl::StatusOr<std::string> {
    asked = patterns;
    return std::string("abc123");
  };
  auto step = ExpandStep(*p, p->steps[0], p->cells[1], "assay.yaml", &hash);
  ASSERT_TRUE(step.ok()) << step.status();
  ASSERT_EQ(step->caches.size(), 1u);
  EXPECT_EQ(step->caches[0].key, "cargo-riscv-abc123");
  EXPECT_EQ(step->caches[0].restore_keys, std::vector<std::string>{"cargo-riscv-"});
  EXPECT_EQ(step->caches[0].paths, (std::vector<std::string>{"target/", ".cargo-home/"}));
  EXPECT_EQ(asked, (std::vector<std::string>{"Cargo.lock", "rust-toolchain.toml"}));
}

TEST(PipelineCachesTest, ThePipelinesCachesApplyToRunStepsWithoutTheirOwnButNotToQemuSteps) {
  auto p = ParsePipeline(R"(name: fw
caches:
  - {key: deps, paths: [deps/]}
steps:
  - id: build
    run: make
    outputs: [fw.elf]
  - id: own
    run: make
    caches: []
  - id: boot
    needs: [build]
    qemu: {system: qemu-system-arm, machine: lm3s6965evb, kernel: fw.elf, expect: [OK]}
)", "assay.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->steps[0].caches.size(), 1u);
  EXPECT_EQ(p->steps[0].caches[0].key, "deps");
  EXPECT_TRUE(p->steps[1].caches.empty());
  EXPECT_TRUE(p->steps[2].caches.empty());
}

// The error for `caches_yaml` put in place of the build step's caches.
std::string ErrorFor(const std::string& step_extra) {
  const std::string text = "name: fw\nsteps:\n  - id: build\n    run: make\n" + step_extra;
  auto p = ParsePipeline(text, "assay.yaml");
  return p.ok() ? "(accepted)" : std::string(p.status().message());
}

TEST(PipelineCachesTest, BadKeysAndPathsAreRefusedWithTheFileAndLine) {
  EXPECT_EQ(ErrorFor("    caches:\n      - {key: k, paths: [../up]}\n"),
            "assay.yaml:6:25: step 'build'.caches[0] path '../up' leaves its directory (..)");
  EXPECT_EQ(ErrorFor("    caches:\n      - {key: k, paths: [/etc]}\n"),
            "assay.yaml:6:25: step 'build'.caches[0] path '/etc' must be relative");
  EXPECT_EQ(ErrorFor("    caches:\n      - {key: k, paths: [.]}\n"),
            "assay.yaml:6: step 'build' caches[0].paths: '.' is the whole work directory: name the folders to keep");
  EXPECT_EQ(ErrorFor("    caches:\n      - {key: ../k, paths: [t/]}\n"),
            "assay.yaml:6: step 'build' caches[0].key: the key '../k' must not hold a '..' segment");
  EXPECT_EQ(ErrorFor("    caches:\n      - {key: 'a b', paths: [t/]}\n"),
            "assay.yaml:6: step 'build' caches[0].key: the key 'a b' may hold only printable characters without "
            "spaces");
  EXPECT_EQ(ErrorFor("    caches:\n      - {key: \"${{ hashFiles('../x') }}\", paths: [t/]}\n"),
            "assay.yaml:6: step 'build' caches[0].key: hashFiles() pattern '../x' leaves its directory (..)");
  EXPECT_EQ(ErrorFor("    caches:\n      - {key: k, paths: [t/], save: true}\n"),
            "assay.yaml:6:31: unknown key 'save' in step 'build'.caches[0] (expected one of: key, restore_keys, "
            "paths)");
  EXPECT_EQ(ErrorFor("    caches:\n      - {key: k}\n"), "assay.yaml:6:9: step 'build'.caches[0] has no 'paths'");
  EXPECT_EQ(ErrorFor("    caches: {key: k}\n"),
            "assay.yaml:5:13: step 'build'.caches must be a list of {key, restore_keys, paths}");
}

TEST(PipelineCachesTest, CacheGivenAListPointsToCaches) {
  const std::string error = ErrorFor("    cache:\n      - {key: k, paths: [t/]}\n");
  EXPECT_TRUE(absl::StartsWith(error, "assay.yaml:6:7: step 'build'.cache is true or false")) << error;
  EXPECT_TRUE(absl::StrContains(error, "'caches:'")) << error;
}

TEST(PipelineCachesTest, HashFilesOutsideACacheKeyAndCachesOnAQemuStepAreRefused) {
  EXPECT_EQ(ErrorFor("    env: {X: \"${{ hashFiles('a') }}\"}\n"),
            "assay.yaml:3: step 'build' env.X: hashFiles() is allowed only in a cache's key and restore_keys");
  auto qemu = ParsePipeline(R"(name: fw
steps:
  - id: boot
    qemu: {system: qemu-system-arm, machine: virt, kernel: fw.elf, expect: [OK]}
    caches: [{key: k, paths: [t/]}]
)", "assay.yaml");
  ASSERT_FALSE(qemu.ok());
  EXPECT_EQ(qemu.status().message(),
            "assay.yaml:5:13: step 'boot' is a qemu step: caches are for steps that run a command");
}

TEST(PipelineCachesTest, HashFilesArguments) {
  EXPECT_EQ(ParseHashFilesArguments("'a', \"b/**\" ,'c'").value(), (std::vector<std::string>{"a", "b/**", "c"}));
  EXPECT_FALSE(ParseHashFilesArguments("").ok());
  EXPECT_FALSE(ParseHashFilesArguments("a").ok());
  EXPECT_FALSE(ParseHashFilesArguments("'a' 'b'").ok());
  EXPECT_FALSE(ParseHashFilesArguments("'a").ok());
  EXPECT_FALSE(ParseHashFilesArguments("'/etc/passwd'").ok());
}

}  // namespace
}  // namespace assay

namespace assay {
namespace {

TEST(PipelineCachesTest, ExpressionsInAFlowListNeedNoQuotesAndColumnsStayRight) {
  auto p = ParsePipeline(R"(name: fw
matrix:
  target: [arm]
steps:
  - id: build
    run: echo ${{ matrix.target }}
    caches:
      - {key: "k-${{ hashFiles('a', 'b') }}", restore_keys: [k-${{ matrix.target }}-, k-], paths: [t/]}
    timeout: ${{ matrix.target }}
)", "assay.yaml");
  ASSERT_FALSE(p.ok());
  // The error is the timeout's, at its own column: the caches line before it parsed.
  EXPECT_EQ(p.status().message(),
            "assay.yaml:9:14: step 'build'.timeout '${{ matrix.target }}' is not a duration like 30s, 5m or 1h30m");
  auto ok = ParsePipeline(R"(name: fw
matrix:
  target: [arm]
steps:
  - id: build
    run: echo ${{ matrix.target }} $((1+2))
    caches:
      - {key: "k-${{ hashFiles('a', 'b') }}", restore_keys: [k-${{ matrix.target }}-, k-], paths: [t/]}
)", "assay.yaml");
  ASSERT_TRUE(ok.ok()) << ok.status();
  auto step = ExpandStep(*ok, ok->steps[0], ok->cells[0], "assay.yaml");
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(step->run, "echo arm $((1+2))");
  EXPECT_EQ(step->caches[0].restore_keys, (std::vector<std::string>{"k-arm-", "k-"}));
  EXPECT_EQ(step->caches[0].key, "k-" + std::string(64, '0')) << "hashFiles' stand-in while parsing";
}

}  // namespace
}  // namespace assay

namespace assay {
namespace {

TEST(PipelineCachesTest, TextThatLooksLikeAShieldedExpressionIsLeftAsItIs) {
  auto p = ParsePipeline("name: fw\nsteps:\n  - id: a\n    run: echo '$((@99999999999999999999999999@))' '$((@7@))'\n",
                         "assay.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->steps[0].run, "echo '$((@99999999999999999999999999@))' '$((@7@))'");
}

}  // namespace
}  // namespace assay

namespace assay {
namespace {

TEST(PipelineCachesTest, AVeryLongPlaceholderLookalikeIsScannedWithoutRecursion) {
  const std::string long_text = "$((@1@" + std::string(900000, '_') + "))";
  auto p = ParsePipeline("name: fw\nsteps:\n  - id: a\n    run: \"${{ matrix.x }}" + long_text + "\"\n", "assay.yaml");
  ASSERT_FALSE(p.ok());  // matrix.x is unknown: the expression came back, the lookalike stayed text
  EXPECT_TRUE(absl::StrContains(p.status().message(), "unknown matrix variable 'x'")) << p.status().message().substr(0, 200);
}

}  // namespace
}  // namespace assay
