// CasClient against a CAS that lies: an in-process gRPC server (real gRPC on loopback) answering
// with bytes that do not match the digests asked for. The worker's materialization (InputFetcher,
// over the client) and the CLI's download fail with the digest named and leave no file behind; an
// honest server works.
#include "common/remote/cas_client.h"

#include <atomic>

#include <grpcpp/create_channel.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/base/file_util.h"
#include "tests/common/hostile_trees.h"
#include "worker/input_fetcher.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;

// Serves the blobs it holds; blobs in `lies` are answered with other bytes of the same size.
class FakeCas final : public reapi::ContentAddressableStorage::Service, public google::bytestream::ByteStream::Service {
 public:
  std::atomic<int> get_tree_calls{0};
  void SetBlobs(std::map<Digest, std::string> b) {
    absl::MutexLock lock(&mu_);
    blobs_ = std::move(b);
  }
  void Lie(const Digest& d, std::string bytes) {
    absl::MutexLock lock(&mu_);
    lies_[d] = std::move(bytes);
  }

  grpc::Status BatchReadBlobs(grpc::ServerContext*, const reapi::BatchReadBlobsRequest* request,
                              reapi::BatchReadBlobsResponse* response) override {
    for (const auto& d : request->digests()) {
      auto* r = response->add_responses();
      *r->mutable_digest() = d;
      r->set_data(Bytes(*Digest::FromProto(d)));
    }
    return grpc::Status::OK;
  }
  grpc::Status GetTree(grpc::ServerContext*, const reapi::GetTreeRequest* request,
                       grpc::ServerWriter<reapi::GetTreeResponse>* writer) override {
    get_tree_calls++;
    reapi::GetTreeResponse response;
    std::vector<Digest> todo{*Digest::FromProto(request->root_digest())};
    while (!todo.empty()) {
      Digest d = todo.back();
      todo.pop_back();
      reapi::Directory* dir = response.add_directories();
      dir->ParseFromString(Bytes(d));
      for (const auto& sub : dir->directories()) todo.push_back(*Digest::FromProto(sub.digest()));
    }
    writer->Write(response);
    return grpc::Status::OK;
  }
  grpc::Status Read(grpc::ServerContext*, const google::bytestream::ReadRequest* request,
                    grpc::ServerWriter<google::bytestream::ReadResponse>* writer) override {
    std::vector<std::string> parts = absl::StrSplit(request->resource_name(), '/');
    auto digest = Digest::Create(parts[1], std::stoll(parts[2]));
    std::string data = Bytes(*digest).substr(static_cast<size_t>(request->read_offset()));
    for (size_t at = 0; at < data.size(); at += 64 << 10) {
      google::bytestream::ReadResponse response;
      response.set_data(data.substr(at, 64 << 10));
      writer->Write(response);
    }
    return grpc::Status::OK;
  }

 private:
  std::string Bytes(const Digest& d) {
    absl::MutexLock lock(&mu_);
    return lies_.contains(d) ? lies_.at(d) : blobs_.at(d);
  }
  absl::Mutex mu_;  // the test changes what is served between calls handled on gRPC's threads
  std::map<Digest, std::string> blobs_ ABSL_GUARDED_BY(mu_);
  std::map<Digest, std::string> lies_ ABSL_GUARDED_BY(mu_);
};

class CasClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(static_cast<reapi::ContentAddressableStorage::Service*>(&cas_));
    builder.RegisterService(static_cast<google::bytestream::ByteStream::Service*>(&cas_));
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    client_ = std::make_unique<CasClient>(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                              grpc::InsecureChannelCredentials()),
                                          "");
    fetcher_ = std::make_unique<InputFetcher>(client_.get(), nullptr, TreeLimits{});
  }
  void TearDown() override { server_->Shutdown(); }

  // A tree with a small file (batch read) and a 3 MiB one (ByteStream).
  Digest MakeTree() {
    TreeBuilder b;
    small_ = b.File("small firmware image\n");
    large_ = b.File(std::string(3 << 20, 'L'));
    reapi::Directory bin;
    AddFile(&bin, "large.bin", large_);
    reapi::Directory root;
    AddDir(&root, "bin", b.Dir(bin));
    AddFile(&root, "small.elf", small_);
    Digest top = b.Dir(root);
    cas_.SetBlobs(b.blobs());
    tree_ = {root, bin};
    return top;
  }
  std::vector<reapi::Directory> tree_;  // the directories of MakeTree's tree

  FakeCas cas_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<CasClient> client_;
  std::unique_ptr<InputFetcher> fetcher_;
  Digest small_, large_;
};

TEST_F(CasClientTest, AnHonestServerMaterializesTheTree) {
  Digest root = MakeTree();
  ScopedTempDir dir("cas-client-test");
  auto stats = fetcher_->Materialize(root, dir.path());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->files, 2);
  EXPECT_EQ(ReadFile(dir.path() / "small.elf").value(), "small firmware image\n");
  EXPECT_EQ(fs::file_size(dir.path() / "bin/large.bin"), 3u << 20);
}

// The assignment carries small trees: with the directories at hand no GetTree is made; directories
// that do not hash to what the tree names are not used (the tree is fetched instead).
TEST_F(CasClientTest, AKnownTreeSavesTheGetTreeCallButIsCheckedByItsDigests) {
  Digest root = MakeTree();
  ScopedTempDir dir("cas-client-test");
  auto stats = fetcher_->Materialize(root, dir.path(), &tree_);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(cas_.get_tree_calls.load(), 0);
  EXPECT_EQ(ReadFile(dir.path() / "small.elf").value(), "small firmware image\n");

  std::vector<reapi::Directory> forged = tree_;
  forged[0].mutable_files(0)->set_name("evil.elf");  // no longer the root the action names
  ScopedTempDir again("cas-client-test");
  stats = fetcher_->Materialize(root, again.path(), &forged);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(cas_.get_tree_calls.load(), 1);
  EXPECT_TRUE(fs::exists(again.path() / "small.elf"));
  EXPECT_FALSE(fs::exists(again.path() / "evil.elf"));
}

TEST_F(CasClientTest, ASmallBlobWithTheWrongBytesFailsAndLeavesNoFile) {
  Digest root = MakeTree();
  cas_.Lie(small_, "SMALL FIRMWARE IMAGE\n");
  ScopedTempDir dir("cas-client-test");
  auto stats = fetcher_->Materialize(root, dir.path());
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(stats.status().message(), small_.ToString())) << stats.status();
  EXPECT_FALSE(fs::exists(dir.path() / "small.elf"));
}

TEST_F(CasClientTest, ALargeBlobWithTheWrongBytesFailsAndLeavesNoFile) {
  Digest root = MakeTree();
  std::string wrong(3 << 20, 'L');
  wrong[wrong.size() / 2] = 'X';
  cas_.Lie(large_, wrong);
  ScopedTempDir dir("cas-client-test");
  auto stats = fetcher_->Materialize(root, dir.path());
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(stats.status().message(), large_.ToString())) << stats.status();
  EXPECT_FALSE(fs::exists(dir.path() / "bin/large.bin"));

  // The CLI's download path checks the same way.
  const fs::path out = dir.path() / "artifact.bin";
  absl::Status download = client_->DownloadToFile(large_, out, false);
  EXPECT_EQ(download.code(), absl::StatusCode::kDataLoss) << download;
  EXPECT_FALSE(fs::exists(out));
  cas_.Lie(small_, "SMALL FIRMWARE IMAGE\n");
  EXPECT_EQ(client_->ReadBlob(small_).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace assay::testing
