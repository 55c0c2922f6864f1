#include "pix/service/lifecycle.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace pix::service {
namespace {

using namespace std::chrono_literals;

TEST(StopSource, TheFirstReasonWinsAndCallbacksRunOnce) {
  StopSource stop;
  int calls = 0;
  stop.on_stop([&] { ++calls; });
  EXPECT_FALSE(stop.stop_requested());
  EXPECT_TRUE(stop.request_stop("signal SIGTERM"));
  EXPECT_FALSE(stop.request_stop("signal SIGINT"));
  EXPECT_TRUE(stop.stop_requested());
  EXPECT_EQ(stop.reason(), "signal SIGTERM");
  EXPECT_EQ(calls, 1);
  // Registered after the stop: runs at once.
  stop.on_stop([&] { ++calls; });
  EXPECT_EQ(calls, 2);
}

TEST(StopSource, WaitForWakesOnStopFromAnotherThread) {
  StopSource stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    stop.request_stop("test");
  });
  // A minute is the deadline: the wait returns because of the stop, long before it.
  const auto start = Clock::now();
  EXPECT_TRUE(stop.wait_for(60s));
  EXPECT_LT(Clock::now() - start, 30s);
  stopper.join();
}

TEST(StopSource, WaitForTimesOutWhenNothingHappens) {
  StopSource stop;
  EXPECT_FALSE(stop.wait_for(1ms));
}

TEST(WorkGate, ClosingRefusesNewWorkAndKeepsCountingTheOld) {
  WorkGate gate;
  ASSERT_TRUE(gate.enter());
  ASSERT_TRUE(gate.enter());
  gate.close();
  EXPECT_TRUE(gate.closed());
  EXPECT_FALSE(gate.enter());
  EXPECT_EQ(gate.in_flight(), 2U);
  gate.leave();
  EXPECT_EQ(gate.in_flight(), 1U);
}

TEST(WorkGate, IdleCallbacksRunOnceWhenClosedAndEmpty) {
  WorkGate gate;
  int idle = 0;
  ASSERT_TRUE(gate.enter());
  gate.on_idle([&] { ++idle; });
  gate.leave();  // zero, but not closed: not idle in the drain sense
  EXPECT_EQ(idle, 0);
  ASSERT_TRUE(gate.enter());
  gate.close();
  EXPECT_EQ(idle, 0);
  gate.leave();
  EXPECT_EQ(idle, 1);
  gate.on_idle([&] { ++idle; });  // already idle: at once
  EXPECT_EQ(idle, 2);
}

TEST(WorkGate, CloseOnAnEmptyGateIsIdleAtOnce) {
  WorkGate gate;
  bool idle = false;
  gate.on_idle([&] { idle = true; });
  gate.close();
  EXPECT_TRUE(idle);
}

TEST(WorkGate, WaitIdleReturnsWhatIsLeftAtTheDeadline) {
  WorkGate gate;
  ASSERT_TRUE(gate.enter());
  EXPECT_EQ(gate.wait_idle(Clock::now() + 1ms), 1U);
  std::thread worker([&] {
    std::this_thread::sleep_for(10ms);
    gate.leave();
  });
  EXPECT_EQ(gate.wait_idle(Clock::now() + 60s), 0U);
  worker.join();
}

TEST(WorkGate, ATicketLeavesOnDestructionAndIsRefusedWhenClosed) {
  WorkGate gate;
  {
    WorkGate::Ticket t(gate);
    EXPECT_TRUE(t.admitted());
    EXPECT_EQ(gate.in_flight(), 1U);
  }
  EXPECT_EQ(gate.in_flight(), 0U);
  gate.close();
  WorkGate::Ticket refused(gate);
  EXPECT_FALSE(refused.admitted());
  EXPECT_EQ(gate.in_flight(), 0U);
}

TEST(WorkGate, ALeaveWithoutAnEnterIsABug) {
  WorkGate gate;
  EXPECT_THROW(gate.leave(), std::logic_error);
}

TEST(SignalWatcher, SigtermBecomesAStopWithItsNameAndSighupACallback) {
  StopSource stop;
  std::atomic<int> hangups{0};
  {
    SignalWatcher watcher(stop, {{SIGHUP, [&] { ++hangups; }}});
    ASSERT_EQ(kill(getpid(), SIGHUP), 0);
    while (hangups.load() == 0) std::this_thread::sleep_for(1ms);
    EXPECT_FALSE(stop.stop_requested());
    ASSERT_EQ(kill(getpid(), SIGTERM), 0);
    EXPECT_TRUE(stop.wait_for(60s));
    EXPECT_EQ(stop.reason(), "signal SIGTERM");
  }
  EXPECT_EQ(hangups.load(), 1);
}

TEST(SignalWatcher, TheDestructorStopsItsThreadWithoutStopping) {
  StopSource stop;
  { SignalWatcher watcher(stop); }
  EXPECT_FALSE(stop.stop_requested());
}

}  // namespace
}  // namespace pix::service
