#include "coordinator/complete_log.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace assay {

using assay::v1::LogChunk;

namespace {

// Appends bytes [offset, offset + size) of `digest` to `out` as chunks of `stream`, like `note`.
absl::Status ReadRange(BlobStore& blobs, const reapi::Digest& proto, int64_t offset, int64_t size,
                       LogChunk::Stream stream, const LogChunk& note, std::vector<LogChunk>* out) {
  if (size == 0) return absl::OkStatus();
  auto digest = Digest::FromProto(proto);
  if (!digest.ok()) return digest.status();
  if (offset < 0 || size < 0 || offset + size > digest->size()) {
    return absl::OutOfRangeError("the dropped range goes beyond the stored output");
  }
  std::string piece;
  auto flush = [&] {
    LogChunk chunk;
    chunk.set_task_id(note.task_id());
    chunk.set_stream(stream);
    chunk.set_time_ms(note.time_ms());
    chunk.set_seq(note.seq());
    chunk.set_attempt(note.attempt());
    chunk.set_data(std::move(piece));
    piece.clear();
    out->push_back(std::move(chunk));
  };
  absl::Status s = blobs.Read(*digest, offset, size, [&](absl::string_view data) {
    while (!data.empty()) {
      const size_t take = std::min(data.size(), static_cast<size_t>(kLogPieceBytes) - piece.size());
      piece.append(data.data(), take);
      data.remove_prefix(take);
      if (piece.size() == static_cast<size_t>(kLogPieceBytes)) flush();
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (!piece.empty()) flush();
  return absl::OkStatus();
}

}  // namespace

std::vector<LogChunk> FillGap(BlobStore& blobs, const FinishedOutput& output, const LogChunk& note) {
  std::vector<LogChunk> out;
  const assay::v1::LogGap& gap = note.gap();
  absl::Status s = ReadRange(blobs, output.stdout_digest, gap.stdout_offset(), gap.stdout_bytes(), LogChunk::STDOUT,
                             note, &out);
  if (s.ok()) {
    s = ReadRange(blobs, output.stderr_digest, gap.stderr_offset(), gap.stderr_bytes(), LogChunk::STDERR, note, &out);
  }
  if (!s.ok()) {
    spdlog::warn("task {}: the output the live link dropped cannot be read back ({}); its log keeps the note",
                 note.task_id(), s.ToString());
    return {note};
  }
  return out;
}

}  // namespace assay
