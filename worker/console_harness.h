// The console harness of a `qemu:` step: it reads what the emulator prints, line by line, and judges
// the run as Zephyr's twister console harness and LAVA's monitors do: `expect` patterns that must
// appear (in order unless `ordered: false`), `fail_on` patterns that fail the run at once, and the
// guest's exit code. Pure logic over text and an exit status: the worker feeds it the output and
// stops the emulator when it says so.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "assay/v1/job.pb.h"
#include "common/pipeline/line_pattern.h"
#include "common/pipeline/pipeline.h"

namespace assay {

class ConsoleHarness {
 public:
  static constexpr size_t kLastLines = 20;
  static constexpr size_t kMaxLineBytes = 4096;  // a longer line is judged in pieces

  // Fails when a pattern is not one RE2 accepts (the pipeline parser refuses them at submit). Patterns
  // are matched with RE2 (common/pipeline/line_pattern.h): a line is judged in time linear in its length.
  static absl::StatusOr<std::unique_ptr<ConsoleHarness>> Create(const assay::v1::QemuSpec& spec);

  // Output as the emulator writes it, in any pieces; `stream` 0 is stdout, 1 stderr (each has its own
  // partial line: a stderr write in the middle of a console line does not break that line). Returns
  // true once the run should be ended now: a `fail_on` pattern matched, or every expectation was met
  // and the guest cannot exit by itself (no semihosting).
  bool Feed(absl::string_view data, int stream = 0);

  struct Verdict {
    bool passed = false;
    std::string message;  // why it failed (naming the pattern), with the last lines of output
  };
  // Judges the run once the emulator has ended: `exit_code` is the emulator's (the guest's, with
  // semihosting); `timed_out` when the step's timeout ended it; `stopped` when Feed asked for it.
  Verdict Judge(int exit_code, bool timed_out, bool stopped);

  // How many expectations have been met so far.
  size_t met() const { return met_count_; }

 private:
  explicit ConsoleHarness(const assay::v1::QemuSpec& spec) : spec_(spec) {}
  void Line(const std::string& line);
  std::string Pending() const;  // the first expectation not met, quoted
  std::string LastLines() const;

  assay::v1::QemuSpec spec_;
  std::vector<LinePattern> expect_;
  std::vector<LinePattern> fail_on_;
  std::vector<bool> met_;
  size_t met_count_ = 0;
  std::string partial_[2];  // by stream
  std::deque<std::string> last_;
  std::string failed_pattern_;  // the fail_on pattern that matched, if any
  std::string failed_line_;
};

}  // namespace assay
