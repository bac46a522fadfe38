// The dashboard's JSON API (docs/dashboard.md): each route forwards to the gRPC method it stands for
// over an in-process channel, so the web, the CLI and gRPC clients see one model (the same messages,
// as protobuf JSON with the proto field names), and each is checked against that method's scopes by
// HttpServer before it runs. Pushed routes hold one of HttpServer's stream slots.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include "assay/v1/admin.grpc.pb.h"
#include "assay/v1/jobs.grpc.pb.h"
#include "coordinator/http_server.h"
#include "google/protobuf/message.h"

namespace assay {

// A message as the API's JSON: proto field names, every field present, enums by name.
std::string ToJson(const google::protobuf::Message& message);

class HttpApi {
 public:
  HttpApi(HttpServer* server, std::shared_ptr<grpc::Channel> channel);
  void AddRoutes();

 private:
  // The job routes (http_api.cc).
  void AddJobRoutes();
  // The workers, the queue, the cache and the trends (http_api_fleet.cc).
  void AddFleetRoutes();
  // A task's log: its tail then live, a range of it, the raw text (http_api_logs.cc).
  void AddLogRoutes();

  HttpServer* server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<assay::v1::Jobs::Stub> jobs_;
  std::unique_ptr<assay::v1::Admin::Stub> admin_;
};

}  // namespace assay
