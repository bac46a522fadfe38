// What is kept of a step's output: the first `limit` bytes of stdout and stderr together, in the
// order the executor hands them over (the pipeline's `output_limit`). Each kept piece knows its
// offset in its own stream, so the live log's chunks can say which bytes of the stored stdout or
// stderr they are (and the coordinator can fill in what the live link dropped). Beyond the limit
// nothing more is kept; the step's pipes are still read, so it goes on (unless the caller stops it).
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace assay {

class StepOutput {
 public:
  // `limit` 0: everything is kept.
  explicit StepOutput(int64_t limit) : limit_(limit) {}

  struct Kept {
    absl::string_view data;      // the part of the chunk within the limit (possibly empty)
    int64_t offset = 0;          // where `data` starts in its stream
    bool limit_reached = false;  // this chunk is the first to go beyond the limit
  };
  // A chunk of stdout (`stream` 0) or stderr (1).
  Kept Take(int stream, absl::string_view data);

  bool exceeded() const { return exceeded_; }
  int64_t kept() const { return kept_; }
  int64_t limit() const { return limit_; }
  // The one line that says the output was cut, starting on a line of its own.
  std::string LimitNote(bool fails) const;

 private:
  const int64_t limit_;
  int64_t kept_ = 0;
  int64_t offset_[2] = {0, 0};
  bool exceeded_ = false;
  bool mid_line_ = false;  // the last byte kept was not a newline
};

}  // namespace assay
