// An action's stdout and stderr sent inside its ActionResult (stdout_raw, stderr_raw), beside their
// digests, so that a client shows them without one more read each.
//
// REAPI inlines them only when GetActionResultRequest asks (inline_stdout, inline_stderr), and
// Bazel 4.2 never asks: on every cache hit or remote run of an action that printed anything (a
// compiler's warning), it read the stderr blob in a second call. Every REAPI client reads the raw
// field when it is set and the digest otherwise (Bazel since its first remote cache), and a client
// that reads only the digest still finds it, so small outputs ride along unasked.
#pragma once

#include <cstdint>

#include "build/bazel/remote/execution/v2/remote_execution.pb.h"
#include "common/cas/blob_store.h"

namespace assay {

// Up to this many bytes an output is inlined unasked; when asked, up to kMaxAskedInlineBytes.
inline constexpr int64_t kInlineOutErrBytes = 16 << 10;
inline constexpr int64_t kMaxAskedInlineBytes = 1 << 20;

// Reads `digest` from `blobs` into `*out` when it is at most `limit` bytes and there; otherwise
// leaves `*out` as it was (the client reads the digest).
void InlineBlob(BlobStore& blobs, const reapi::Digest& digest, int64_t limit, std::string* out);

// Fills `result`'s empty stdout_raw / stderr_raw from their digests: up to kMaxAskedInlineBytes for
// the ones asked for, up to kInlineOutErrBytes for the others.
void InlineOutErr(BlobStore& blobs, bool asked_stdout, bool asked_stderr, reapi::ActionResult* result);

}  // namespace assay
