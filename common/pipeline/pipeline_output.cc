// `output_limit` and `output_limit_fails`, at the pipeline's top level or a step's: how many bytes of
// a step's output (stdout and stderr together) are kept, and whether going beyond fails the step.
#include "absl/strings/str_cat.h"
#include "common/base/byte_size.h"
#include "common/pipeline/pipeline_parser.h"

namespace assay::pipeline_internal {

absl::Status Parser::ParseOutputLimit(const YAML::Node& node, const std::string& where, int64_t* limit,
                                      bool* fails) const {
  if (const YAML::Node value = node["output_limit"]) {
    auto bytes = value.IsScalar() ? ParseSize(value.Scalar()) : absl::InvalidArgumentError("not a size");
    if (!bytes.ok() || *bytes < 1024) {
      return Error(value, absl::StrCat(where, ".output_limit must be a size of at least 1KiB, like 16MiB"));
    }
    if (*bytes > limits_.max_output_limit) {
      return Error(value, absl::StrCat(where, ".output_limit ", value.Scalar(), " is more than this coordinator allows (",
                                       FormatBytes(limits_.max_output_limit), ", --max-step-output-limit)"));
    }
    *limit = *bytes;
  }
  if (const YAML::Node value = node["output_limit_fails"]) {
    auto b = Bool(value, absl::StrCat(where, ".output_limit_fails"));
    if (!b.ok()) return b.status();
    *fails = *b;
  }
  return absl::OkStatus();
}

void Parser::ResolveOutputLimit(const YAML::Node& node, const Pipeline& pipeline, Step* step) const {
  if (!node["output_limit"]) {
    step->output_limit = pipeline.output_limit > 0 ? pipeline.output_limit : limits_.default_output_limit;
  }
  if (!node["output_limit_fails"]) step->output_limit_fails = pipeline.output_limit_fails;
}

}  // namespace assay::pipeline_internal
