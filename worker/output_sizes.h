// The sizes of a step's output files, measured on the worker right after the step: every regular
// file beneath the declared outputs (no symlink followed), with ELF section sizes (elf_size.h). The
// result travels in the action result, so a cached result carries them too, and the coordinator
// checks size budgets and regressions against them.
#pragma once

#include <string>
#include <vector>

#include "assay/v1/job.pb.h"

namespace assay {

inline constexpr int kMaxMeasuredFiles = 1000;
inline constexpr int64_t kMaxElfBytes = 64 << 20;  // a larger file is counted by its size only

// `work_dir` is an open directory; `outputs` are the command's output paths, relative to it.
assay::v1::OutputSizes MeasureOutputs(int work_dir, const std::vector<std::string>& outputs);

}  // namespace assay
