#include "common/console_harness.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace assay {
namespace {

assay::v1::QemuSpec Spec(std::vector<std::string> expect, std::vector<std::string> fail_on = {}, bool ordered = true,
                         bool semihosting = true, int exit_code = 0) {
  assay::v1::QemuSpec s;
  for (auto& e : expect) s.add_expect(e);
  for (auto& f : fail_on) s.add_fail_on(f);
  s.set_ordered(ordered);
  s.set_semihosting(semihosting);
  s.set_exit_code(exit_code);
  return s;
}

std::unique_ptr<ConsoleHarness> Make(const assay::v1::QemuSpec& spec) {
  auto h = ConsoleHarness::Create(spec);
  EXPECT_TRUE(h.ok()) << h.status();
  return std::move(*h);
}

TEST(ConsoleHarnessTest, ExpectationsMetInOrderAcrossSplitWritesAndTheGuestExitsCleanly) {
  auto h = Make(Spec({"booting", "sum=[0-9]+", "OK"}));
  EXPECT_FALSE(h->Feed("fw boo"));
  EXPECT_FALSE(h->Feed("ting\r\n[report] sum=4"));
  EXPECT_FALSE(h->Feed("5\nKARATOS OK\n"));
  EXPECT_EQ(h->met(), 3u);
  auto v = h->Judge(0, false, false);
  EXPECT_TRUE(v.passed) << v.message;
}

TEST(ConsoleHarnessTest, AStderrWriteInTheMiddleOfAConsoleLineDoesNotBreakIt) {
  auto h = Make(Spec({"cortex-m3 debug booting", "KARATOS OK"}));
  h->Feed("karatos-mini cortex-m3 de", 0);
  h->Feed("Timer with period zero, disabling\n", 1);  // QEMU's own warning, on stderr
  h->Feed("bug booting\nKARATOS OK\n", 0);
  auto v = h->Judge(0, false, false);
  EXPECT_TRUE(v.passed) << v.message;
}

TEST(ConsoleHarnessTest, OrderMattersUnlessOrderedIsFalse) {
  auto ordered = Make(Spec({"first", "second"}));
  ordered->Feed("second\nfirst\n");
  auto v = ordered->Judge(0, false, false);
  EXPECT_FALSE(v.passed);
  EXPECT_TRUE(absl::StrContains(v.message, "expectation 2 of 2 'second' never appeared (1 of 2 met)")) << v.message;

  auto any_order = Make(Spec({"first", "second"}, {}, /*ordered=*/false));
  any_order->Feed("second\nfirst\n");
  EXPECT_TRUE(any_order->Judge(0, false, false).passed);
}

TEST(ConsoleHarnessTest, AMissingExpectationIsNamedWithTheLastLines) {
  auto h = Make(Spec({"booting", "KARATOS OK"}));
  h->Feed("booting\nline a\nline b\n");
  auto v = h->Judge(0, false, false);
  EXPECT_FALSE(v.passed);
  EXPECT_TRUE(absl::StrContains(v.message, "expectation 2 of 2 'KARATOS OK' never appeared")) << v.message;
  EXPECT_TRUE(absl::StrContains(v.message, "last lines of output:\nbooting\nline a\nline b")) << v.message;
}

TEST(ConsoleHarnessTest, AFailOnPatternEndsTheRunAtOnce) {
  auto h = Make(Spec({"OK"}, {"PANIC: .*"}));
  EXPECT_FALSE(h->Feed("booting\n"));
  EXPECT_TRUE(h->Feed("PANIC: stack overflow\n")) << "the worker must stop the emulator now";
  auto v = h->Judge(143, false, true);
  EXPECT_FALSE(v.passed);
  EXPECT_TRUE(absl::StrContains(v.message, "fail_on pattern 'PANIC: .*' matched: PANIC: stack overflow")) << v.message;
}

TEST(ConsoleHarnessTest, TheGuestsExitCodeIsChecked) {
  auto h = Make(Spec({"OK"}));
  h->Feed("OK\n");
  auto v = h->Judge(3, false, false);
  EXPECT_FALSE(v.passed);
  EXPECT_TRUE(absl::StrContains(v.message, "the guest exited with code 3, expected 0")) << v.message;

  auto expects_three = Make(Spec({"FAIL"}, {}, true, true, /*exit_code=*/3));
  expects_three->Feed("FAIL: sum\n");
  EXPECT_TRUE(expects_three->Judge(3, false, false).passed);
}

TEST(ConsoleHarnessTest, ATimeoutNamesWhatWasAwaited) {
  auto h = Make(Spec({"booting", "OK"}));
  h->Feed("booting\nhanging on purpose\n");
  auto v = h->Judge(137, /*timed_out=*/true, false);
  EXPECT_FALSE(v.passed);
  EXPECT_TRUE(absl::StrContains(v.message, "timed out waiting for expectation 2 of 2 'OK'")) << v.message;

  auto met = Make(Spec({"OK"}));
  met->Feed("OK\n");
  EXPECT_TRUE(absl::StrContains(met->Judge(137, true, false).message, "every expectation was met but the guest did not exit"));
}

TEST(ConsoleHarnessTest, WithoutSemihostingTheRunEndsOnceEveryExpectationIsMet) {
  auto h = Make(Spec({"a", "b"}, {}, true, /*semihosting=*/false));
  EXPECT_FALSE(h->Feed("a\n"));
  EXPECT_TRUE(h->Feed("b\n"));
  EXPECT_TRUE(h->Judge(143, false, /*stopped=*/true).passed);
}

TEST(ConsoleHarnessTest, ABadPatternIsAnError) {
  auto h = ConsoleHarness::Create(Spec({"(unclosed"}));
  ASSERT_FALSE(h.ok());
  EXPECT_TRUE(absl::StrContains(h.status().message(), "'(unclosed' is not a regular expression")) << h.status();
}

TEST(ConsoleHarnessTest, AnEndlessLineIsJudgedInPieces) {
  auto h = Make(Spec({"needle"}));
  h->Feed(std::string(3 * ConsoleHarness::kMaxLineBytes, 'x'));
  h->Feed("needle");
  EXPECT_TRUE(h->Judge(0, false, false).passed);
}

}  // namespace
}  // namespace assay
