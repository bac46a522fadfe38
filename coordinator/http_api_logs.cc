// The dashboard's log and artifact routes: a task's log as its last part then live, a range of it
// ("load earlier"), the raw text, and an output file as an attachment.
#include <httplib.h>

#include <deque>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_util.h"
#include "common/digest/digest.h"
#include "common/digest/resource_name.h"
#include "coordinator/http_api.h"
#include "coordinator/http_api_util.h"
#include "google/bytestream/bytestream.grpc.pb.h"

namespace assay {

using assay::v1::LogChunk;
using nlohmann::json;

namespace {

constexpr int64_t kDefaultTail = 64 << 10;
constexpr int64_t kMaxTail = 16 << 20;
constexpr int64_t kMaxRange = 1 << 20;

// A piece of a task's log and where it starts in the task's whole log.
struct Piece {
  int64_t offset = 0;
  LogChunk::Stream stream = LogChunk::STDOUT;
  std::string text;
};

std::string PieceJson(const Piece& piece) {
  json event = {{"offset", piece.offset}, {"stream", LogChunk::Stream_Name(piece.stream)}, {"text", piece.text}};
  return event.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The log request's job, task and numbers.
struct LogQuery {
  std::string job, task;

  static absl::StatusOr<LogQuery> From(const httplib::Request& request) {
    LogQuery query{request.matches[1], request.get_param_value("task")};
    if (query.task.empty()) return absl::InvalidArgumentError("task: required (a task id, \"cell/step\")");
    return query;
  }
  absl::StatusOr<int64_t> Number(const httplib::Request& request, const char* name, int64_t fallback, int64_t max) const {
    if (!request.has_param(name)) return fallback;
    int64_t value = 0;
    if (!absl::SimpleAtoi(request.get_param_value(name), &value) || value < 0 || value > max) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": expected 0 to ", max));
    }
    return value;
  }
  std::unique_ptr<grpc::ClientReader<LogChunk>> Open(assay::v1::Jobs::Stub* jobs, grpc::ClientContext* context,
                                                     bool follow) const {
    assay::v1::StreamLogsRequest request;
    request.set_job_id(job);
    request.set_task_id(task);
    request.set_follow(follow);
    return jobs->StreamLogs(context, request);
  }
};

// Reads the task's whole log as it is now, calling `each` with every piece in order; the total size.
absl::StatusOr<int64_t> ReadLog(assay::v1::Jobs::Stub* jobs, const LogQuery& query,
                                const std::function<void(Piece)>& each) {
  grpc::ClientContext context;
  SetDeadline(&context, std::chrono::seconds(120));
  auto reader = query.Open(jobs, &context, /*follow=*/false);
  LogChunk chunk;
  int64_t offset = 0;
  while (reader->Read(&chunk)) {
    if (chunk.task_id() != query.task) continue;  // the request's task id also selects by prefix
    const int64_t size = static_cast<int64_t>(chunk.data().size());
    each(Piece{offset, chunk.stream(), std::move(*chunk.mutable_data())});
    offset += size;
  }
  if (grpc::Status s = reader->Finish(); !s.ok()) return FromGrpc(s);
  return offset;
}

// What a tail-then-follow response still has to send.
struct TailState {
  std::deque<std::string> events;  // queued, sent first
  std::shared_ptr<HttpServer::StreamSlot> slot;
  bool follow = false;
  int64_t skip = 0;  // bytes of the followed stream already sent from the snapshot
  int64_t offset = 0;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<LogChunk>> reader;
  bool finished = true;
};

bool SendTail(TailState& state, const LogQuery& query, assay::v1::Jobs::Stub* jobs, httplib::DataSink& sink) {
  if (!state.events.empty()) {
    std::string event = std::move(state.events.front());
    state.events.pop_front();
    return SendEvent(sink, event);
  }
  if (!state.follow) {
    sink.done();
    return true;
  }
  if (state.reader == nullptr) {
    state.context.set_deadline(std::chrono::system_clock::now() + kStreamLifetime);
    if (!state.slot->Track(&state.context)) {
      sink.done();
      return true;
    }
    state.reader = query.Open(jobs, &state.context, /*follow=*/true);
    state.finished = false;
  }
  LogChunk chunk;
  while (state.reader->Read(&chunk)) {
    if (chunk.task_id() != query.task) continue;
    Piece piece{state.offset, chunk.stream(), std::move(*chunk.mutable_data())};
    const int64_t size = static_cast<int64_t>(piece.text.size());
    state.offset += size;
    if (state.skip >= size) {
      state.skip -= size;
      continue;
    }
    piece.text.erase(0, static_cast<size_t>(state.skip));
    piece.offset += state.skip;
    state.skip = 0;
    return SendEvent(sink, PieceJson(piece));
  }
  state.finished = true;
  (void)state.reader->Finish();
  sink.done();
  return true;
}

