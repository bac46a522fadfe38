#include "common/cas/disk_space.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/base/byte_size.h"

namespace assay {

absl::StatusOr<DiskFree> StatFileSystem(const std::filesystem::path& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) {
    return absl::InternalError(absl::StrCat("statvfs ", path.string(), ": ", std::strerror(errno)));
  }
  const auto unit = static_cast<int64_t>(st.f_frsize != 0 ? st.f_frsize : st.f_bsize);
  return DiskFree{static_cast<int64_t>(st.f_bavail) * unit, static_cast<int64_t>(st.f_blocks) * unit};
}

absl::StatusOr<MinFreeDisk> ParseMinFreeDisk(absl::string_view text) {
  MinFreeDisk out;
  out.text = std::string(text);
  absl::string_view t = absl::StripAsciiWhitespace(text);
  if (absl::ConsumeSuffix(&t, "%")) {
    double percent = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(t), &percent) || percent < 0 || percent >= 100) {
      return absl::InvalidArgumentError(
          absl::StrCat("--min-free-disk '", text, "': a percentage must be a number from 0 to below 100, like 5%"));
    }
    out.percent = percent;
    return out;
  }
  if (t == "0") return out;
  auto bytes = ParseSize(t);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--min-free-disk: ", bytes.status().message(),
                                                   "; give a size (2GiB, 512MB, 0) or a percentage (5%)"));
  }
  out.bytes = *bytes;
  return out;
}

DiskReserve::DiskReserve(Options options, const Clock* clock, DiskProbe probe)
    : options_(std::move(options)), clock_(clock), probe_(std::move(probe)) {
  Refresh();
}

void DiskReserve::Refresh() {
  if (!refresh_mu_.TryLock()) return;  // another thread is reading it now
  auto free = probe_(options_.dir);
  if (free.ok()) {
    // The writes counted so far are in this reading.
    written_since_.store(0, std::memory_order_relaxed);
    free_at_read_.store(free->free_bytes, std::memory_order_relaxed);
    total_.store(free->total_bytes, std::memory_order_relaxed);
  } else {
    spdlog::warn("{}: cannot read free disk space: {}", options_.store, free.status().ToString());
  }
  read_at_ns_.store(absl::ToUnixNanos(clock_->Now()), std::memory_order_release);
  refresh_mu_.Unlock();
}

void DiskReserve::MaybeRefresh() {
  const int64_t now = absl::ToUnixNanos(clock_->Now());
  if (now - read_at_ns_.load(std::memory_order_acquire) >= absl::ToInt64Nanoseconds(options_.refresh)) Refresh();
}

int64_t DiskReserve::free_bytes() {
  MaybeRefresh();
  return free_at_read_.load(std::memory_order_relaxed) - written_since_.load(std::memory_order_relaxed);
}

int64_t DiskReserve::reserve_bytes() { return options_.min_free.BytesOf(total_.load(std::memory_order_relaxed)); }

bool DiskReserve::Low() {
  const int64_t reserve = reserve_bytes();
  return reserve > 0 && free_bytes() < 2 * reserve;
}

absl::Status DiskReserve::Check(int64_t bytes) {
  const int64_t reserve = reserve_bytes();
  if (reserve <= 0) return absl::OkStatus();  // no reserve: the file system's own ENOSPC is the limit
  if (free_bytes() - bytes >= reserve) return absl::OkStatus();
  Refresh();  // space may have been freed since the last reading
  const int64_t free = free_bytes();
  if (free - bytes >= reserve) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      options_.store, " (", options_.dir.string(), "): writing ", FormatBytes(bytes), " would leave ",
      FormatBytes(std::max<int64_t>(free - bytes, 0)), " of ", FormatBytes(total_.load()),
      " free on its disk (", FormatBytes(std::max<int64_t>(free, 0)), " free now), below the reserve of ",
      FormatBytes(reserve), " (", options_.flag, " ", options_.min_free.text,
      "); free space on that disk, or lower ", options_.flag));
}

}  // namespace assay
