// How a stage stops: its loop ends on the StopSource (not a flag polled with sleeps), and the
// queue its publishers' verdicts go through wakes it for each verdict and for the stop.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "pix/saga/stage.hpp"
#include "pix/saga/verdict_queue.hpp"
#include "pix/service/lifecycle.hpp"

namespace pix::saga {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(VerdictQueue, APushWakesTheWaiterLongBeforeItsDeadline) {
  auto queue = VerdictQueue<int>::make();
  std::thread broker([queue] {
    std::this_thread::sleep_for(20ms);
    queue->push(7);
  });
  const auto start = Clock::now();
  const auto got = queue->take(Clock::now() + 60s);
  EXPECT_LT(Clock::now() - start, 30s);
  EXPECT_EQ(got, std::vector<int>{7});
  broker.join();
}

TEST(VerdictQueue, AWakeBeforeTheWaitIsKeptOnceThenTheWaitRunsToItsDeadline) {
  auto queue = VerdictQueue<int>::make();
  queue->wake();
  const auto start = Clock::now();
  EXPECT_TRUE(queue->take(Clock::now() + 60s).empty());
  EXPECT_LT(Clock::now() - start, 30s);
  // The wake was used up: the next wait, with nothing pushed, lasts until its deadline.
  const auto second = Clock::now();
  EXPECT_TRUE(queue->take(Clock::now() + 50ms).empty());
  EXPECT_GE(Clock::now() - second, 50ms);
}

TEST(VerdictQueue, TakeReturnsEverythingPushedInOrder) {
  auto queue = VerdictQueue<int>::make();
  for (int i = 0; i < 3; ++i) queue->push(i);
  EXPECT_EQ(queue->take_now(), (std::vector<int>{0, 1, 2}));
  EXPECT_TRUE(queue->take_now().empty());
}

class NeverPublished final : public broker::Publisher {
 public:
  void publish(broker::OutboundEvent, broker::PublishCallback done) override {
    done({broker::PublishStatus::kShuttingDown, "test", -1, -1});
  }
  void probe(broker::ProbeCallback done) override { done(false, "test"); }
  std::size_t drain(std::chrono::milliseconds) override { return 0; }
  std::size_t in_flight() const noexcept override { return 0; }
};

StageOptions unreachable_stage() {
  StageOptions options;
  options.name = "stop-test";
  options.consumer.bootstrap_servers = "127.0.0.1:1";  // nothing there: the loop only polls
  options.consumer.topics = {"pix.stop-test"};
  return options;
}

TEST(KafkaStageStop, RunConsumesUntilTheStopIsAskedThenReturns) {
  telemetry::Registry metrics;
  NeverPublished publisher;
  KafkaStage stage(
      unreachable_stage(), [](const kafka::ConsumedRecord&) { return HandlerResult{}; }, publisher, nullptr, metrics);
  service::StopSource stop;
  auto running = std::async(std::launch::async, [&] { stage.run(stop); });
  EXPECT_EQ(running.wait_for(300ms), std::future_status::timeout) << "the loop ended by itself";
  stop.request_stop("signal SIGTERM");
  // Nothing in flight, so no drain wait: the stop is seen at the next poll (50 ms).
  EXPECT_EQ(running.wait_for(10s), std::future_status::ready) << "the stop was not seen";
  running.get();
}

TEST(KafkaStageStop, AStopAskedBeforeRunEndsItAtOnce) {
  telemetry::Registry metrics;
  NeverPublished publisher;
  KafkaStage stage(
      unreachable_stage(), [](const kafka::ConsumedRecord&) { return HandlerResult{}; }, publisher, nullptr, metrics);
  service::StopSource stop;
  stop.request_stop("test");
  const auto start = Clock::now();
  stage.run(stop);
  EXPECT_LT(Clock::now() - start, 5s);
}

}  // namespace
}  // namespace pix::saga
