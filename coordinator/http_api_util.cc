#include "coordinator/http_api_util.h"

#include "absl/strings/str_cat.h"

namespace assay {

std::string ErrorJson(const absl::Status& status) {
  return absl::StrCat("{\"error\": ", JsonQuote(status.message()), ", \"code\": \"",
                      absl::StatusCodeToString(status.code()), "\"}");
}

absl::StatusOr<assay::v1::Job> GetJob(assay::v1::Jobs::Stub* jobs, const std::string& id) {
  assay::v1::GetJobRequest request;
  request.set_job_id(id);
  assay::v1::Job job;
  grpc::ClientContext context;
  SetDeadline(&context);
  if (grpc::Status s = jobs->GetJob(&context, request, &job); !s.ok()) return FromGrpc(s);
  return job;
}

void PushWhenChanged(HttpServer* server, httplib::Response& response,
                     std::function<absl::StatusOr<std::string>()> make) {
  std::shared_ptr<HttpServer::StreamSlot> slot = server->AcquireStream();
  if (slot == nullptr) return SetError(response, absl::UnavailableError("too many open streams (--http-max-streams)"));
  absl::StatusOr<std::string> first = make();
  if (!first.ok()) return SetError(response, first.status());
  struct State {
    std::shared_ptr<HttpServer::StreamSlot> slot;
    std::string last;
    bool sent = false;
    absl::Time last_write;
  };
  auto state = std::make_shared<State>();
  state->slot = std::move(slot);
  state->last = std::move(*first);
  response.set_header("X-Accel-Buffering", "no");
  response.set_chunked_content_provider("text/event-stream", [state, make](size_t, httplib::DataSink& sink) {
    if (!state->sent) {
      state->sent = true;
      state->last_write = absl::Now();
      return SendEvent(sink, state->last);
    }
    if (state->slot->WaitStopping(absl::Seconds(1))) {
      sink.done();
      return true;
    }
    absl::StatusOr<std::string> now = make();
    if (now.ok() && *now != state->last) {
      state->last = std::move(*now);
      state->last_write = absl::Now();
      return SendEvent(sink, state->last);
    }
    if (absl::Now() - state->last_write >= kKeepAlive) {
      state->last_write = absl::Now();
      static constexpr char kComment[] = ": keep-alive\n\n";
      return sink.is_writable() && sink.write(kComment, sizeof(kComment) - 1);
    }
    return sink.is_writable();
  });
}

}  // namespace assay
