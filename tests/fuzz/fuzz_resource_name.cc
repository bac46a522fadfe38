// libFuzzer target: ByteStream resource names, instance names and digests from any bytes. What
// parses must print back to a name that parses to the same thing.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/digest/digest.h"
#include "common/digest/resource_name.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool upload = (data[0] & 1) != 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  (void)assay::CheckInstanceName(text);
  if (auto d = assay::Digest::Parse(text); d.ok()) {
    if (assay::Digest::Parse(d->ToString()).value() != *d) std::abort();
  }
  if (auto d = assay::Digest::FromKey(text); d.ok()) {
    if (assay::Digest::FromKey(d->Key()).value() != *d) std::abort();
  }
  auto parsed = assay::ParseResourceName(text, upload);
  if (!parsed.ok()) return 0;
  const std::string again = upload ? assay::WriteResourceName(parsed->instance, "u", parsed->digest)
                                   : assay::ReadResourceName(parsed->instance, parsed->digest);
  auto reparsed = assay::ParseResourceName(again, upload);
  if (!reparsed.ok() || reparsed->instance != parsed->instance || reparsed->digest != parsed->digest) std::abort();
  return 0;
}
