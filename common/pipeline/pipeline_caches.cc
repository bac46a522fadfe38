// `caches:` in the pipeline file (docs/pipeline.md, "Caches"): parsing, and expanding the keys, restore
// keys and paths for one cell, hashFiles() included.
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/file_util.h"
#include "common/pipeline/pipeline.h"
#include "common/pipeline/pipeline_parser.h"

namespace assay {
namespace pipeline_internal {

absl::StatusOr<std::vector<StepCache>> Parser::ParseCaches(const YAML::Node& node, const std::string& where) const {
  if (!node.IsSequence()) {
    return Error(node, absl::StrCat(where, " must be a list of {key, restore_keys, paths}"));
  }
  std::vector<StepCache> caches;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node entry = node[i];
    const std::string what = absl::StrCat(where, "[", i, "]");
    if (!entry.IsMap()) return Error(entry, absl::StrCat(what, " must be a mapping with key and paths"));
    if (absl::Status s = CheckKeys(entry, what, {"key", "restore_keys", "paths"}); !s.ok()) return s;
    StepCache cache;
    cache.line = entry.Mark().line + 1;
    if (!entry["key"]) return Error(entry, absl::StrCat(what, " has no 'key'"));
    auto key = Scalar(entry["key"], absl::StrCat(what, ".key"));
    if (!key.ok()) return key.status();
    if (absl::StripAsciiWhitespace(*key).empty()) return Error(entry["key"], absl::StrCat(what, ".key is empty"));
    cache.key = *key;
    if (entry["restore_keys"]) {
      auto restore = StringList(entry["restore_keys"], absl::StrCat(what, ".restore_keys"));
      if (!restore.ok()) return restore.status();
      cache.restore_keys = std::move(*restore);
    }
    if (!entry["paths"]) return Error(entry, absl::StrCat(what, " has no 'paths'"));
    auto paths = StringList(entry["paths"], absl::StrCat(what, ".paths"));
    if (!paths.ok()) return paths.status();
    if (paths->empty()) return Error(entry["paths"], absl::StrCat(what, ".paths is empty"));
    for (const std::string& path : *paths) {
      if (absl::Status s = CheckRelativePath(path, absl::StrCat(what, " path")); !s.ok()) {
        return Error(entry["paths"], s.message());
      }
    }
    cache.paths = std::move(*paths);
    caches.push_back(std::move(cache));
  }
  return caches;
}

absl::Status Parser::ParseStepCaches(const YAML::Node& node, const std::string& where, Step* step) const {
  if (node["cache"] && (node["cache"].IsSequence() || node["cache"].IsMap())) {
    return Error(node["cache"], absl::StrCat(where, ".cache is true or false (reuse of the step's result); folders "
                                             "kept from one run to the next are 'caches:' (a list of {key, "
                                             "restore_keys, paths})"));
  }
  if (!node["caches"]) return absl::OkStatus();
  if (step->qemu.has_value()) {
    return Error(node["caches"], absl::StrCat(where, " is a qemu step: caches are for steps that run a command"));
  }
  auto caches = ParseCaches(node["caches"], absl::StrCat(where, ".caches"));
  if (!caches.ok()) return caches.status();
  step->caches = std::move(*caches);
  return absl::OkStatus();
}

namespace {

// A cache key as stored and shown: printable ASCII without spaces, at most kMaxCacheKeyBytes.
absl::Status CheckCacheKey(const std::string& key, absl::string_view what) {
  if (key.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty once expanded"));
  if (key.size() > kMaxCacheKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is ", key.size(), " bytes once expanded, more than ",
                                                   kMaxCacheKeyBytes));
  }
  for (char c : key) {
    if (!absl::ascii_isgraph(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(absl::StrCat(what, " '", absl::CHexEscape(key),
                                                     "' may hold only printable characters without spaces"));
    }
  }
  // Keys name objects in stores (object names, file names): nothing that reads as a path out of one.
  if (key.front() == '/') return absl::InvalidArgumentError(absl::StrCat(what, " '", key, "' must not start with /"));
  for (absl::string_view part : absl::StrSplit(key, '/')) {
    if (part == ".." || part == ".") {
      return absl::InvalidArgumentError(absl::StrCat(what, " '", key, "' must not hold a '", part, "' segment"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ExpandCaches(const Pipeline& pipeline, const MatrixCell& cell, absl::string_view file_name,
                          const HashFilesFn* hash_files, Step* step) {
  // While parsing, hashFiles() stands for a digest: its arguments are checked, nothing is read.
  const HashFilesFn stand_in = [](const std::vector<std::string>&) -> absl::StatusOr<std::string> {
    return std::string(64, '0');
  };
  const HashFilesFn& hash = hash_files != nullptr ? *hash_files : stand_in;
  for (size_t i = 0; i < step->caches.size(); ++i) {
    StepCache& cache = step->caches[i];
    const std::string where = absl::StrCat("caches[", i, "]");
    auto fail = [&](const absl::Status& s, absl::string_view field) {
      return absl::InvalidArgumentError(absl::StrCat(file_name, ":", cache.line, ": step '", step->id, "' ", where,
                                                     ".", field, ": ", s.message()));
    };
    auto key = ExpandExpressions(cache.key, cell, pipeline.name, hash);
    if (!key.ok()) return fail(key.status(), "key");
    if (absl::Status s = CheckCacheKey(*key, "the key"); !s.ok()) return fail(s, "key");
    cache.key = *key;
    for (std::string& prefix : cache.restore_keys) {
      auto value = ExpandExpressions(prefix, cell, pipeline.name, hash);
      if (!value.ok()) return fail(value.status(), "restore_keys");
      if (absl::Status s = CheckCacheKey(*value, "a restore key"); !s.ok()) return fail(s, "restore_keys");
      prefix = *value;
    }
    for (std::string& path : cache.paths) {
      auto value = ExpandExpressions(path, cell, pipeline.name);
      if (!value.ok()) return fail(value.status(), "paths");
      if (absl::Status s = CheckRelativePath(*value, "cache path"); !s.ok()) return fail(s, "paths");
      if (absl::StripSuffix(absl::StripPrefix(*value, "./"), "/") == "." ||
          absl::StripPrefix(*value, "./").empty()) {
        return fail(absl::InvalidArgumentError(absl::StrCat("'", *value, "' is the whole work directory: name the "
                                                            "folders to keep")), "paths");
      }
      path = *value;
    }
  }
  return absl::OkStatus();
}

}  // namespace pipeline_internal

absl::StatusOr<std::vector<std::string>> ParseHashFilesArguments(absl::string_view arguments) {
  std::vector<std::string> patterns;
  absl::string_view rest = absl::StripAsciiWhitespace(arguments);
  while (!rest.empty()) {
    const char quote = rest.front();
    if (quote != '\'' && quote != '"') {
      return absl::InvalidArgumentError("hashFiles() takes quoted patterns, like hashFiles('Cargo.lock', 'src/**')");
    }
    const size_t end = rest.find(quote, 1);
    if (end == absl::string_view::npos) return absl::InvalidArgumentError("hashFiles(): an unterminated quote");
    std::string pattern(rest.substr(1, end - 1));
    if (absl::Status s = CheckRelativePath(pattern, "hashFiles() pattern"); !s.ok()) return s;
    patterns.push_back(std::move(pattern));
    rest = absl::StripLeadingAsciiWhitespace(rest.substr(end + 1));
    if (rest.empty()) break;
    if (!absl::ConsumePrefix(&rest, ",")) {
      return absl::InvalidArgumentError("hashFiles(): patterns are separated by commas");
    }
    rest = absl::StripLeadingAsciiWhitespace(rest);
  }
  if (patterns.empty()) return absl::InvalidArgumentError("hashFiles() needs at least one pattern");
  return patterns;
}

}  // namespace assay
