// Disk space as a resource: a store keeps a reserve of free space on its file system
// (`--min-free-disk`) and refuses writes that would cross it, before the disk is actually full.
//
// Free space is read with statvfs at most once per `refresh` interval (not once per write): between
// two readings the bytes the store wrote are subtracted from the last reading, so a burst of writes
// still meets the reserve. A write that would cross it re-reads at once before refusing (space may
// have been freed meanwhile). Thread-safe; no lock is held across the statvfs call.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/base/clock.h"

namespace assay {

// What a file system has: bytes free for unprivileged writers and its size.
struct DiskFree {
  int64_t free_bytes = 0;
  int64_t total_bytes = 0;
};
using DiskProbe = std::function<absl::StatusOr<DiskFree>(const std::filesystem::path&)>;
// statvfs of the file system holding `path`.
absl::StatusOr<DiskFree> StatFileSystem(const std::filesystem::path& path);

// The reserve: a size ("2GiB", "512MB", "0") or a share of the file system ("5%").
struct MinFreeDisk {
  int64_t bytes = 0;
  double percent = 0;  // used when > 0
  std::string text;    // as given, for messages
  int64_t BytesOf(int64_t total_bytes) const {
    return percent > 0 ? static_cast<int64_t>(static_cast<double>(total_bytes) * percent / 100.0) : bytes;
  }
};
inline constexpr char kDefaultMinFreeDisk[] = "5%";
// InvalidArgument naming the value and the accepted forms.
absl::StatusOr<MinFreeDisk> ParseMinFreeDisk(absl::string_view text);

class DiskReserve {
 public:
  struct Options {
    std::string store;          // "coordinator CAS", "worker cache": named in messages
    std::filesystem::path dir;  // a folder on the file system to watch
    MinFreeDisk min_free;
    std::string flag = "--min-free-disk";
    absl::Duration refresh = absl::Milliseconds(250);
  };
  DiskReserve(Options options, const Clock* clock, DiskProbe probe = StatFileSystem);

  // OK when writing `bytes` more leaves at least the reserve free; otherwise RESOURCE_EXHAUSTED
  // naming the store, its folder, the free space, the reserve and the flag. Changes nothing.
  absl::Status Check(int64_t bytes);
  // Counts bytes written since the last reading (they lower the free space until the next).
  void Wrote(int64_t bytes) { written_since_.fetch_add(bytes, std::memory_order_relaxed); }
  // True when free space is below twice the reserve (eviction frees space then).
  bool Low();
  // The free space (estimated from the last reading and the writes since), and the reserve.
  int64_t free_bytes();
  int64_t reserve_bytes();
  // Reads free space now.
  void Refresh();

  const Options& options() const { return options_; }
  const Clock* clock() const { return clock_; }

 private:
  void MaybeRefresh();
  Options options_;
  const Clock* clock_;
  DiskProbe probe_;
  absl::Mutex refresh_mu_;  // one reader of statvfs at a time; others use the last reading
  std::atomic<int64_t> read_at_ns_{0};
  std::atomic<int64_t> free_at_read_{0};
  std::atomic<int64_t> total_{0};
  std::atomic<int64_t> written_since_{0};
};

}  // namespace assay
