// The HTTP API's two ways of pushing (docs/dashboard.md): forwarding a gRPC server stream as events,
// and sending a list again whenever it changes. Each holds a stream slot of HttpServer for as long
// as it is open, and its gRPC call is cancelled when the client goes or the server stops.
#pragma once

#include <httplib.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/sync_stream.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "assay/v1/jobs.grpc.pb.h"
#include "common/base/status_util.h"
#include "coordinator/http_server.h"

namespace assay {

// How long one forwarded call may take; pushed streams end after kStreamLifetime and the page opens
// them again, so a client that went away without a word holds its thread for a bounded time.
inline constexpr auto kCallTimeout = std::chrono::seconds(30);
inline constexpr auto kStreamLifetime = std::chrono::minutes(5);
inline constexpr absl::Duration kKeepAlive = absl::Seconds(15);

inline void SetDeadline(grpc::ClientContext* context, std::chrono::seconds timeout = kCallTimeout) {
  context->set_deadline(std::chrono::system_clock::now() + timeout);
}

std::string ErrorJson(const absl::Status& status);

// Jobs.GetJob over the API's channel, within kCallTimeout.
absl::StatusOr<assay::v1::Job> GetJob(assay::v1::Jobs::Stub* jobs, const std::string& id);

// Ends a forwarded server stream the client went away from: cancels it, drains what is in flight and
// finishes the call (a ClientReader must be finished before it is destroyed).
template <typename T>
void CancelReader(grpc::ClientContext* context, grpc::ClientReader<T>* reader) {
  context->TryCancel();
  T rest;
  while (reader->Read(&rest)) {
  }
  (void)reader->Finish();
}

// Answers with the server stream `open` starts, each message as an event (`to_json` nullopt: skip
// it). A stream that fails before its first message is answered as an error; after, its last event is
// {"error": ...}.
template <typename T>
void PushEvents(HttpServer* server, httplib::Response& response,
                std::function<std::unique_ptr<grpc::ClientReader<T>>(grpc::ClientContext*)> open,
                std::function<std::optional<std::string>(const T&)> to_json) {
  std::shared_ptr<HttpServer::StreamSlot> slot = server->AcquireStream();
  if (slot == nullptr) return SetError(response, absl::UnavailableError("too many open streams (--http-max-streams)"));
  struct State {
    std::shared_ptr<HttpServer::StreamSlot> slot;
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<T>> reader;
    bool finished = false;
  };
  auto state = std::make_shared<State>();
  state->slot = std::move(slot);
  state->context.set_deadline(std::chrono::system_clock::now() + kStreamLifetime);
  if (!state->slot->Track(&state->context)) return SetError(response, absl::UnavailableError("stopping"));
  state->reader = open(&state->context);
  T first;
  if (!state->reader->Read(&first)) {
    state->finished = true;
    grpc::Status status = state->reader->Finish();
    state->slot->Untrack(&state->context);
    return SetError(response, status.ok() ? absl::NotFoundError("nothing to send") : FromGrpc(status));
  }
  auto pending = std::make_shared<std::optional<T>>(std::move(first));
  response.set_header("X-Accel-Buffering", "no");
  response.set_chunked_content_provider(
      "text/event-stream",
      [state, pending, to_json](size_t, httplib::DataSink& sink) {
        T message;
        if (pending->has_value()) {
          message = std::move(**pending);
          pending->reset();
        } else if (!state->reader->Read(&message)) {
          state->finished = true;
          grpc::Status status = state->reader->Finish();
          if (!status.ok() && status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED &&
              status.error_code() != grpc::StatusCode::CANCELLED) {
            SendEvent(sink, ErrorJson(FromGrpc(status)));
          }
          sink.done();
          return true;
        }
        std::optional<std::string> json = to_json(message);
        return !json.has_value() || SendEvent(sink, *json);
      },
      [state](bool) {
        if (!state->finished) CancelReader(&state->context, state->reader.get());
        state->slot->Untrack(&state->context);
      });
}

// Answers with `make()` at once and again whenever its value changes (looked at once a second), a
// keep-alive comment every kKeepAlive, until the client goes or the server stops.
void PushWhenChanged(HttpServer* server, httplib::Response& response,
                     std::function<absl::StatusOr<std::string>()> make);

}  // namespace assay
