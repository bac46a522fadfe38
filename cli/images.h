// Container images of a pipeline, resolved on the submitter's machine before it is submitted.
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace assay::cli {

// Every image the pipeline's steps name (for every cell), resolved with the local engine
// (ASSAY_CONTAINER_ENGINE, default docker; DOCKER_HOST as usual): reference -> "name@sha256:..."
// (the image's registry digest) or "sha256:..." (a local image's id). References the engine does not
// have (or no engine at all) are left out and said on stderr: their steps are cached by reference.
std::map<std::string, std::string> ResolveImages(const std::filesystem::path& pipeline_file);

}  // namespace assay::cli
