#include "common/pipeline/pipeline.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace assay {
namespace {

std::vector<std::string> CellNames(const Pipeline& p) {
  std::vector<std::string> out;
  for (const auto& c : p.cells) out.push_back(CellName(p, c));
  return out;
}

TEST(PipelineTest, ParsesStepsAndTheMatrixCrossProduct) {
  auto p = ParsePipeline(R"(
name: demo
matrix:
  target: [arm, riscv]
  profile: [debug, release]
steps:
  - id: build
    run: make ${{ matrix.target }}
    outputs: [out/]
    timeout: 90s
    env: {CC: gcc}
    requires: [toolchain]
  - id: test
    needs: build
    run: ./test
    retry: 2
    cache: false
)", "assay.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "demo");
  EXPECT_EQ(CellNames(*p), (std::vector<std::string>{"arm/debug", "arm/release", "riscv/debug", "riscv/release"}));
  ASSERT_EQ(p->steps.size(), 2u);
  EXPECT_EQ(p->steps[0].timeout, absl::Seconds(90));
  EXPECT_EQ(p->steps[0].env.at("CC"), "gcc");
  EXPECT_EQ(p->steps[0].requires_labels, std::vector<std::string>{"toolchain"});
  EXPECT_EQ(p->steps[1].needs, std::vector<std::string>{"build"});
  EXPECT_EQ(p->steps[1].retry, 2);
  EXPECT_FALSE(p->steps[1].cache);
  auto step = ExpandStep(*p, p->steps[0], p->cells[2], "assay.yaml");
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->run, "make riscv");
}

TEST(PipelineTest, ExcludeRemovesAndIncludeExtendsOrAdds) {
  auto p = ParsePipeline(R"(
matrix:
  os: [linux, bsd]
  cpu: [arm, x86]
  exclude:
    - {os: bsd, cpu: x86}
  include:
    - {os: linux, extra: yes}
    - {os: haiku, cpu: x86}
steps:
  - id: s
    run: echo
)", "p.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(CellNames(*p), (std::vector<std::string>{"linux/arm", "linux/x86", "bsd/arm", "haiku/x86"}));
  EXPECT_EQ(p->cells[0].back(), (std::pair<std::string, std::string>{"extra", "yes"}));
  EXPECT_EQ(p->cells[2].size(), 2u);
}

TEST(PipelineTest, CellNamesAreSafePathSegments) {
  auto p = ParsePipeline("matrix:\n  a: ['..', 'x/y', '.']\nsteps:\n  - id: s\n    run: x\n", "f.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(CellNames(*p), (std::vector<std::string>{"_.._", "x_y", "_._"}));
}

TEST(PipelineTest, MatrixLargerThanTheCapIsRefusedBeforeExpanding) {
  PipelineLimits limits;
  limits.max_cells = 4;
  auto p = ParsePipeline("matrix:\n  a: [1,2,3]\n  b: [1,2]\nsteps:\n  - id: s\n    run: x\n", "f.yaml", limits);
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(absl::StrContains(p.status().message(), "f.yaml:2:3: the matrix has 6 cells, more than the limit of 4"))
      << p.status();
}

struct ErrorCase {
  const char* yaml;
  const char* message;
};

class PipelineErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(PipelineErrorTest, NamesFileLineAndProblem) {
  auto p = ParsePipeline(GetParam().yaml, "assay.yaml");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(p.status().message(), GetParam().message))
      << "got: " << p.status().message() << "\nwant: " << GetParam().message;
}

