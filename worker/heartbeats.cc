#include "worker/heartbeats.h"

namespace assay {

Heartbeats::Heartbeats(LinkStream* link, TaskTable* tasks, absl::Duration interval) {
  thread_ = std::thread([this, link, tasks, interval] {
    absl::MutexLock lock(&mu_);
    while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), interval)) {
      assay::v1::WorkerMessage beat;
      auto* heartbeat = beat.mutable_heartbeat();
      for (assay::v1::LeaseRef& lease : tasks->Leases()) *heartbeat->add_leases() = std::move(lease);
      link->Send(beat);
    }
  });
}

Heartbeats::~Heartbeats() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

}  // namespace assay
