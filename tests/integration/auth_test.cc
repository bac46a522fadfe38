// Scoped tokens against the real coordinator: every RPC of every service, called with no token, an
// unknown token and a token of each single scope, is refused (UNAUTHENTICATED / PERMISSION_DENIED
// naming the scope) unless the token has a scope the method needs; refused writes change nothing.
// Over loopback plaintext (where tokens are allowed for Bazel's sake) and over TLS; a client
// certificate from another CA is turned away in the TLS handshake.
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include <google/protobuf/descriptor.pb.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "assay/v1/admin.grpc.pb.h"
#include "assay/v1/blob_access.grpc.pb.h"
#include "assay/v1/dashboard.grpc.pb.h"
#include "assay/v1/jobs.grpc.pb.h"
#include "assay/v1/worker_link.grpc.pb.h"
#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "common/remote/cas_client.h"
#include "common/security/auth.h"
#include "common/tree/merkle.h"
#include "google/bytestream/bytestream.grpc.pb.h"
#include "google/longrunning/operations.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "proto/grpc/reflection/v1alpha/reflection.grpc.pb.h"  // tests/proto
#include "tests/integration/farm.h"
#include "tests/integration/pki.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;
using Channel = std::shared_ptr<grpc::Channel>;

constexpr char kAllToken[] = "a11a11a11a11a11a11a11a11a11a11a1";

std::string TokenOf(Scope scope) { return absl::StrCat("scope-", ScopeName(scope), "-0123456789abcdef"); }

std::string TokenFile() {
  std::string text = absl::StrCat("# one token per scope, and one with them all\n", kAllToken,
                                  " submit,read,admin,worker,cache-read,cache-write,execute\n");
  for (int i = 0; i < kScopeCount; ++i) {
    absl::StrAppend(&text, TokenOf(static_cast<Scope>(i)), " ", ScopeName(static_cast<Scope>(i)), "\n");
  }
  return text;
}

// Reads a server stream to its end; its status.
template <typename Reader>
grpc::Status Drain(std::unique_ptr<Reader> reader) {
  google::longrunning::Operation op;
  while (reader->Read(&op)) {
  }
  return reader->Finish();
}

// One RPC, called with a request that is valid but for the caller's rights. `tag` makes the request
// of each caller distinct (a blob, an action), so what a refused call would have written can be
// looked for afterwards.
struct Rpc {
  std::string method;
  std::function<grpc::Status(const Channel&, const std::string& tag)> call;
};

class AuthTest : public ::testing::Test {
 protected:
  static Digest BlobFor(const std::string& tag) { return Digest::OfBytes("blob written by " + tag); }
  static Digest ActionFor(const std::string& tag) { return Digest::OfBytes("action of " + tag); }

  Channel ChannelWith(const std::string& token, const ClientSecurity& base = {}) {
    ClientSecurity security = base;
    if (!token.empty()) {
      security.token_file = (farm_.dir() / ("token-" + std::to_string(files_++))).string();
      EXPECT_TRUE(WriteFile(security.token_file, token + "\n").ok());
    }
    auto credentials = MakeChannelCredentials(security, farm_.address());
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    return grpc::CreateChannel(farm_.address(), *credentials);
  }

