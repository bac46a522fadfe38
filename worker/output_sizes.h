// The sizes of a step's output files, measured on the worker right after the step: every regular
// file it collected beneath the declared outputs (no symlink followed), with ELF section sizes
// (elf_size.h). The result travels in the action result, so a cached result carries them too, and
// the coordinator checks size budgets and regressions against them.
#pragma once

#include <vector>

#include "assay/v1/job.pb.h"
#include "common/tree/merkle.h"

namespace assay {

inline constexpr int kMaxMeasuredFiles = 1000;
inline constexpr int64_t kMaxElfBytes = 64 << 20;  // a larger file is counted by its size only

// `files` are the collected output files (paths relative to the open directory `work_dir`) and
// `blobs` their blobs: an ELF file's sections are read from its bytes where they are in memory,
// and from the file otherwise. The first kMaxMeasuredFiles files, in the order given.
assay::v1::OutputSizes MeasureOutputs(int work_dir, const std::vector<reapi::OutputFile>& files,
                                      const std::vector<TreeBlob>& blobs);

}  // namespace assay
