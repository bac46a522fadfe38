#include "worker/elf_size.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace assay {
namespace {

constexpr uint32_t kShtNobits = 8;
constexpr uint64_t kShfWrite = 0x1;
constexpr uint64_t kShfAlloc = 0x2;
constexpr uint64_t kShfExecinstr = 0x4;

// Reads little- or big-endian integers at checked offsets.
class Reader {
 public:
  Reader(absl::string_view bytes, bool big_endian) : bytes_(bytes), big_(big_endian) {}
  bool Fits(uint64_t offset, uint64_t size) const { return offset <= bytes_.size() && size <= bytes_.size() - offset; }
  uint64_t Read(uint64_t offset, int size) const {
    uint64_t v = 0;
    for (int i = 0; i < size; ++i) {
      const uint64_t byte = static_cast<unsigned char>(bytes_[offset + static_cast<uint64_t>(big_ ? i : size - 1 - i)]);
      v = (v << 8) | byte;
    }
    return v;
  }

 private:
  absl::string_view bytes_;
  bool big_;
};

}  // namespace

bool LooksLikeElf(absl::string_view bytes) { return bytes.size() >= 4 && bytes.substr(0, 4) == "\x7f" "ELF"; }

absl::StatusOr<ElfSizes> ReadElfSizes(absl::string_view bytes) {
  if (!LooksLikeElf(bytes) || bytes.size() < 52) return absl::InvalidArgumentError("not an ELF file");
  const int cls = static_cast<unsigned char>(bytes[4]);    // 1: 32-bit, 2: 64-bit
  const int order = static_cast<unsigned char>(bytes[5]);  // 1: little, 2: big
  if ((cls != 1 && cls != 2) || (order != 1 && order != 2)) {
    return absl::InvalidArgumentError("an ELF file of unknown class or byte order");
  }
  const bool is64 = cls == 2;
  const Reader r(bytes, order == 2);
  if (is64 && bytes.size() < 64) return absl::InvalidArgumentError("a truncated ELF header");
  const uint64_t shoff = is64 ? r.Read(0x28, 8) : r.Read(0x20, 4);
  const uint64_t shentsize = r.Read(is64 ? 0x3a : 0x2e, 2);
  const uint64_t shnum = r.Read(is64 ? 0x3c : 0x30, 2);
  const uint64_t need_entsize = is64 ? 64 : 40;
  ElfSizes out;
  out.type = static_cast<int>(r.Read(16, 2));  // e_type
  if (shnum == 0) return out;
  if (shentsize < need_entsize) return absl::InvalidArgumentError("ELF section headers of a wrong size");
  if (shnum > (1u << 16) || !r.Fits(shoff, shnum * shentsize)) {
    return absl::InvalidArgumentError("ELF section headers beyond the end of the file");
  }
  for (uint64_t i = 0; i < shnum; ++i) {
    const uint64_t h = shoff + i * shentsize;
    const uint32_t type = static_cast<uint32_t>(r.Read(h + 4, 4));
    const uint64_t flags = is64 ? r.Read(h + 8, 8) : r.Read(h + 8, 4);
    const uint64_t size = is64 ? r.Read(h + 32, 8) : r.Read(h + 20, 4);
    if ((flags & kShfAlloc) == 0) continue;
    if (size > (uint64_t{1} << 48)) return absl::InvalidArgumentError("an ELF section of an impossible size");
    const auto s = static_cast<int64_t>(size);
    if ((flags & kShfExecinstr) != 0 || (flags & kShfWrite) == 0) {
      out.text += s;
    } else if (type != kShtNobits) {
      out.data += s;
    } else {
      out.bss += s;
    }
  }
  return out;
}

}  // namespace assay