// The task's last `tail` bytes as events, then (follow=1) its new output as it comes.
void ServeTail(HttpServer* server, assay::v1::Jobs::Stub* jobs, const httplib::Request& request,
               httplib::Response& response) {
  auto query = LogQuery::From(request);
  if (!query.ok()) return SetError(response, query.status());
  auto tail = query->Number(request, "tail", kDefaultTail, kMaxTail);
  if (!tail.ok()) return SetError(response, tail.status());
  auto state = std::make_shared<TailState>();
  state->follow = request.get_param_value("follow") == "1";
  std::deque<Piece> kept;
  int64_t kept_bytes = 0;
  auto total = ReadLog(jobs, *query, [&](Piece piece) {
    kept_bytes += static_cast<int64_t>(piece.text.size());
    kept.push_back(std::move(piece));
    while (!kept.empty() && kept_bytes - static_cast<int64_t>(kept.front().text.size()) >= *tail) {
      kept_bytes -= static_cast<int64_t>(kept.front().text.size());
      kept.pop_front();
    }
  });
  if (!total.ok()) return SetError(response, total.status());
  const int64_t start = std::max<int64_t>(0, *total - *tail);
  if (!kept.empty() && kept.front().offset < start) {
    kept.front().text.erase(0, static_cast<size_t>(start - kept.front().offset));
    kept.front().offset = start;
  }
  state->events.push_back(json{{"start", true}, {"offset", start}, {"size", *total}}.dump());
  for (const Piece& piece : kept) state->events.push_back(PieceJson(piece));
  state->skip = *total;
  if (state->follow) {
    state->slot = server->AcquireStream();
    if (state->slot == nullptr) {
      return SetError(response, absl::UnavailableError("too many open streams (--http-max-streams)"));
    }
  }
  response.set_header("X-Accel-Buffering", "no");
  response.set_chunked_content_provider(
      "text/event-stream",
      [state, query = *query, jobs](size_t, httplib::DataSink& sink) {
        return SendTail(*state, query, jobs, sink);
      },
      [state](bool) {
        if (!state->finished) CancelReader(&state->context, state->reader.get());
        if (state->slot != nullptr) state->slot->Untrack(&state->context);
      });
}

