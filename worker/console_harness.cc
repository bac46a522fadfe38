#include "worker/console_harness.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace assay {

absl::StatusOr<std::unique_ptr<ConsoleHarness>> ConsoleHarness::Create(const assay::v1::QemuSpec& spec) {
  if (spec.expect_size() + spec.fail_on_size() > LinePattern::kMaxPerStep) {
    return absl::InvalidArgumentError(absl::StrCat("a qemu step has ", spec.expect_size() + spec.fail_on_size(),
                                                   " patterns, more than the ", LinePattern::kMaxPerStep, " allowed"));
  }
  std::unique_ptr<ConsoleHarness> h(new ConsoleHarness(spec));
  for (const auto& [patterns, out] : {std::pair{&spec.expect(), &h->expect_}, std::pair{&spec.fail_on(), &h->fail_on_}}) {
    for (const std::string& p : *patterns) {
      auto pattern = LinePattern::Compile(p);
      if (!pattern.ok()) return pattern.status();
      out->push_back(std::move(*pattern));
    }
  }
  h->met_.assign(h->expect_.size(), false);
  return h;
}

bool ConsoleHarness::Feed(absl::string_view data, int stream) {
  std::string& partial = partial_[stream == 1 ? 1 : 0];
  for (char c : data) {
    if (c == '\n' || partial.size() >= kMaxLineBytes) {
      if (!partial.empty() && partial.back() == '\r') partial.pop_back();
      Line(partial);
      partial.clear();
      if (c == '\n') continue;
    }
    partial.push_back(c);
  }
  if (!failed_pattern_.empty()) return true;
  return !spec_.semihosting() && !expect_.empty() && met_count_ == expect_.size();
}

void ConsoleHarness::Line(const std::string& line) {
  last_.push_back(line);
  if (last_.size() > kLastLines) last_.pop_front();
  if (!failed_pattern_.empty()) return;
  for (size_t i = 0; i < fail_on_.size(); ++i) {
    if (fail_on_[i].FoundIn(line)) {
      failed_pattern_ = spec_.fail_on(static_cast<int>(i));
      failed_line_ = line;
      return;
    }
  }
  if (met_count_ == expect_.size()) return;
  if (spec_.ordered()) {
    // One line meets at most the next expectation, as a console harness reads it.
    if (expect_[met_count_].FoundIn(line)) met_[met_count_++] = true;
    return;
  }
  for (size_t i = 0; i < expect_.size(); ++i) {
    if (!met_[i] && expect_[i].FoundIn(line)) {
      met_[i] = true;
      ++met_count_;
    }
  }
}

std::string ConsoleHarness::Pending() const {
  for (size_t i = 0; i < met_.size(); ++i) {
    if (!met_[i]) {
      return absl::StrCat("expectation ", i + 1, " of ", met_.size(), " '", spec_.expect(static_cast<int>(i)), "'");
    }
  }
  return "";
}

std::string ConsoleHarness::LastLines() const {
  std::vector<std::string> lines(last_.begin(), last_.end());
  for (const std::string& partial : partial_) {
    if (!partial.empty()) lines.push_back(partial);
  }
  if (lines.empty()) return "; the emulator printed nothing";
  return absl::StrCat("; last lines of output:\n", absl::StrJoin(lines, "\n"));
}

ConsoleHarness::Verdict ConsoleHarness::Judge(int exit_code, bool timed_out, bool stopped) {
  for (std::string& partial : partial_) {
    if (partial.empty()) continue;
    std::string rest = std::move(partial);
    partial.clear();
    Line(rest);
  }
  Verdict v;
  if (!failed_pattern_.empty()) {
    v.message = absl::StrCat("fail_on pattern '", failed_pattern_, "' matched: ", failed_line_, LastLines());
  } else if (timed_out) {
    v.message = met_count_ < expect_.size()
                    ? absl::StrCat("timed out waiting for ", Pending(), LastLines())
                    : absl::StrCat("timed out: every expectation was met but the guest did not exit", LastLines());
  } else if (stopped) {
    v.passed = true;  // every expectation met, and a guest without semihosting cannot exit by itself
  } else if (exit_code != spec_.exit_code()) {
    v.message = absl::StrCat("the guest exited with code ", exit_code, ", expected ", spec_.exit_code(),
                             met_count_ < expect_.size() ? absl::StrCat(" (", Pending(), " not seen)") : "",
                             LastLines());
  } else if (met_count_ < expect_.size()) {
    v.message = absl::StrCat(Pending(), " never appeared (", met_count_, " of ", expect_.size(), " met)", LastLines());
  } else {
    v.passed = true;
  }
  return v;
}

}  // namespace assay
