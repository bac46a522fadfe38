// WorkerSession: one write in flight, order kept, a bounded queue, and closing only when idle.
#include "coordinator/worker_session.h"

#include <gtest/gtest.h>

#include <vector>

namespace assay {
namespace {

assay::v1::CoordinatorMessage Cancel(const std::string& task) {
  assay::v1::CoordinatorMessage m;
  m.mutable_cancel()->mutable_lease()->set_task_id(task);
  return m;
}

// A stream writer that records writes and completes them only when told.
struct FakeStream {
  std::vector<std::string> started;
  int closes = 0;
  bool idle_when_closed = false;
  WorkerSession* session = nullptr;
  void Attach(WorkerSession* s) {
    session = s;
    s->Attach([this](const assay::v1::CoordinatorMessage* m) { started.push_back(m->cancel().lease().task_id()); },
              [this] {
                ++closes;
                idle_when_closed = session->idle();
              });
  }
};

TEST(WorkerSessionTest, OneWriteIsInFlightAndTheRestFollowInOrder) {
  WorkerSession session("w");
  session.Send(Cancel("queued-before-attach"));
  FakeStream stream;
  stream.Attach(&session);
  EXPECT_EQ(stream.started, std::vector<std::string>{"queued-before-attach"});
  session.Send(Cancel("a"));
  session.Send(Cancel("b"));
  EXPECT_EQ(stream.started.size(), 1u) << "a second write started before the first was done";
  EXPECT_FALSE(session.idle());
  session.WriteDone(true);
  EXPECT_EQ(stream.started, (std::vector<std::string>{"queued-before-attach", "a"}));
  session.WriteDone(true);
  session.WriteDone(true);
  EXPECT_EQ(stream.started, (std::vector<std::string>{"queued-before-attach", "a", "b"}));
  EXPECT_TRUE(session.idle());
}

TEST(WorkerSessionTest, ClosingDuringAWriteEndsTheStreamOnlyOnceTheWriteIsDone) {
  WorkerSession session("w");
  FakeStream stream;
  stream.Attach(&session);
  session.Send(Cancel("a"));
  session.Close();
  EXPECT_EQ(stream.closes, 1);
  EXPECT_FALSE(stream.idle_when_closed) << "the close callback must see the write in flight and wait";
  session.Send(Cancel("after-close"));  // dropped
  session.WriteDone(true);
  EXPECT_EQ(stream.closes, 2);
  EXPECT_TRUE(stream.idle_when_closed);
  EXPECT_EQ(stream.started, std::vector<std::string>{"a"});
}

TEST(WorkerSessionTest, AFailedWriteClosesTheSession) {
  WorkerSession session("w");
  FakeStream stream;
  stream.Attach(&session);
  session.Send(Cancel("a"));
  session.Send(Cancel("b"));
  session.WriteDone(false);
  EXPECT_TRUE(session.closed());
  EXPECT_EQ(stream.closes, 1);
  EXPECT_TRUE(stream.idle_when_closed);
  EXPECT_EQ(stream.started, std::vector<std::string>{"a"});
}

TEST(WorkerSessionTest, AWorkerThatStopsReadingIsCutOffAtTheBound) {
  WorkerSession session("w", /*max_queued=*/3);
  FakeStream stream;
  stream.Attach(&session);
  session.Send(Cancel("in-flight"));  // never completes: the worker does not read
  for (int i = 0; i < 3; ++i) session.Send(Cancel("q"));
  EXPECT_FALSE(session.closed());
  session.Send(Cancel("one-too-many"));
  EXPECT_TRUE(session.closed());
  EXPECT_EQ(stream.closes, 1);
}

}  // namespace
}  // namespace assay