  std::vector<Rpc> Rpcs() {
    using namespace build::bazel::remote::execution::v2;
    auto jobs = [](const Channel& c) { return assay::v1::Jobs::NewStub(c); };
    auto cas = [](const Channel& c) { return ContentAddressableStorage::NewStub(c); };
    auto ac = [](const Channel& c) { return ActionCache::NewStub(c); };
    auto bs = [](const Channel& c) { return google::bytestream::ByteStream::NewStub(c); };
    auto admin = [](const Channel& c) { return assay::v1::Admin::NewStub(c); };
    auto blob_access = [](const Channel& c) { return assay::v1::BlobAccess::NewStub(c); };
    auto dashboard = [](const Channel& c) { return assay::v1::Dashboard::NewStub(c); };
    const Digest source = source_root_;
    return {
        {"/assay.v1.Jobs/Submit", [=](const Channel& c, const std::string&) {
           assay::v1::SubmitRequest r;
           *r.mutable_source_root() = source.ToProto();
           assay::v1::Job job;
           grpc::ClientContext ctx;
           return jobs(c)->Submit(&ctx, r, &job);
         }},
        {"/assay.v1.Jobs/CancelJob", [=](const Channel& c, const std::string&) {
           assay::v1::CancelJobRequest r;
           r.set_job_id("999");
           assay::v1::Job job;
           grpc::ClientContext ctx;
           return jobs(c)->CancelJob(&ctx, r, &job);
         }},
        {"/assay.v1.Jobs/ListStepCaches", [=](const Channel& c, const std::string&) {
           assay::v1::ListStepCachesResponse out;
           grpc::ClientContext ctx;
           return jobs(c)->ListStepCaches(&ctx, assay::v1::ListStepCachesRequest(), &out);
         }},
        {"/assay.v1.Jobs/ListNotifications", [=](const Channel& c, const std::string&) {
           assay::v1::ListNotificationsRequest r;
           r.set_job_id("999");
           assay::v1::ListNotificationsResponse out;
           grpc::ClientContext ctx;
           return jobs(c)->ListNotifications(&ctx, r, &out);
         }},
        {"/assay.v1.Jobs/DeleteStepCaches", [=](const Channel& c, const std::string&) {
           assay::v1::DeleteStepCachesRequest r;
           r.set_key("no-such-key");
           assay::v1::DeleteStepCachesResponse out;
           grpc::ClientContext ctx;
           return jobs(c)->DeleteStepCaches(&ctx, r, &out);
         }},
        {"/assay.v1.Jobs/GetJob", [=](const Channel& c, const std::string&) {
           assay::v1::GetJobRequest r;
           r.set_job_id("999");
           assay::v1::Job job;
           grpc::ClientContext ctx;
           return jobs(c)->GetJob(&ctx, r, &job);
         }},
        {"/assay.v1.Jobs/ListJobs", [=](const Channel& c, const std::string&) {
           assay::v1::ListJobsResponse out;
           grpc::ClientContext ctx;
           return jobs(c)->ListJobs(&ctx, assay::v1::ListJobsRequest(), &out);
         }},
        {"/assay.v1.Jobs/WatchJob", [=](const Channel& c, const std::string&) {
           assay::v1::WatchJobRequest r;
           r.set_job_id("999");
           grpc::ClientContext ctx;
           auto reader = jobs(c)->WatchJob(&ctx, r);
           assay::v1::Job job;
           while (reader->Read(&job)) {
           }
           return reader->Finish();
         }},
        {"/assay.v1.Jobs/StreamLogs", [=](const Channel& c, const std::string&) {
           assay::v1::StreamLogsRequest r;
           r.set_job_id("999");
           grpc::ClientContext ctx;
           auto reader = jobs(c)->StreamLogs(&ctx, r);
           assay::v1::LogChunk chunk;
           while (reader->Read(&chunk)) {
           }
           return reader->Finish();
         }},
        {"/assay.v1.Admin/ListWorkers", [=](const Channel& c, const std::string&) {
           assay::v1::ListWorkersResponse out;
           grpc::ClientContext ctx;
           return admin(c)->ListWorkers(&ctx, assay::v1::ListWorkersRequest(), &out);
         }},
        {"/assay.v1.Admin/GetCacheStats", [=](const Channel& c, const std::string&) {
           assay::v1::CacheStats out;
           grpc::ClientContext ctx;
           return admin(c)->GetCacheStats(&ctx, assay::v1::GetCacheStatsRequest(), &out);
         }},
        {"/assay.v1.Admin/SetWorkerState", [=](const Channel& c, const std::string&) {
           assay::v1::SetWorkerStateRequest request;
           request.set_worker_id("nobody");  // admitted: NOT_FOUND, and nothing changes
           request.set_state(assay::v1::WORKER_CORDONED);
           assay::v1::Worker out;
           grpc::ClientContext ctx;
           return admin(c)->SetWorkerState(&ctx, request, &out);
         }},
        {"/assay.v1.WorkerLink/Connect", [=](const Channel& c, const std::string&) {
           grpc::ClientContext ctx;
           auto stream = assay::v1::WorkerLink::NewStub(c)->Connect(&ctx);
           stream->WritesDone();  // no hello: an admitted caller is sent away for that, not for its token
           assay::v1::CoordinatorMessage m;
           while (stream->Read(&m)) {
           }
           return stream->Finish();
         }},
        {"/build.bazel.remote.execution.v2.Capabilities/GetCapabilities", [=](const Channel& c, const std::string&) {
           ServerCapabilities out;
           grpc::ClientContext ctx;
           return Capabilities::NewStub(c)->GetCapabilities(&ctx, GetCapabilitiesRequest(), &out);
         }},
        {"/build.bazel.remote.execution.v2.ContentAddressableStorage/FindMissingBlobs",
         [=](const Channel& c, const std::string& tag) {
           FindMissingBlobsRequest r;
           *r.add_blob_digests() = BlobFor(tag).ToProto();
           FindMissingBlobsResponse out;
           grpc::ClientContext ctx;
           return cas(c)->FindMissingBlobs(&ctx, r, &out);
         }},
        {"/build.bazel.remote.execution.v2.ContentAddressableStorage/BatchUpdateBlobs",
         [=](const Channel& c, const std::string& tag) {
           BatchUpdateBlobsRequest r;
           auto* e = r.add_requests();
           *e->mutable_digest() = BlobFor("batch " + tag).ToProto();
           e->set_data("blob written by batch " + tag);
           BatchUpdateBlobsResponse out;
           grpc::ClientContext ctx;
           return cas(c)->BatchUpdateBlobs(&ctx, r, &out);
         }},
        {"/build.bazel.remote.execution.v2.ContentAddressableStorage/BatchReadBlobs",
         [=](const Channel& c, const std::string&) {
           BatchReadBlobsRequest r;
           *r.add_digests() = source.ToProto();
           BatchReadBlobsResponse out;
           grpc::ClientContext ctx;
           return cas(c)->BatchReadBlobs(&ctx, r, &out);
         }},
        {"/build.bazel.remote.execution.v2.ContentAddressableStorage/GetTree", [=](const Channel& c, const std::string&) {
           GetTreeRequest r;
           *r.mutable_root_digest() = source.ToProto();
           grpc::ClientContext ctx;
           auto reader = cas(c)->GetTree(&ctx, r);
           GetTreeResponse out;
           while (reader->Read(&out)) {
           }
           return reader->Finish();
         }},
        {"/build.bazel.remote.execution.v2.ActionCache/GetActionResult", [=](const Channel& c, const std::string& tag) {
           GetActionResultRequest r;
           *r.mutable_action_digest() = ActionFor(tag).ToProto();
           ActionResult out;
           grpc::ClientContext ctx;
           return ac(c)->GetActionResult(&ctx, r, &out);
         }},
        {"/build.bazel.remote.execution.v2.ActionCache/UpdateActionResult",
         [=](const Channel& c, const std::string& tag) {
           UpdateActionResultRequest r;
           *r.mutable_action_digest() = ActionFor(tag).ToProto();
           r.mutable_action_result()->set_exit_code(0);
           ActionResult out;
           grpc::ClientContext ctx;
           return ac(c)->UpdateActionResult(&ctx, r, &out);
         }},
        {"/google.bytestream.ByteStream/Read", [=](const Channel& c, const std::string&) {
           google::bytestream::ReadRequest r;
           r.set_resource_name(ReadResourceName("", source));
           grpc::ClientContext ctx;
           auto reader = bs(c)->Read(&ctx, r);
           google::bytestream::ReadResponse out;
           while (reader->Read(&out)) {
           }
           return reader->Finish();
         }},
        {"/google.bytestream.ByteStream/Write", [=](const Channel& c, const std::string& tag) {
           const std::string data = "blob written by stream " + tag;
           google::bytestream::WriteRequest r;
           r.set_resource_name(WriteResourceName("", "4d7a8b8e-0000-4000-8000-000000000001", Digest::OfBytes(data)));
           r.set_data(data);
           r.set_finish_write(true);
           google::bytestream::WriteResponse out;
           grpc::ClientContext ctx;
           auto writer = bs(c)->Write(&ctx, &out);
           writer->Write(r);
           writer->WritesDone();
           return writer->Finish();
         }},
        // An action that is not in the CAS: with the scope, FAILED_PRECONDITION, and no job is made.
        {"/build.bazel.remote.execution.v2.Execution/Execute", [=](const Channel& c, const std::string& tag) {
           ExecuteRequest r;
           *r.mutable_action_digest() = ActionFor(tag).ToProto();
           grpc::ClientContext ctx;
           return Drain(Execution::NewStub(c)->Execute(&ctx, r));
         }},
        {"/build.bazel.remote.execution.v2.Execution/WaitExecution", [=](const Channel& c, const std::string&) {
           WaitExecutionRequest r;
           r.set_name("operations/999/0");
           grpc::ClientContext ctx;
           return Drain(Execution::NewStub(c)->WaitExecution(&ctx, r));
         }},
        {"/google.bytestream.ByteStream/QueryWriteStatus", [=](const Channel& c, const std::string&) {
           google::bytestream::QueryWriteStatusRequest r;
           r.set_resource_name(WriteResourceName("", "4d7a8b8e-0000-4000-8000-000000000002", source));
           google::bytestream::QueryWriteStatusResponse out;
           grpc::ClientContext ctx;
           return bs(c)->QueryWriteStatus(&ctx, r, &out);
         }},
        // Offered with a bucket only (this farm has none: UNIMPLEMENTED once past the scope check).
        {"/assay.v1.BlobAccess/GetDownloadRequests", [=](const Channel& c, const std::string& tag) {
           assay::v1::BlobRequestsRequest r;
           *r.add_digests() = BlobFor(tag).ToProto();
           assay::v1::BlobRequestsResponse out;
           grpc::ClientContext ctx;
           return blob_access(c)->GetDownloadRequests(&ctx, r, &out);
         }},
        {"/assay.v1.BlobAccess/GetUploadRequests", [=](const Channel& c, const std::string& tag) {
           assay::v1::BlobRequestsRequest r;
           *r.add_digests() = BlobFor(tag).ToProto();
           assay::v1::BlobRequestsResponse out;
           grpc::ClientContext ctx;
           return blob_access(c)->GetUploadRequests(&ctx, r, &out);
         }},
        {"/assay.v1.BlobAccess/CommitUploads", [=](const Channel& c, const std::string& tag) {
           assay::v1::BlobRequestsRequest r;
           *r.add_digests() = BlobFor(tag).ToProto();
           assay::v1::BlobRequestsResponse out;
           grpc::ClientContext ctx;
           return blob_access(c)->CommitUploads(&ctx, r, &out);
         }},
        {"/assay.v1.Dashboard/GetDashboard", [=](const Channel& c, const std::string&) {
           assay::v1::DashboardInfo out;
           grpc::ClientContext ctx;
           return dashboard(c)->GetDashboard(&ctx, {}, &out);
         }},
    };
  }

