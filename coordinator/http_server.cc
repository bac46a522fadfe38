#include "coordinator/http_server.h"

#include <httplib.h>
#include <grpcpp/client_context.h>
#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"

namespace assay {

namespace {

// What the page may load and where it may connect: its own origin only, no inline script or style.
constexpr char kContentSecurityPolicy[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

// Threads beyond the streams' for plain requests and static files.
constexpr int kRequestThreads = 8;

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted: return 409;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

}  // namespace

std::string JsonQuote(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(&out, "\\u00", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

void SetError(httplib::Response& response, const absl::Status& status) {
  response.status = HttpStatusOf(status.code());
  response.set_content(absl::StrCat("{\"error\": ", JsonQuote(status.message()), ", \"code\": \"",
                                    absl::StatusCodeToString(status.code()), "\"}\n"),
                       "application/json");
  if (status.code() == absl::StatusCode::kUnauthenticated) response.set_header("WWW-Authenticate", "Bearer");
}

bool SendEvent(httplib::DataSink& sink, const std::string& json) {
  std::string event = absl::StrCat("data: ", json, "\n\n");
  return sink.is_writable() && sink.write(event.data(), event.size());
}

HttpServer::HttpServer() = default;
HttpServer::~HttpServer() { Stop(); }

absl::Status HttpServer::CheckOptions(const Options& options) {
  if (options.listen.empty()) return absl::OkStatus();
  const size_t colon = options.listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(options.listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--http-listen ", options.listen, ": expected HOST:PORT"));
  }
  const ServerSecurity& security = options.security;
  const bool tls = !security.cert_file.empty() && !security.key_file.empty();
  if (!IsLoopbackAddress(options.listen) && !security.allow_insecure_remote &&
      (!tls || security.token_file.empty())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--http-listen ", options.listen,
        " is reachable from other hosts: it needs --tls-cert, --tls-key and --token-file (or --allow-insecure-remote)"));
  }
  return absl::OkStatus();
}

absl::Status HttpServer::Init(const Options& options) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  options_ = options;
  const size_t colon = options.listen.rfind(':');
  host_ = options.listen.substr(0, colon);
  if (host_.size() > 1 && host_.front() == '[' && host_.back() == ']') host_ = host_.substr(1, host_.size() - 2);
  const ServerSecurity& security = options.security;
  const bool tls = !security.cert_file.empty() && !security.key_file.empty();
  if (!security.token_file.empty()) {
    auto grants = ReadTokenFile(security.token_file);
    if (!grants.ok()) return grants.status();
    grants_ = std::move(*grants);
  }
  if (tls) {
    auto ssl = std::make_unique<httplib::SSLServer>(security.cert_file.c_str(), security.key_file.c_str());
    if (!ssl->is_valid()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--http-listen: cannot load the TLS certificate ", security.cert_file, " and key"));
    }
    server_ = std::move(ssl);
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  const int threads = options.max_streams + kRequestThreads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_default_headers({{"Content-Security-Policy", kContentSecurityPolicy},
                                {"X-Content-Type-Options", "nosniff"},
                                {"Referrer-Policy", "no-referrer"},
                                {"X-Frame-Options", "DENY"}});
  server_->set_payload_max_length(1 << 20);
  server_->set_tcp_nodelay(true);
  server_->set_keep_alive_timeout(2);  // an idle connection's thread is back soon (and Stop is quick)
  server_->set_exception_handler([](const httplib::Request&, httplib::Response& response, std::exception_ptr) {
    SetError(response, absl::InternalError("the request failed"));
  });
  ServeFiles();
  return absl::OkStatus();
}

void HttpServer::ServeFiles() {
  const std::string& root = options_.web_root;
  // Static files carry the page's headers too (mount points do not get the default ones).
  httplib::Headers headers = {{"Cache-Control", "no-cache"},
                              {"Content-Security-Policy", kContentSecurityPolicy},
                              {"Referrer-Policy", "no-referrer"},
                              {"X-Frame-Options", "DENY"}};
  if (!server_->set_mount_point("/app", root + "/app", headers)) {
    spdlog::warn("the dashboard's files are not in {} (--web-root): the page will not load", root);
  }
  // Only the page's own libraries, not the whole node_modules (its test tools are there too).
  for (const char* library : {"htm", "uplot", "ansi_up"}) {
    server_->set_mount_point(absl::StrCat("/vendor/", library), absl::StrCat(root, "/node_modules/", library), headers);
  }
  server_->set_file_extension_and_mimetype_mapping("js", "text/javascript");
  server_->set_file_extension_and_mimetype_mapping("mjs", "text/javascript");
  server_->Get("/", [root](const httplib::Request&, httplib::Response& response) {
    auto page = ReadFile(root + "/index.html");
    if (!page.ok()) {
      SetError(response, absl::NotFoundError(absl::StrCat("the dashboard's page is not installed (",
                                                          page.status().message(), "); see --web-root")));
      return;
    }
    response.set_header("Cache-Control", "no-cache");
    response.set_content(*page, "text/html; charset=utf-8");
  });
  // Errors httplib answers itself (no such route, a POST without a length) say so in JSON too.
  server_->set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty()) return;
    const absl::Status status =
        response.status == 404   ? absl::NotFoundError(absl::StrCat("no such page or API route: ", request.path))
        : response.status == 413 ? absl::ResourceExhaustedError("the request body is larger than 1 MiB")
                                 : absl::InvalidArgumentError("a malformed request (a POST needs a Content-Length)");
    const int code = response.status;
    SetError(response, status);
    response.status = code;
  });
}

