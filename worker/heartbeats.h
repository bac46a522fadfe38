// A welcomed session's heartbeats: every interval, the leases of the tasks still running go to the
// coordinator (an empty heartbeat when there are none), on a thread of its own until destroyed.
#pragma once

#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/link_stream.h"
#include "worker/task_table.h"

namespace assay {

class Heartbeats {
 public:
  Heartbeats(LinkStream* link, TaskTable* tasks, absl::Duration interval);
  ~Heartbeats();  // stops and joins the thread
  Heartbeats(const Heartbeats&) = delete;
  Heartbeats& operator=(const Heartbeats&) = delete;

 private:
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace assay