  // Uploads a small source tree with the all-scope token, for Submit and the read calls.
  void UploadSource(const Channel& all) {
    CasClient client(all, "");
    auto tree = ScanDirectory(farm_.WriteTree("src", {{"assay.yaml", "steps:\n  - id: s\n    run: 'true'\n"}}), {});
    ASSERT_TRUE(tree.ok()) << tree.status();
    ASSERT_TRUE(client.Upload(tree->blobs).ok());
    source_root_ = tree->root;
  }

  int JobCount(const Channel& all) {
    assay::v1::ListJobsResponse out;
    grpc::ClientContext ctx;
    EXPECT_TRUE(assay::v1::Jobs::NewStub(all)->ListJobs(&ctx, assay::v1::ListJobsRequest(), &out).ok());
    return out.jobs_size();
  }

  bool BlobPresent(const Channel& all, const std::string& data) {
    build::bazel::remote::execution::v2::FindMissingBlobsRequest r;
    *r.add_blob_digests() = Digest::OfBytes(data).ToProto();
    build::bazel::remote::execution::v2::FindMissingBlobsResponse out;
    grpc::ClientContext ctx;
    EXPECT_TRUE(build::bazel::remote::execution::v2::ContentAddressableStorage::NewStub(all)
                    ->FindMissingBlobs(&ctx, r, &out)
                    .ok());
    return out.missing_blob_digests_size() == 0;
  }