INSTANTIATE_TEST_SUITE_P(
    Errors, PipelineErrorTest,
    ::testing::Values(
        ErrorCase{"- just\n- a list\n", "assay.yaml: a pipeline must be a mapping"},
        ErrorCase{"name: x\n", "assay.yaml: the pipeline has no 'steps'"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    bogus: 1\n", "assay.yaml:4:5: unknown key 'bogus' in steps[0]"},
        ErrorCase{"steps:\n  - run: x\n", "assay.yaml:2:5: steps[0] has no 'id'"},
        ErrorCase{"steps:\n  - id: a b\n    run: x\n", "assay.yaml:2:9: step id 'a b' must be letters"},
        ErrorCase{"steps:\n  - id: a\n", "assay.yaml:2:5: step 'a' has no 'run' command"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    needs: [a]\n", "step 'a' needs 'a', itself"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    retry: 99\n", "assay.yaml:4:12: step 'a'.retry must be a whole number"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    timeout: 0s\n", "step 'a'.timeout must be positive"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    outputs: [/etc]\n", "output '/etc' must be relative"},
        ErrorCase{"matrix:\n  a: []\nsteps:\n  - id: s\n    run: x\n", "assay.yaml:2:6: matrix.a must be a non-empty list"},
        ErrorCase{"matrix:\n  a: [1]\n  exclude:\n    - {b: 1}\nsteps:\n  - id: s\n    run: x\n",
                  "matrix.exclude names 'b', which is not a matrix axis"},
        ErrorCase{"matrix:\n  a: [1]\n  exclude:\n    - {a: 1}\nsteps:\n  - id: s\n    run: x\n",
                  "the matrix has no cells left after exclude"},
        ErrorCase{"steps:\n  - id: a\n    run: echo ${{ secrets.x }}\n", "unknown expression '${{ secrets.x }}'"},
        ErrorCase{"steps:\n  - id: a\n    run: echo ${{ matrix.x\n", "unterminated expression"},
        ErrorCase{"steps: [\n", "assay.yaml:2:1: invalid YAML"},
        // qemu steps
        ErrorCase{"steps:\n  - id: b\n    run: make\n    outputs: [out/]\n  - id: t\n    needs: [b]\n    qemu:\n"
                  "      system: qemu-system-arm\n      machine: virt\n      kernel: elsewhere/fw.elf\n",
                  "assay.yaml:10: step 't' qemu.kernel 'elsewhere/fw.elf' is not an output of a step it needs (b: out/)"},
        ErrorCase{"steps:\n  - id: t\n    qemu:\n      system: qemu-system-arm\n      machine: virt\n      kernel: fw.elf\n",
                  "assay.yaml:6: step 't' qemu.kernel 'fw.elf' is not an output of a step it needs (its needs declare no outputs)"},
        ErrorCase{"steps:\n  - id: t\n    qemu:\n      system: /bin/sh\n      machine: virt\n      kernel: fw.elf\n",
                  "assay.yaml:4:15: qemu.system '/bin/sh' must name an emulator like qemu-system-arm"},
        ErrorCase{"steps:\n  - id: t\n    qemu:\n      system: qemu-system-arm\n      kernel: fw.elf\n",
                  "assay.yaml:4:7: step 't'.qemu has no 'machine'"},
        ErrorCase{"steps:\n  - id: t\n    qemu: {system: qemu-system-arm, machine: virt, kernel: k, colour: red}\n",
                  "unknown key 'colour' in step 't'.qemu"},
        ErrorCase{"steps:\n  - id: t\n    run: x\n    qemu: {system: qemu-system-arm, machine: virt, kernel: k}\n",
                  "assay.yaml:4:11: step 't' has both 'run' and 'qemu'"},
        ErrorCase{"steps:\n  - id: b\n    run: x\n    outputs: [k]\n  - id: t\n    needs: [b]\n"
                  "    qemu: {system: qemu-system-arm, machine: virt, kernel: k, expect: ['(unclosed']}\n",
                  "assay.yaml:7:72: step 't'.qemu.expect: '(unclosed' is not a regular expression RE2 accepts: missing )"},
        // patterns are RE2's: what needs backtracking is refused at the pattern, saying what instead
        ErrorCase{"steps:\n  - id: b\n    run: x\n    outputs: [k]\n  - id: t\n    needs: [b]\n"
                  "    qemu:\n      system: qemu-system-arm\n      machine: virt\n      kernel: k\n"
                  "      expect:\n        - booting\n        - '(ab)-\\1'\n",
                  "assay.yaml:13:11: step 't'.qemu.expect: '(ab)-\\1' is not a regular expression RE2 accepts: "
                  "invalid escape sequence: \\1 (backreferences (\\1) are not supported"},
        ErrorCase{"steps:\n  - id: b\n    run: x\n    outputs: [k]\n  - id: t\n    needs: [b]\n"
                  "    qemu:\n      system: qemu-system-arm\n      machine: virt\n      kernel: k\n"
                  "      fail_on: ['ERROR(?! ignored)']\n",
                  "assay.yaml:11:17: step 't'.qemu.fail_on: 'ERROR(?! ignored)' is not a regular expression RE2 accepts: "
                  "invalid perl operator: (?! (lookahead ((?=...), (?!...)) is not supported"},
        ErrorCase{"steps:\n  - id: b\n    run: x\n    outputs: [k]\n  - id: t\n    needs: [b]\n"
                  "    qemu:\n      system: qemu-system-arm\n      machine: virt\n      kernel: k\n"
                  "      expect: ['(?<=id=)[0-9]+']\n",
                  "assay.yaml:11:16: step 't'.qemu.expect: '(?<=id=)[0-9]+' is not a regular expression RE2 accepts: "
                  "invalid perl operator: (?< (lookbehind"},
        // an expanded pattern is checked in its cell, at its step's line
        ErrorCase{"matrix:\n  tag: ['ok', '(oops']\nsteps:\n  - id: b\n    run: x\n    outputs: [k]\n  - id: t\n"
                  "    needs: [b]\n    qemu:\n      system: qemu-system-arm\n      machine: virt\n      kernel: k\n"
                  "      expect: ['${{ matrix.tag }} done']\n",
                  "assay.yaml:7: step 't' qemu.expect: '(oops done' is not a regular expression RE2 accepts: missing )"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    retry: {max: 2, when: [crash]}\n",
                  "assay.yaml:4:27: step 'a'.retry.when: 'crash' is not timeout or exit_code"},
        // size budgets
        ErrorCase{"steps:\n  - id: a\n    run: x\n    limits:\n      size:\n        out/fw.elf: 32 potatoes\n",
                  "assay.yaml:6:21: step 'a'.limits.size.out/fw.elf: '32 potatoes' has an unknown unit 'potatoes'"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    limits:\n      size:\n        out/fw.elf: {rom: big}\n",
                  "assay.yaml:6:27: step 'a'.limits.size.out/fw.elf.rom: 'big' is not a size like 32KiB"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    limits:\n      size:\n        out/fw.elf: {flash: 1KiB}\n",
                  "assay.yaml:6:22: unknown key 'flash' in step 'a'.limits.size.out/fw.elf"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    limits:\n      size:\n        ../fw.elf: 1KiB\n",
                  "assay.yaml:6:9: step 'a'.limits.size.../fw.elf"},
        ErrorCase{"size_regression: {warn: lots}\nsteps:\n  - id: a\n    run: x\n",
                  "assay.yaml:1:25: size_regression.warn: 'lots' is not a percentage"},
        // sharing the farm
        ErrorCase{"max_parallel: 0\nsteps:\n  - id: a\n    run: x\n",
                  "assay.yaml:1:15: max_parallel must be a whole number of tasks, at least 1"},
        ErrorCase{"fail_fast: sometimes\nsteps:\n  - id: a\n    run: x\n",
                  "assay.yaml:1:12: fail_fast must be true or false"},
        // resource limits
        ErrorCase{"steps:\n  - id: a\n    run: x\n    limits: {memory: 1KiB}\n",
                  "assay.yaml:4:22: step 'a'.limits.memory must be a size of at least 4MiB, like 512MiB or 2GiB"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    limits: {cpus: many}\n",
                  "assay.yaml:4:20: step 'a'.limits.cpus must be a number of cores from 0.01 to 1024, like 2 or 0.5"},
        // output limits
        ErrorCase{"steps:\n  - id: a\n    run: x\n    output_limit: lots\n",
                  "assay.yaml:4:19: step 'a'.output_limit must be a size of at least 1KiB, like 16MiB"},
        ErrorCase{"output_limit: 2GiB\nsteps:\n  - id: a\n    run: x\n",
                  "assay.yaml:1:15: pipeline.output_limit 2GiB is more than this coordinator allows (1 GiB, "
                  "--max-step-output-limit)"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    output_limit_fails: maybe\n",
                  "assay.yaml:4:25: step 'a'.output_limit_fails must be true or false"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    limits: {pids: 2}\n",
                  "assay.yaml:4:20: step 'a'.limits.pids must be a whole number of processes from 8 up, like 256"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    limits: {disk: 1GiB}\n",
                  "assay.yaml:4:14: unknown key 'disk' in step 'a'.limits"}));

TEST(PipelineTest, ImagesDefaultFromThePipelineAndAreCheckedPerCell) {
  auto p = ParsePipeline(R"(
image: toolchain:${{ matrix.v }}
matrix:
  v: ["12"]
steps:
  - id: build
    run: make
    network: true
    user: "1000"
  - id: own
    image: other/image@sha256:abc
    run: x
)", "assay.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  auto build = ExpandStep(*p, p->steps[0], p->cells[0], "assay.yaml");
  ASSERT_TRUE(build.ok()) << build.status();
  EXPECT_EQ(build->image, "toolchain:12");
  EXPECT_TRUE(build->network);
  EXPECT_EQ(build->user, "1000");
  auto own = ExpandStep(*p, p->steps[1], p->cells[0], "assay.yaml");
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->image, "other/image@sha256:abc");
  // Refused when the pipeline is parsed (at submit), with the step's line.
  auto bad = ParsePipeline("steps:\n  - id: bad\n    image: \"-v /:/host busybox\"\n    run: x\n", "assay.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "assay.yaml:2: step 'bad' image: '-v /:/host busybox' is not an image reference "
                                    "like debian:12 or registry.example/toolchain@sha256:...");
  auto no_image = ParsePipeline("steps:\n  - id: a\n    run: x\n    network: true\n", "assay.yaml");
  ASSERT_FALSE(no_image.ok());
  EXPECT_TRUE(absl::StrContains(no_image.status().message(), "network and user apply to steps with an image"))
      << no_image.status();
}

