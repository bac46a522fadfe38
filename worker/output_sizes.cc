#include "worker/output_sizes.h"

#include <fcntl.h>

#include <string>

#include "absl/container/flat_hash_map.h"
#include "common/tree/safe_fs.h"
#include "worker/elf_size.h"

namespace assay {
namespace {

// The `size` bytes of the output file `path` beneath `work_dir` (a FIFO put there since never
// blocks us); empty when it cannot be read whole.
std::string ReadOutput(int work_dir, const std::string& path, int64_t size) {
  auto fd = OpenBeneath(work_dir, path, O_RDONLY | O_NONBLOCK);
  if (!fd.ok()) return "";
  std::string bytes(static_cast<size_t>(size), '\0');
  auto got = ReadFull(fd->get(), bytes.data(), bytes.size());
  if (!got.ok() || *got != bytes.size()) return "";
  return bytes;
}

}  // namespace

assay::v1::OutputSizes MeasureOutputs(int work_dir, const std::vector<reapi::OutputFile>& files,
                                      const std::vector<TreeBlob>& blobs) {
  absl::flat_hash_map<Digest, const std::string*> in_memory;  // by digest: the same bytes wherever found
  for (const TreeBlob& blob : blobs) {
    if (blob.file.empty()) in_memory.emplace(blob.digest, &blob.data);
  }
  assay::v1::OutputSizes out;
  for (const reapi::OutputFile& file : files) {
    if (out.files_size() >= kMaxMeasuredFiles) break;
    auto digest = Digest::FromProto(file.digest());
    if (!digest.ok()) continue;
    assay::v1::FileSize* f = out.add_files();
    f->set_path(file.path());
    f->set_file(digest->size());
    if (digest->size() < 52 || digest->size() > kMaxElfBytes) continue;  // smaller than an ELF header
    std::string read;
    auto it = in_memory.find(*digest);
    if (it == in_memory.end()) read = ReadOutput(work_dir, file.path(), digest->size());
    const std::string& bytes = it != in_memory.end() ? *it->second : read;
    if (!LooksLikeElf(bytes)) continue;
    auto sizes = ReadElfSizes(bytes);
    if (!sizes.ok()) continue;
    f->set_elf(true);
    f->set_text(sizes->text);
    f->set_data(sizes->data);
    f->set_bss(sizes->bss);
    f->set_elf_type(sizes->type);
  }
  return out;
}

}  // namespace assay
