#include "worker/work_disk.h"

#include "absl/strings/str_cat.h"
#include "common/base/byte_size.h"

namespace assay {

WorkDisk::WorkDisk(const std::filesystem::path& dir, MinFreeDisk min_free, const Clock* clock, DiskProbe probe)
    : reserve_(DiskReserve::Options{"worker work directory", dir, std::move(min_free)}, clock, std::move(probe)) {}

std::string WorkDisk::BeforeTask() {
  absl::Status room = reserve_.Check(0);
  if (room.ok()) return "";
  return absl::StrCat("its work directory's disk is full: ", room.message());
}

std::string WorkDisk::AfterFailure(const std::string& failure) {
  reserve_.Refresh();
  const int64_t free = reserve_.free_bytes();
  if (free >= reserve_.reserve_bytes() + kFullSlack) return "";
  return absl::StrCat("its work directory's disk is full (", reserve_.options().dir.string(), ": ",
                      FormatBytes(std::max<int64_t>(free, 0)), " free, ", reserve_.options().flag, " ",
                      reserve_.options().min_free.text, "): ", failure);
}

}  // namespace assay
