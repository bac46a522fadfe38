// Small helpers shared by the benchmarks.
#pragma once

#include <cstdint>

#include <grpcpp/client_context.h>

#include "common/digest/digest.h"
#include "common/remote/cas_client.h"
#include "google/bytestream/bytestream.grpc.pb.h"

namespace assay::bench {

// Reads a whole blob with ByteStream.Read; true when the call succeeded with exactly its bytes.
inline bool ReadWholeBlob(google::bytestream::ByteStream::Stub* bs, const Digest& d) {
  google::bytestream::ReadRequest r;
  r.set_resource_name(ReadResourceName("", d));
  grpc::ClientContext context;
  auto reader = bs->Read(&context, r);
  google::bytestream::ReadResponse response;
  int64_t got = 0;
  while (reader->Read(&response)) got += static_cast<int64_t>(response.data().size());
  return reader->Finish().ok() && got == d.size();
}

}  // namespace assay::bench
