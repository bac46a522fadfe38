#include "worker/output_sizes.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/tree/safe_fs.h"
#include "worker/elf_size.h"

namespace assay {
namespace {

constexpr int kMaxDepth = 32;

class Measurer {
 public:
  explicit Measurer(assay::v1::OutputSizes* out) : out_(out) {}

  // `fd` is open on `path` (relative to the work directory); closes nothing it does not own.
  void Entry(ScopedFd fd, const std::string& path, int depth) {
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0 || out_->files_size() >= kMaxMeasuredFiles) return;
    if (S_ISREG(st.st_mode)) {
      File(fd.get(), path, st.st_size);
    } else if (S_ISDIR(st.st_mode) && depth < kMaxDepth) {
      Directory(std::move(fd), path, depth);
    }
  }

 private:
  void File(int fd, const std::string& path, int64_t size) {
    assay::v1::FileSize* f = out_->add_files();
    f->set_path(path);
    f->set_file(size);
    if (size < 52 || size > kMaxElfBytes) return;
    std::string bytes(static_cast<size_t>(size), '\0');
    size_t got = 0;
    while (got < bytes.size()) {
      const ssize_t n = ::pread(fd, bytes.data() + got, bytes.size() - got, static_cast<off_t>(got));
      if (n <= 0) return;
      got += static_cast<size_t>(n);
    }
    if (!LooksLikeElf(bytes)) return;
    auto sizes = ReadElfSizes(bytes);
    if (!sizes.ok()) return;
    f->set_elf(true);
    f->set_text(sizes->text);
    f->set_data(sizes->data);
    f->set_bss(sizes->bss);
    f->set_elf_type(sizes->type);
  }

  void Directory(ScopedFd fd, const std::string& path, int depth) {
    const int dup = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return;
    DIR* dir = ::fdopendir(dup);
    if (dir == nullptr) {
      ::close(dup);
      return;
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(dir)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());  // the same order, and the same first 1000, every time
    for (const std::string& name : names) {
      auto child = OpenBeneath(fd.get(), name, O_RDONLY | O_NONBLOCK);  // a FIFO never blocks us
      if (!child.ok()) continue;  // a symlink or a vanished entry: not an output file
      Entry(std::move(*child), path.empty() ? name : absl::StrCat(path, "/", name), depth + 1);
    }
  }

  assay::v1::OutputSizes* out_;
};

}  // namespace

assay::v1::OutputSizes MeasureOutputs(int work_dir, const std::vector<std::string>& outputs) {
  assay::v1::OutputSizes out;
  Measurer m(&out);
  for (const std::string& output : outputs) {
    const std::string path(absl::StripSuffix(output, "/"));
    auto fd = OpenBeneath(work_dir, path, O_RDONLY | O_NONBLOCK);
    if (fd.ok()) m.Entry(std::move(*fd), path, 0);
  }
  return out;
}

}  // namespace assay
