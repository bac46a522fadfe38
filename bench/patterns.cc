// What a pipeline's patterns cost on the worker: a 4 KiB console line (the harness's longest piece)
// against a dozen typical `expect`/`fail_on` patterns, none of which matches (so each scans the
// whole line), with RE2 as the harness uses it (common/line_pattern) and with std::regex as it did
// before; then the pattern of issue 22, `(a|aa)*Z`, on lines of `a`: std::regex only on short lines
// (its time grows by about 1.6x per character, so it stops after the first run over a second),
// RE2 up to the 100,000 characters of the incident. Medians of REPS rounds.
//   build/ci/bench/bench_patterns [ITERATIONS] [REPS]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "common/pipeline/line_pattern.h"

namespace assay {
namespace {

const std::vector<std::string> kPatterns = {
    "cortex-m3 (debug|release) booting", "scheduler ran [0-9]+ slices", "KARATOS OK: all tasks done",
    "^\\[report\\] sum=\\d+$",          "PANIC",                       "FAIL:",
    "(ERROR|FATAL|Oops)",                "assert(ion)? failed",         "HardFault|BusFault|UsageFault",
    "stack (overflow|smashing)",         "[0-9]+ tests?, [0-9]+ failures?", "watchdog.*reset",
};

std::string ConsoleLine() {
  std::string line;
  for (int i = 0; line.size() < 4096; ++i) {
    line += "[" + std::to_string(1000 + i) + ".250] task " + std::to_string(i % 3) + " tick " + std::to_string(i) +
            " value=0x1f3a ok; ";
  }
  line.resize(4096);
  return line;
}

template <typename Fn>
double MedianMicros(int reps, int iterations, Fn fn) {
  std::vector<double> rounds;
  for (int r = 0; r < reps; ++r) {
    const absl::Time start = absl::Now();
    for (int i = 0; i < iterations; ++i) fn();
    rounds.push_back(absl::ToDoubleMicroseconds(absl::Now() - start) / iterations);
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[rounds.size() / 2];
}

int Main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 2000;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
  const std::string line = ConsoleLine();
  std::vector<LinePattern> re2;
  std::vector<std::regex> ecma;
  for (const std::string& p : kPatterns) {
    auto compiled = LinePattern::Compile(p);
    if (!compiled.ok()) {
      std::fprintf(stderr, "%s\n", std::string(compiled.status().message()).c_str());
      return 1;
    }
    re2.push_back(std::move(*compiled));
    ecma.emplace_back(p);
  }
  int found = 0;  // kept, so that the matching is not optimised away (and checked: nothing matches)
  const double re2_us = MedianMicros(reps, iterations, [&] {
    for (const LinePattern& p : re2) found += p.FoundIn(line) ? 1 : 0;
  });
  const double ecma_us = MedianMicros(reps, std::max(1, iterations / 10), [&] {
    for (const std::regex& p : ecma) found += std::regex_search(line, p) ? 1 : 0;
  });
  std::printf("a 4096-byte line against %zu patterns (no match): RE2 %.1f us, std::regex %.1f us, std::regex/RE2 %.1fx%s\n",
              kPatterns.size(), re2_us, ecma_us, ecma_us / re2_us, found == 0 ? "" : " (SOMETHING MATCHED)");

  std::printf("'(a|aa)*Z' on a line of n 'a' (no match):\n");
  LinePattern incident = *LinePattern::Compile("(a|aa)*Z");
  const std::regex incident_ecma("(a|aa)*Z");
  found += std::regex_search(std::string(8, 'a'), incident_ecma) ? 1 : 0;  // warm up
  for (int n : {16, 20, 24, 26, 28, 30, 32}) {
    const std::string a(static_cast<size_t>(n), 'a');
    const absl::Time start = absl::Now();
    found += std::regex_search(a, incident_ecma) ? 1 : 0;
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    std::printf("  std::regex n=%-6d %10.3f ms\n", n, ms);
    if (ms > 1000) break;
  }
  for (int n : {32, 4096, 100000}) {
    const std::string a(static_cast<size_t>(n), 'a');
    const double us = MedianMicros(reps, n > 10000 ? 10 : 200, [&] { found += incident.FoundIn(a) ? 1 : 0; });
    std::printf("  RE2        n=%-6d %10.3f ms (%.1f us)\n", n, us / 1000, us);
  }
  return found == 0 ? 0 : 1;
}

}  // namespace
}  // namespace assay

int main(int argc, char** argv) { return assay::Main(argc, argv); }
