// What a firmware image costs the chip, from its ELF sections (assay.v1.FileSize, measured by the
// worker): ROM holds the code and the initial values of data, RAM the data and the zeroed bss. The
// coordinator's size budgets and the CLI's reports read them here, written once.
#pragma once

#include <cstdint>

#include "assay/v1/job.pb.h"

namespace assay {

inline int64_t RomBytes(const assay::v1::FileSize& f) { return f.text() + f.data(); }
inline int64_t RamBytes(const assay::v1::FileSize& f) { return f.data() + f.bss(); }

}  // namespace assay
