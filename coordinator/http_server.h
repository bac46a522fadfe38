// The coordinator's HTTP listener (docs/dashboard.md): the web page's files and the JSON API, with
// the same tokens and scopes as gRPC. cpp-httplib serves it, one thread per open connection, so the
// pool is sized for the pushed streams and one stream more than --http-max-streams is answered 503.
// Every response carries the page's security headers (a strict Content-Security-Policy, nosniff).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/security/auth.h"
#include "common/security/security.h"

namespace httplib {
class Server;
struct Request;
struct Response;
class DataSink;
}  // namespace httplib

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace assay {

class HttpServer {
 public:
  struct Options {
    std::string listen = "127.0.0.1:7180";  // "": off
    std::string port_file;                  // the bound port is written here once serving
    std::string web_root;                   // index.html, app/, node_modules/
    int max_streams = 64;                   // pushed responses open at once
    // False for the default address: when its port is taken (another coordinator on this host), the
    // coordinator serves without a dashboard and says so, instead of failing to start.
    bool required = true;
    ServerSecurity security;                // TLS certificate and key, tokens (the gRPC ones)
  };

  // Who asks: the scopes of the token presented (every scope when tokens are not checked).
  struct Caller {
    ScopeSet scopes;
    bool auth = false;  // whether tokens are checked
  };
  // A route's work once the caller is allowed.
  using Handler = std::function<void(const httplib::Request&, httplib::Response&, const Caller&)>;

  HttpServer();
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // A non-loopback address needs TLS and a token file (or --allow-insecure-remote); checked before the
  // coordinator opens its database.
  static absl::Status CheckOptions(const Options& options);
  // Checks the options, reads the tokens and makes the listener; routes are added after, then Start
  // serves.
  absl::Status Init(const Options& options);
  // `method` is the gRPC method the route stands for ("/assay.v1.Jobs/GetJob"): the caller needs one
  // of its scopes.
  void Get(const std::string& pattern, const std::string& method, Handler handler);
  void Post(const std::string& pattern, const std::string& method, Handler handler);
  absl::Status Start();
  int port() const { return port_; }
  // Ends every pushed stream (their gRPC calls are cancelled) and stops serving.
  void Stop();

  // For pushed responses: a slot among --http-max-streams (nullopt: all taken, the caller answers
  // 503), which holds the gRPC call it forwards so that Stop can cancel it.
  class StreamSlot {
   public:
    StreamSlot(HttpServer* server) : server_(server) {}
    ~StreamSlot();
    StreamSlot(const StreamSlot&) = delete;
    StreamSlot& operator=(const StreamSlot&) = delete;
    // Registers the call's context (cancelled at Stop); false when stopping.
    bool Track(grpc::ClientContext* context);
    void Untrack(grpc::ClientContext* context);
    // Waits up to `timeout` for the server to stop; true once it is stopping.
    bool WaitStopping(absl::Duration timeout) const;

   private:
    HttpServer* server_;
  };
  std::shared_ptr<StreamSlot> AcquireStream();

 private:
  void Route(bool post, const std::string& pattern, const std::string& method, Handler handler);
  void ServeFiles();
  absl::StatusOr<Caller> Authorize(const httplib::Request& request, const std::string& method) const;

  Options options_;
  std::optional<std::vector<TokenGrant>> grants_;  // nullopt: tokens not checked
  std::unique_ptr<httplib::Server> server_;
  std::string host_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> streams_{0};
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);
};

// `text` as a JSON string, quoted.
std::string JsonQuote(absl::string_view text);
// Writes `status` as {"error": ..., "code": ...} with the matching HTTP status.
void SetError(httplib::Response& response, const absl::Status& status);
// One pushed message: "data: JSON\n\n". False once the client has gone.
bool SendEvent(httplib::DataSink& sink, const std::string& json);

}  // namespace assay