TEST(PipelineTest, ResourceLimitsParse) {
  auto p = ParsePipeline("steps:\n  - id: a\n    run: x\n    limits: {cpus: 1.5, memory: 512MiB, pids: 256}\n",
                         "assay.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->steps[0].cpus, 1.5);
  EXPECT_EQ(p->steps[0].memory_bytes, 512LL << 20);
  EXPECT_EQ(p->steps[0].pids, 256);
}

TEST(PipelineTest, AStepsOutputLimitIsItsOwnThePipelinesOrTheCoordinatorsDefault) {
  PipelineLimits limits;
  limits.default_output_limit = 64 << 20;
  limits.max_output_limit = 256 << 20;
  const char* yaml =
      "output_limit: 16MiB\noutput_limit_fails: true\nsteps:\n  - id: a\n    run: x\n"
      "  - id: b\n    run: x\n    output_limit: 128MiB\n    output_limit_fails: false\n";
  auto p = ParsePipeline(yaml, "assay.yaml", limits);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->steps[0].output_limit, 16 << 20);
  EXPECT_TRUE(p->steps[0].output_limit_fails);
  EXPECT_EQ(p->steps[1].output_limit, 128 << 20);
  EXPECT_FALSE(p->steps[1].output_limit_fails);
  auto plain = ParsePipeline("steps:\n  - id: a\n    run: x\n", "assay.yaml", limits);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->steps[0].output_limit, 64 << 20);
  EXPECT_FALSE(plain->steps[0].output_limit_fails);
  limits.max_output_limit = 32 << 20;  // the pipeline's 16MiB fits, step b's 128MiB does not
  auto refused = ParsePipeline(yaml, "assay.yaml", limits);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(),
            "assay.yaml:8:19: step 'b'.output_limit 128MiB is more than this coordinator allows (32 MiB, "
            "--max-step-output-limit)");
}