  bool ActionPresent(const Channel& all, const std::string& tag) {
    build::bazel::remote::execution::v2::GetActionResultRequest r;
    *r.mutable_action_digest() = ActionFor(tag).ToProto();
    build::bazel::remote::execution::v2::ActionResult out;
    grpc::ClientContext ctx;
    return build::bazel::remote::execution::v2::ActionCache::NewStub(all)->GetActionResult(&ctx, r, &out).ok();
  }

  Farm farm_;
  int files_ = 0;
  Digest source_root_;
};

TEST_F(AuthTest, EveryRpcNeedsItsScopeAndRefusedCallsChangeNothing) {
  ASSERT_TRUE(WriteFile(farm_.dir() / "tokens", TokenFile()).ok());
  // Loopback plaintext with tokens: what Bazel 4.2.3 can use.
  farm_.StartCoordinator({"--token-file", (farm_.dir() / "tokens").string()});
  const Channel all = ChannelWith(kAllToken);
  UploadSource(all);

  std::vector<std::pair<std::string, Channel>> callers = {{"none", ChannelWith("")},
                                                          {"unknown", ChannelWith("not-a-token-of-this-farm-00")}};
  for (int i = 0; i < kScopeCount; ++i) {
    callers.emplace_back(std::string(ScopeName(static_cast<Scope>(i))), ChannelWith(TokenOf(static_cast<Scope>(i))));
  }
  const std::vector<Rpc> rpcs = Rpcs();
  ASSERT_EQ(rpcs.size(), KnownMethods().size()) << "an RPC of the table is not exercised";
  for (const Rpc& rpc : rpcs) {
    const ScopeSet needed = MethodScopes(rpc.method).value();
    for (const auto& [who, channel] : callers) {
      SCOPED_TRACE(rpc.method + " as " + who);
      grpc::Status status = rpc.call(channel, who);
      std::optional<Scope> scope = ParseScope(who);
      if (!scope.has_value()) {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
      } else if (!needed.Has(*scope)) {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
        EXPECT_TRUE(absl::StrContains(status.error_message(), "lacks the scope " + needed.ToString()))
            << status.error_message();
      } else {
        EXPECT_NE(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
        EXPECT_NE(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
      }
    }
  }
  // What the refused writes would have made does not exist; what the allowed ones made does.
  EXPECT_EQ(JobCount(all), 1) << "only the submit token's Submit may create a job";
  for (const auto& [who, channel] : callers) {
    const bool writer = who == "cache-write";
    EXPECT_EQ(BlobPresent(all, "blob written by batch " + who), writer) << who;
    EXPECT_EQ(BlobPresent(all, "blob written by stream " + who), writer) << who;
    EXPECT_EQ(ActionPresent(all, who), writer) << who;
  }
}

TEST_F(AuthTest, ScopesAreCheckedOverTlsAndForeignClientCertificatesAreTurnedAway) {
  TestPki pki(farm_.dir() / "pki");
  ASSERT_TRUE(WriteFile(farm_.dir() / "tokens", TokenFile()).ok());
  farm_.StartCoordinator({"--tls-cert", pki.Path("server.pem"), "--tls-key", pki.Path("server.key"), "--tls-client-ca",
                          pki.Path("ca.pem"), "--token-file", (farm_.dir() / "tokens").string()});
  ClientSecurity ours;
  ours.ca_file = pki.Path("ca.pem");
  ours.cert_file = pki.Path("client.pem");
  ours.key_file = pki.Path("client.key");
  farm_.UseClientSecurity(ours);
  const Channel all = ChannelWith(kAllToken, ours);
  UploadSource(all);
  const std::vector<Rpc> rpcs = Rpcs();
  const Rpc& submit = rpcs.front();
  ASSERT_EQ(submit.method, "/assay.v1.Jobs/Submit");

  grpc::Status read_only = submit.call(ChannelWith(TokenOf(Scope::kRead), ours), "read");
  EXPECT_EQ(read_only.error_code(), grpc::StatusCode::PERMISSION_DENIED) << read_only.error_message();
  EXPECT_TRUE(absl::StrContains(read_only.error_message(), "lacks the scope submit")) << read_only.error_message();

  // A certificate signed by another CA, with a valid token: the TLS handshake refuses it, so gRPC
  // reports UNAVAILABLE and no service sees the call.
  ClientSecurity foreign = ours;
  foreign.cert_file = pki.Path("other-client.pem");
  foreign.key_file = pki.Path("other-client.key");
  grpc::Status stranger = submit.call(ChannelWith(TokenOf(Scope::kSubmit), foreign), "stranger");
  EXPECT_EQ(stranger.error_code(), grpc::StatusCode::UNAVAILABLE) << stranger.error_message();
  EXPECT_EQ(JobCount(all), 0);

  grpc::Status allowed = submit.call(ChannelWith(TokenOf(Scope::kSubmit), ours), "submit");
  EXPECT_TRUE(allowed.ok()) << allowed.error_message();
  EXPECT_EQ(JobCount(all), 1);
}

// gRPC's health service answers anyone (probes carry no token); server reflection describes the API
// to any valid token and to nobody else.
TEST_F(AuthTest, HealthNeedsNoTokenAndReflectionNeedsAValidOne) {
  ASSERT_TRUE(WriteFile(farm_.dir() / "tokens", TokenFile()).ok());
  farm_.StartCoordinator({"--token-file", (farm_.dir() / "tokens").string()});

  RunResult health = farm_.Cli({"health"});
  EXPECT_EQ(health.exit_code, 0) << health.err;
  EXPECT_EQ(health.out, "SERVING\n");
  {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status =
        grpc::health::v1::Health::NewStub(ChannelWith(""))->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }

  using grpc::reflection::v1alpha::ServerReflection;
  using grpc::reflection::v1alpha::ServerReflectionRequest;
  using grpc::reflection::v1alpha::ServerReflectionResponse;
  // One request, one answer, on a reflection stream of `channel`.
  auto ask = [](const Channel& channel, const ServerReflectionRequest& request, ServerReflectionResponse* response) {
    grpc::ClientContext ctx;
    auto stream = ServerReflection::NewStub(channel)->ServerReflectionInfo(&ctx);
    stream->Write(request);
    stream->WritesDone();
    const bool got = stream->Read(response);
    grpc::Status status = stream->Finish();
    return got ? grpc::Status::OK : status;
  };
  ServerReflectionRequest list;
  list.set_list_services("");
  ServerReflectionResponse response;
  for (const std::string& who : {std::string(), std::string("not-a-token-of-this-farm-00")}) {
    grpc::Status refused = ask(ChannelWith(who), list, &response);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED) << who << ": " << refused.error_message();
  }
  grpc::Status listed = ask(ChannelWith(TokenOf(Scope::kRead)), list, &response);
  ASSERT_TRUE(listed.ok()) << listed.error_message();
  std::set<std::string> services;
  for (const auto& service : response.list_services_response().service()) services.insert(service.name());
  for (const char* expected : {"assay.v1.Jobs", "assay.v1.Admin", "assay.v1.WorkerLink", "grpc.health.v1.Health",
                               "build.bazel.remote.execution.v2.ContentAddressableStorage",
                               "build.bazel.remote.execution.v2.ActionCache", "google.bytestream.ByteStream"}) {
    EXPECT_TRUE(services.contains(expected)) << expected;
  }
  // The file that defines a service parses, and names its methods.
  ServerReflectionRequest symbol;
  symbol.set_file_containing_symbol("assay.v1.Jobs");
  ASSERT_TRUE(ask(ChannelWith(TokenOf(Scope::kWorker)), symbol, &response).ok());
  ASSERT_GT(response.file_descriptor_response().file_descriptor_proto_size(), 0);
  google::protobuf::FileDescriptorProto file;
  ASSERT_TRUE(file.ParseFromString(response.file_descriptor_response().file_descriptor_proto(0)));
  std::set<std::string> methods;
  for (const auto& service : file.service()) {
    for (const auto& method : service.method()) methods.insert(service.name() + "/" + method.name());
  }
  EXPECT_TRUE(methods.contains("Jobs/Submit")) << file.name();
}

}  // namespace
}  // namespace assay::testing