absl::StatusOr<HttpServer::Caller> HttpServer::Authorize(const httplib::Request& request,
                                                         const std::string& method) const {
  if (!grants_.has_value()) return Caller{ScopeSet::All(), false};
  std::optional<absl::string_view> header;
  auto it = request.headers.find("Authorization");
  if (it != request.headers.end()) header = it->second;
  auto scopes = CheckBearerToken(*grants_, header, method);
  if (!scopes.ok()) return scopes.status();
  return Caller{*scopes, true};
}

void HttpServer::Route(bool post, const std::string& pattern, const std::string& method, Handler handler) {
  auto wrapped = [this, method, handler = std::move(handler)](const httplib::Request& request,
                                                               httplib::Response& response) {
    response.set_header("Cache-Control", "no-store");
    auto caller = Authorize(request, method);
    if (!caller.ok()) {
      SetError(response, caller.status());
      return;
    }
    handler(request, response, *caller);
  };
  if (post) {
    server_->Post(pattern, std::move(wrapped));
  } else {
    server_->Get(pattern, std::move(wrapped));
  }
}

void HttpServer::Get(const std::string& pattern, const std::string& method, Handler handler) {
  Route(false, pattern, method, std::move(handler));
}

void HttpServer::Post(const std::string& pattern, const std::string& method, Handler handler) {
  Route(true, pattern, method, std::move(handler));
}

absl::Status HttpServer::Start() {
  const size_t colon = options_.listen.rfind(':');
  int wanted = 0;
  (void)absl::SimpleAtoi(options_.listen.substr(colon + 1), &wanted);
  if (wanted == 0) {
    port_ = server_->bind_to_any_port(host_);
  } else if (server_->bind_to_port(host_, wanted)) {
    port_ = wanted;
  }
  if (port_ <= 0) {
    port_ = 0;
    return absl::UnavailableError(absl::StrCat("--http-listen: cannot listen on ", options_.listen));
  }
  if (!options_.port_file.empty()) {
    if (absl::Status s = WriteFile(options_.port_file, absl::StrCat(port_, "\n")); !s.ok()) return s;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return absl::OkStatus();
}

HttpServer::StreamSlot::~StreamSlot() { server_->streams_.fetch_sub(1); }

bool HttpServer::StreamSlot::Track(grpc::ClientContext* context) {
  absl::MutexLock lock(&server_->mu_);
  if (server_->stopping_) return false;
  server_->calls_.insert(context);
  return true;
}

void HttpServer::StreamSlot::Untrack(grpc::ClientContext* context) {
  absl::MutexLock lock(&server_->mu_);
  server_->calls_.erase(context);
}

bool HttpServer::StreamSlot::WaitStopping(absl::Duration timeout) const {
  absl::MutexLock lock(&server_->mu_);
  return server_->mu_.AwaitWithTimeout(absl::Condition(&server_->stopping_), timeout);
}

std::shared_ptr<HttpServer::StreamSlot> HttpServer::AcquireStream() {
  if (streams_.fetch_add(1) >= options_.max_streams) {
    streams_.fetch_sub(1);
    return nullptr;
  }
  return std::make_shared<StreamSlot>(this);
}

void HttpServer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (grpc::ClientContext* context : calls_) context->TryCancel();
  }
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace assay
