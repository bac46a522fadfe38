// A finished task's log is served whole. Where the live link dropped output, the worker's note
// (LogChunk.gap) names the bytes of the run's stdout and stderr it stands for; once the task has
// finished, those bytes are read from the stored stdout/stderr blobs and served in the note's place
// (its stdout part, then its stderr part). The live view keeps the note.
#pragma once

#include <vector>

#include "assay/v1/job.pb.h"
#include "common/cas/blob_store.h"

namespace assay {

// What a finished task's log is completed from: its last attempt and that run's stdout/stderr.
struct FinishedOutput {
  int32_t attempt = 0;
  reapi::Digest stdout_digest;
  reapi::Digest stderr_digest;
};

// The chunks to serve in place of `note` (a chunk with a gap, of the attempt `output` is from): the
// dropped bytes in pieces of at most kLogPieceBytes, or the note itself when they cannot be read
// (a blob gone from the CAS, a range beyond it).
inline constexpr int64_t kLogPieceBytes = 1 << 20;
std::vector<assay::v1::LogChunk> FillGap(BlobStore& blobs, const FinishedOutput& output,
                                         const assay::v1::LogChunk& note);

}  // namespace assay
