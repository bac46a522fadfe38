// The make-based firmware of bench_firmware_matrix's `make-run` kind (issue: real steps as fast on
// the farm as by hand): karatos-mini with a Makefile that compiles one object per source into its
// build folder, a `run` target that boots the image in QEMU, and three more library sources, so a
// build step has ~20 input files and ~8 outputs, as a developer's own firmware would.
#pragma once

#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "common/base/file_util.h"

namespace assay::bench {

inline constexpr char kMakeRunMakefile[] = R"MK(# karatos-mini, one object per source.
#   make TARGET=cortex-m3|rv32imac VARIANT=N     builds out/TARGET-vN/
#   make run TARGET=... VARIANT=N                boots it in QEMU (scripts/qemu-test.sh)
TARGET ?= cortex-m3
VARIANT ?= 1
OUT := out/$(TARGET)-v$(VARIANT)
ifeq ($(TARGET),cortex-m3)
  CROSS := arm-none-eabi-
  ARCH_FLAGS := -mcpu=cortex-m3 -mthumb
  ARCH_SRCS := arch/cortex-m3/start.c arch/cortex-m3/board.c
else
  CROSS := riscv64-unknown-elf-
  ARCH_FLAGS := -march=rv32imac -mabi=ilp32 -mcmodel=medany
  ARCH_SRCS := arch/rv32imac/start.S arch/rv32imac/board.c
  LD_EXTRA := -Wl,--no-warn-rwx-segments
endif
CC := $(CROSS)gcc
CFLAGS := $(ARCH_FLAGS) -Os -std=c11 -Wall -Wextra -Werror -ffreestanding -nostdlib -fno-builtin \
  -ffunction-sections -fdata-sections -Isrc -DKARATOS_VARIANT=$(VARIANT) \
  -DKARATOS_TARGET='"$(TARGET)"' -DKARATOS_PROFILE='"release"'
SRCS := src/main.c src/kernel.c src/lib/crc.c src/lib/ring.c src/lib/fmt.c $(ARCH_SRCS)
OBJS := $(addprefix $(OUT)/,$(addsuffix .o,$(notdir $(basename $(SRCS)))))
vpath %.c src src/lib arch/$(TARGET)
vpath %.S arch/$(TARGET)

all: $(OUT)/karatos.bin $(OUT)/size.txt
$(OUT):
	@mkdir -p $@
$(OUT)/%.o: %.c src/*.h | $(OUT)
	$(CC) $(CFLAGS) -c $< -o $@
$(OUT)/%.o: %.S | $(OUT)
	$(CC) $(CFLAGS) -c $< -o $@
$(OUT)/karatos.elf: $(OBJS) arch/$(TARGET)/link.ld
	$(CC) $(CFLAGS) $(OBJS) -nostdlib -Wl,--gc-sections -Wl,--build-id=none -Wl,-Map=$(OUT)/karatos.map \
	  -T arch/$(TARGET)/link.ld $(LD_EXTRA) -lgcc -o $@
$(OUT)/karatos.bin: $(OUT)/karatos.elf
	$(CROSS)objcopy -O binary $< $@
$(OUT)/size.txt: $(OUT)/karatos.elf
	$(CROSS)size $< > $@
run:
	scripts/qemu-test.sh $(TARGET) $(OUT)/karatos.elf
.PHONY: all run
)MK";

// Writes the Makefile and the library sources into `tree` (a copy of examples/karatos-mini).
inline absl::Status WriteMakeRunTree(const std::filesystem::path& tree) {
  if (absl::Status s = WriteFile(tree / "Makefile", kMakeRunMakefile); !s.ok()) return s;
  const char* const kLib[][2] = {
      {"crc.c", "unsigned lib_crc(const unsigned char *p, int n) {\n  unsigned c = 0xffffffffu;\n"
                "  for (int i = 0; i < n; ++i) {\n    c ^= p[i];\n"
                "    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & -(c & 1u));\n  }\n  return ~c;\n}\n"},
      {"ring.c", "static int ring[16];\nstatic int head;\n"
                 "void lib_ring_put(int v) { ring[head++ & 15] = v; }\n"
                 "int lib_ring_sum(void) {\n  int s = 0;\n  for (int i = 0; i < 16; ++i) s += ring[i];\n  return s;\n}\n"},
      {"fmt.c", "int lib_fmt_u(char *out, unsigned v) {\n  char tmp[12];\n  int n = 0, i = 0;\n"
                "  do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);\n"
                "  while (n) out[i++] = tmp[--n];\n  out[i] = 0;\n  return i;\n}\n"},
  };
  if (absl::Status s = MakeDirs(tree / "src/lib"); !s.ok()) return s;
  for (const auto& [name, text] : kLib) {
    if (absl::Status s = WriteFile(tree / "src/lib" / name, text); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace assay::bench
