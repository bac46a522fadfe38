// Keeps blobs alive while something needs them (the inputs of running tasks). Implemented by the
// eviction layer (EvictingBlobStore); users (the dispatcher, the action builder, a worker's agent)
// only see this interface.
#pragma once

#include <vector>

#include "common/digest/digest.h"

namespace assay {

class BlobPinner {
 public:
  virtual ~BlobPinner() = default;
  // False when nothing is ever evicted, so pinning is pointless.
  virtual bool pinning_matters() const = 0;
  virtual void Pin(const std::vector<Digest>& digests) = 0;
  virtual void Unpin(const std::vector<Digest>& digests) = 0;
};

}  // namespace assay
