// Section sizes of an ELF file, read from its section headers in C++ (no binutils at run time) and
// summed the way binutils' `size` (Berkeley format) sums them:
//   text: allocated sections that are executable or read-only,
//   data: other allocated sections with contents,
//   bss:  allocated sections without contents (SHT_NOBITS).
// ROM = text + data, RAM = data + bss, as firmware budgets count them. 32- and 64-bit, either byte
// order. Every offset and count is checked against the file's size: a hostile file is an error.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace assay {

struct ElfSizes {
  int64_t text = 0;
  int64_t data = 0;
  int64_t bss = 0;
  int type = 0;  // e_type: 1 relocatable, 2 executable, 3 shared object
  int64_t rom() const { return text + data; }
  int64_t ram() const { return data + bss; }
};

bool LooksLikeElf(absl::string_view bytes);
absl::StatusOr<ElfSizes> ReadElfSizes(absl::string_view bytes);

}  // namespace assay
