// A small file system of a test's own: a tmpfs of a given size mounted on a folder (root only), so a
// test can fill a disk to its last byte without touching the machine's. Unmounted by the destructor,
// whatever the test did (lazily, should a process of the test still hold a file there).
#pragma once

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
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

}  // namespace assay::testing
