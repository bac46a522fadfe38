// Byte sizes as people write and read them: "32KiB", "1.5 MiB", "4096", "32KB" (1000s).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace assay {

// "32KiB", "4096", "1.5MiB", "32 KB" (1000s), "64 MiB": bytes; an error names what is wrong.
absl::StatusOr<int64_t> ParseSize(absl::string_view text);

// "512 bytes", "32 MiB" (a whole number of a unit), "1.5 GiB" (one decimal otherwise). ParseSize
// reads back what FormatBytes writes; negative sizes keep their sign.
std::string FormatBytes(int64_t bytes);

}  // namespace assay