// A task's output file as an attachment: the job's result names its digest, ByteStream reads it.
void ServeArtifact(assay::v1::Jobs::Stub* jobs, const std::shared_ptr<grpc::Channel>& channel,
                   const httplib::Request& request, httplib::Response& response) {
  const std::string task_id = request.get_param_value("task"), path = request.get_param_value("path");
  if (task_id.empty() || path.empty()) {
    return SetError(response, absl::InvalidArgumentError("task and path: required"));
  }
  auto found = GetJob(jobs, request.matches[1]);
  if (!found.ok()) return SetError(response, found.status());
  const assay::v1::Job& job = *found;
  const build::bazel::remote::execution::v2::OutputFile* file = nullptr;
  for (const assay::v1::Task& task : job.tasks()) {
    if (task.id() != task_id) continue;
    for (const auto& output : task.result().output_files()) {
      if (output.path() == path) file = &output;
    }
  }
  if (file == nullptr) {
    return SetError(response, absl::NotFoundError(absl::StrCat("task ", task_id, " of job ", job.id(),
                                                               " has no output file '", path, "'")));
  }
  auto digest = Digest::FromProto(file->digest());
  if (!digest.ok()) return SetError(response, digest.status());
  struct Read {
    grpc::ClientContext context;
    std::unique_ptr<google::bytestream::ByteStream::Stub> stub;
    std::unique_ptr<grpc::ClientReader<google::bytestream::ReadResponse>> reader;
    bool finished = false;
  };
  auto read = std::make_shared<Read>();
  read->stub = google::bytestream::ByteStream::NewStub(channel);
  google::bytestream::ReadRequest bytes;
  bytes.set_resource_name(ReadResourceName("", *digest));
  read->context.set_deadline(std::chrono::system_clock::now() + std::chrono::hours(1));
  read->reader = read->stub->Read(&read->context, bytes);
  const std::string name = path.substr(path.rfind('/') + 1);
  response.set_header("Content-Disposition", absl::StrCat("attachment; filename=", JsonQuote(name)));
  response.set_content_provider(
      static_cast<size_t>(digest->size()), "application/octet-stream",
      [read](size_t, size_t, httplib::DataSink& sink) {
        google::bytestream::ReadResponse chunk;
        if (!read->reader->Read(&chunk)) {
          read->finished = true;
          (void)read->reader->Finish();
          return false;  // fewer bytes than the digest's size: the connection is closed
        }
        return sink.write(chunk.data().data(), chunk.data().size());
      },
      [read](bool) {  // after the last byte too: the call is finished either way
        if (!read->finished) CancelReader(&read->context, read->reader.get());
      });
}

}  // namespace

void HttpApi::AddLogRoutes() {
  auto* jobs = jobs_.get();
  server_->Get(R"(/api/v1/jobs/([^/]+)/log)", "/assay.v1.Jobs/StreamLogs",
               [this, jobs](const httplib::Request& request, httplib::Response& response, const HttpServer::Caller&) {
                 ServeTail(server_, jobs, request, response);
               });
  server_->Get(R"(/api/v1/jobs/([^/]+)/log/range)", "/assay.v1.Jobs/StreamLogs",
               [jobs](const httplib::Request& request, httplib::Response& response, const HttpServer::Caller&) {
                 auto query = LogQuery::From(request);
                 if (!query.ok()) return SetError(response, query.status());
                 auto from = query->Number(request, "offset", 0, int64_t{1} << 50);
                 auto length = query->Number(request, "length", kMaxRange, kMaxRange);
                 if (!from.ok() || !length.ok()) return SetError(response, from.ok() ? length.status() : from.status());
                 const int64_t end = *from + *length;
                 json chunks = json::array();
                 int64_t last = *from;
                 auto total = ReadLog(jobs, *query, [&](Piece piece) {
                   const int64_t piece_end = piece.offset + static_cast<int64_t>(piece.text.size());
                   if (piece_end <= *from || piece.offset >= end) return;
                   const int64_t cut_front = std::max<int64_t>(0, *from - piece.offset);
                   const int64_t keep = std::min(piece_end, end) - piece.offset - cut_front;
                   piece.text = piece.text.substr(static_cast<size_t>(cut_front), static_cast<size_t>(keep));
                   piece.offset += cut_front;
                   last = piece.offset + keep;
                   chunks.push_back(json::parse(PieceJson(piece)));
                 });
                 if (!total.ok()) return SetError(response, total.status());
                 json out = {{"offset", *from}, {"end", last}, {"size", *total}, {"chunks", std::move(chunks)}};
                 response.set_content(out.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
               });
  server_->Get(R"(/api/v1/jobs/([^/]+)/log/raw)", "/assay.v1.Jobs/StreamLogs",
               [jobs](const httplib::Request& request, httplib::Response& response, const HttpServer::Caller&) {
                 auto query = LogQuery::From(request);
                 if (!query.ok()) return SetError(response, query.status());
                 std::string text;
                 auto total = ReadLog(jobs, *query, [&text](Piece piece) { text += piece.text; });
                 if (!total.ok()) return SetError(response, total.status());
                 response.set_content(std::move(text), "text/plain; charset=utf-8");
               });
  server_->Get(R"(/api/v1/jobs/([^/]+)/artifact)", "/google.bytestream.ByteStream/Read",
               [this, jobs](const httplib::Request& request, httplib::Response& response, const HttpServer::Caller&) {
                 ServeArtifact(jobs, channel_, request, response);
               });
}

}  // namespace assay
