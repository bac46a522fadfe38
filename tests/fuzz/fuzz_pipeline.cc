// libFuzzer target: the pipeline parser and step expansion take any bytes without crashing, and a
// parsed pipeline expands for every cell within its limits.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/pipeline/pipeline.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  assay::PipelineLimits limits;
  limits.max_cells = 64;
  auto pipeline = assay::ParsePipeline(text, "assay.yaml", limits);
  if (!pipeline.ok()) return 0;
  if (pipeline->cells.size() > static_cast<size_t>(limits.max_cells)) std::abort();  // the limit must hold
  for (const auto& cell : pipeline->cells) {
    (void)assay::CellName(*pipeline, cell);
    for (const auto& step : pipeline->steps) (void)assay::ExpandStep(*pipeline, step, cell, "assay.yaml");
  }
  return 0;
}