TEST(PipelineTest, QemuStepsAreParsedAndExpandedPerCell) {
  auto p = ParsePipeline(R"(
matrix:
  target: [cortex-m3]
  include:
    - {target: cortex-m3, emulator: qemu-system-arm, machine: lm3s6965evb}
steps:
  - id: build
    run: make
    outputs: ["out/${{ matrix.target }}/"]
    limits:
      size:
        "out/${{ matrix.target }}/fw.elf": {text: 24KiB, rom: 28KiB, ram: 8KiB}
        out/${{ matrix.target }}/fw.bin: 32KiB
  - id: test
    needs: [build]
    retry: {max: 2, when: [timeout]}
    qemu:
      system: ${{ matrix.emulator }}
      machine: ${{ matrix.machine }}
      kernel: out/${{ matrix.target }}/fw.elf
      args: [-bios, none]
      expect: ["${{ matrix.target }} booting", "OK"]
      ordered: false
      fail_on: [panic]
      exit_code: 3
)", "assay.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  const Step& test = p->steps[1];
  ASSERT_TRUE(test.qemu.has_value());
  EXPECT_EQ(test.timeout, absl::Seconds(30)) << "a qemu step's default timeout";
  EXPECT_TRUE(test.qemu->semihosting) << "on by default";
  EXPECT_FALSE(test.qemu->ordered);
  EXPECT_EQ(test.qemu->exit_code, 3);
  EXPECT_EQ(test.retry, 2);
  EXPECT_EQ(test.retry_when, std::vector<std::string>{"timeout"});
  auto expanded = ExpandStep(*p, test, p->cells[0], "assay.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(expanded->qemu->system, "qemu-system-arm");
  EXPECT_EQ(expanded->qemu->expect[0], "cortex-m3 booting");
  EXPECT_EQ(QemuCommandLine(*expanded->qemu),
            (std::vector<std::string>{"qemu-system-arm", "-M", "lm3s6965evb", "-nographic", "-monitor", "none",
                                      "-serial", "stdio", "-semihosting-config", "enable=on,target=native",
                                      "-kernel", "out/cortex-m3/fw.elf", "-bios", "none"}));
  EXPECT_EQ(expanded->run, "qemu-system-arm -M lm3s6965evb -nographic -monitor none -serial stdio "
                           "-semihosting-config enable=on,target=native -kernel out/cortex-m3/fw.elf -bios none");
  auto build = ExpandStep(*p, p->steps[0], p->cells[0], "assay.yaml");
  ASSERT_TRUE(build.ok());
  ASSERT_EQ(build->size_budgets.size(), 2u);
  EXPECT_EQ(build->size_budgets[0].path, "out/cortex-m3/fw.elf");
  EXPECT_EQ(build->size_budgets[0].text, 24 * 1024);
  EXPECT_EQ(build->size_budgets[0].rom, 28 * 1024);
  EXPECT_EQ(build->size_budgets[0].ram, 8 * 1024);
  EXPECT_EQ(build->size_budgets[0].file, 0);
  EXPECT_EQ(build->size_budgets[1].file, 32 * 1024);
}

TEST(PipelineTest, PercentagesParse) {
  EXPECT_DOUBLE_EQ(*ParsePercent("1%"), 1.0);
  EXPECT_DOUBLE_EQ(*ParsePercent("0.5 %"), 0.5);
  EXPECT_FALSE(ParsePercent("-2%").ok());
}

// A qemu step whose expect holds `items` (YAML flow list items, already quoted).
std::string QemuWithExpect(const std::string& items) {
  return "steps:\n  - id: b\n    run: x\n    outputs: [k]\n  - id: t\n    needs: [b]\n    qemu:\n"
         "      system: qemu-system-arm\n      machine: virt\n      kernel: k\n      expect: [" + items + "]\n";
}

TEST(PipelinePatternTest, ThePatternsUsersWriteForECMAScriptStillParse) {
  for (const char* pattern : {R"('scheduler ran [0-9]+ slices')", R"('^\[report\] sum=\d{2}$')",
                              R"('(booting|starting) [[:alnum:]_-]+')", R"('\bOK\b.*\s\w+\x41')",
                              R"('a{2,}|b{1,3}|c?d*?')", R"('\/dev\/ttyS0')"}) {
    auto p = ParsePipeline(QemuWithExpect(pattern), "assay.yaml");
    EXPECT_TRUE(p.ok()) << pattern << ": " << p.status();
  }
}

TEST(PipelinePatternTest, APatternLongerThan1KiBIsRefusedAtItsLine) {
  auto ok = ParsePipeline(QemuWithExpect("'" + std::string(1024, 'a') + "'"), "assay.yaml");
  EXPECT_TRUE(ok.ok()) << ok.status();
  auto p = ParsePipeline(QemuWithExpect("'" + std::string(1025, 'a') + "'"), "assay.yaml");
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(absl::StrContains(p.status().message(), "assay.yaml:11:16: step 't'.qemu.expect: the pattern 'aaaa"))
      << p.status();
  EXPECT_TRUE(absl::StrContains(p.status().message(), "is 1025 bytes long, more than the 1024 a pattern may have"))
      << p.status();
}

TEST(PipelinePatternTest, MoreThan64PatternsInAStepAreRefused) {
  std::string items;
  for (int i = 0; i < 64; ++i) items += (i > 0 ? ", " : "") + std::string("line") + std::to_string(i);
  auto ok = ParsePipeline(QemuWithExpect(items), "assay.yaml");
  EXPECT_TRUE(ok.ok()) << ok.status();
  auto p = ParsePipeline(QemuWithExpect(items + ", one-too-many"), "assay.yaml");
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(absl::StrContains(p.status().message(),
                                "assay.yaml:8:7: step 't'.qemu has 65 expect and fail_on patterns, more than the 64 allowed"))
      << p.status();
}

TEST(ExpressionTest, ExpandsMatrixValuesAndToleratesSpaces) {
  MatrixCell cell = {{"target", "arm"}, {"profile", "debug"}};
  EXPECT_EQ(ExpandExpressions("make ${{matrix.target}}-${{  matrix.profile }}", cell, "p").value(), "make arm-debug");
  EXPECT_EQ(ExpandExpressions("no expressions", cell, "p").value(), "no expressions");
  EXPECT_EQ(ExpandExpressions("${{ pipeline.name }}", cell, "demo").value(), "demo");
  EXPECT_FALSE(ExpandExpressions("${{ matrix.cpu }}", cell, "p").ok());
}

}  // namespace
}  // namespace assay
