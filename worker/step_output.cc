#include "worker/step_output.h"

#include "absl/strings/str_cat.h"
#include "common/base/byte_size.h"
#include "worker/step_settings.h"

namespace assay {

StepOutput::Kept StepOutput::Take(int stream, absl::string_view data) {
  Kept out;
  out.offset = offset_[stream];
  if (exceeded_) return out;
  if (limit_ > 0 && kept_ + static_cast<int64_t>(data.size()) > limit_) {
    data = data.substr(0, static_cast<size_t>(limit_ - kept_));
    exceeded_ = true;
    out.limit_reached = true;
  }
  out.data = data;
  kept_ += static_cast<int64_t>(data.size());
  offset_[stream] += static_cast<int64_t>(data.size());
  if (!data.empty()) mid_line_ = data.back() != '\n';
  return out;
}

std::string StepOutput::LimitNote(bool fails) const {
  return absl::StrCat(mid_line_ ? "\n" : "", "[assay] the step's output went beyond its limit of ", FormatBytes(limit_),
                      " (output_limit): ",
                      fails ? "the step was stopped and fails (output_limit_fails)"
                            : "the rest of it is not kept; the step goes on",
                      "\n");
}

}  // namespace assay
