// The little XML S3 speaks, read and written by hand: the fields of a handful of fixed documents
// (errors, list pages, multipart and delete results) and the two request bodies the client sends.
// The reader finds elements by exact name (<Key> never matches <KeyCount>), unescapes the five
// predefined entities and character references, and never reads past the text it was given.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace assay {

std::string XmlEscape(absl::string_view text);
std::string XmlUnescape(absl::string_view text);

// The inner text (still escaped) of every <name>...</name> element at any depth, in document order;
// <name/> gives an empty one.
std::vector<absl::string_view> XmlElements(absl::string_view xml, absl::string_view name);
// The unescaped text of the first <name> element, nullopt when there is none.
std::optional<std::string> XmlFirst(absl::string_view xml, absl::string_view name);

// <Error><Code>...</Code><Message>...</Message></Error>: nullopt when `xml` is no S3 error document.
struct S3ErrorBody {
  std::string code;
  std::string message;
};
std::optional<S3ErrorBody> ParseS3Error(absl::string_view xml);

// One page of ListObjectsV2.
struct S3Object {
  std::string key;
  int64_t size = 0;
};
struct S3ListPage {
  std::vector<S3Object> objects;
  bool truncated = false;
  std::string next_token;  // set when truncated
};
absl::StatusOr<S3ListPage> ParseListObjectsV2(absl::string_view xml);

// InitiateMultipartUploadResult's UploadId.
absl::StatusOr<std::string> ParseUploadId(absl::string_view xml);

// The <Error> entries of a DeleteResult (quiet mode lists only the keys that failed).
struct S3DeleteError {
  std::string key;
  std::string code;
  std::string message;
};
absl::StatusOr<std::vector<S3DeleteError>> ParseDeleteResult(absl::string_view xml);

// The body of a multi-object delete, quiet (the answer lists failures only).
std::string DeleteRequestBody(const std::vector<std::string>& keys);

struct S3Part {
  int number = 0;
  std::string etag;  // as UploadPart returned it, quotes included
};
// The body of CompleteMultipartUpload.
std::string CompleteMultipartBody(const std::vector<S3Part>& parts);

}  // namespace assay
