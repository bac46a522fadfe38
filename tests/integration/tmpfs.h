// A small file system of a test's own: a tmpfs of a given size mounted on a folder (root only), so a
// test can fill a disk to its last byte without touching the machine's. Unmounted by the destructor,
// whatever the test did (lazily, should a process of the test still hold a file there).
#pragma once

#include <sys/mount.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace assay::testing {

class Tmpfs {
 public:
  Tmpfs(std::filesystem::path dir, int64_t bytes) : dir_(std::move(dir)) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    const std::string options = "size=" + std::to_string(bytes) + ",mode=0755";
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = "mount -t tmpfs -o " + options + " on " + dir_.string() + ": " + std::strerror(errno) +
               " (the test needs root, as CI has)";
    }
  }
  ~Tmpfs() { Unmount(); }
  // Before the test's folder goes; lazily should a process of the test still hold a file there.
  void Unmount() {
    if (mounted_ && ::umount2(dir_.c_str(), 0) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
    mounted_ = false;
  }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
  std::string error_;
};

// The bytes free to an unprivileged writer on the file system holding `dir`; -1 when unknown.
inline int64_t FreeBytes(const std::filesystem::path& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
}

// Fills a disk: a file of `bytes` bytes, written (not sparse), so they are taken from the disk.
inline void WriteBallast(const std::filesystem::path& file, int64_t bytes) {
  std::ofstream out(file, std::ios::binary);
  const std::string block(1 << 20, 'B');
  for (int64_t left = bytes; left > 0; left -= 1 << 20) out.write(block.data(), std::min<int64_t>(left, 1 << 20));
}

// Bytes no two calls repeat (so no two blobs are the same, and none compresses).
inline std::string RandomBytes(int64_t n) {
  static std::mt19937_64 rng(42);
  std::string out(static_cast<size_t>(n), '\0');
  for (size_t i = 0; i + 8 <= out.size(); i += 8) {
    const uint64_t v = rng();
    std::memcpy(&out[i], &v, 8);
  }
  return out;
}

}  // namespace assay::testing
