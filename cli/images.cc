#include "cli/images.h"

#include <cstdio>
#include <iostream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/base/file_util.h"
#include "common/pipeline/pipeline.h"

namespace assay::cli {

std::map<std::string, std::string> ResolveImages(const std::filesystem::path& pipeline_file) {
  std::map<std::string, std::string> out;
  auto text = ReadFile(pipeline_file);
  if (!text.ok()) return out;
  // A pipeline that does not parse is the coordinator's to refuse, with its line.
  auto pipeline = ParsePipeline(*text, pipeline_file.filename().string());
  if (!pipeline.ok()) return out;
  std::set<std::string> images;
  for (const MatrixCell& cell : pipeline->cells) {
    for (const Step& step : pipeline->steps) {
      auto expanded = ExpandStep(*pipeline, step, cell, pipeline_file.filename().string());
      if (expanded.ok() && !expanded->image.empty()) images.insert(expanded->image);
    }
  }
  if (images.empty()) return out;
  const char* engine_env = std::getenv("ASSAY_CONTAINER_ENGINE");
  const std::string engine = engine_env != nullptr && *engine_env != '\0' ? engine_env : "docker";
  if (engine != "docker" && engine != "podman") {
    std::cerr << "warning: ASSAY_CONTAINER_ENGINE=" << engine << " is not docker or podman; images are not resolved\n";
    return out;
  }
  for (const std::string& image : images) {
    // ExpandStep checked the reference: letters, digits and ._/:@+- only, so it is safe in a shell word.
    const std::string command =
        absl::StrCat(engine, " image inspect --format '{{if .RepoDigests}}{{index .RepoDigests 0}}{{else}}{{.Id}}{{end}}' ",
                     image, " 2>/dev/null");
    std::string resolved;
    if (FILE* p = ::popen(command.c_str(), "r")) {
      char buffer[512];
      while (std::fgets(buffer, sizeof(buffer), p) != nullptr) resolved += buffer;
      if (::pclose(p) != 0) resolved.clear();
    }
    resolved = std::string(absl::StripAsciiWhitespace(resolved));
    if (resolved.empty()) {
      std::cerr << "note: image " << image << " is not on this machine's " << engine
                << ": its steps are cached by name (a changed image under the same name is a cache hit)\n";
      continue;
    }
    out[image] = resolved;
  }
  return out;
}

}  // namespace assay::cli
