// Against the real RabbitMQ at PIX_RABBIT_URL: every test builds its own exchange and queues
// under a random name and removes them afterwards.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pix/amqp/confirm_publisher.hpp"
#include "pix/amqp/topology.hpp"
#include "pix/broker/publisher.hpp"
#include "support/amqp_test_consumer.hpp"

namespace pix::amqp {
namespace {

using broker::OutboundEvent;
using broker::PublishResult;
using broker::PublishStatus;
using std::chrono::milliseconds;
using test::TestRabbit;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kConnectWait{10'000};
constexpr milliseconds kVerdictWait{30'000};
constexpr std::int64_t kEventTimeMs = 1'700'000'000'123;

OutboundEvent make_event(std::string topic, std::string id) {
  OutboundEvent ev;
  ev.topic = std::move(topic);
  ev.key = "tx-" + id;
  ev.id = std::move(id);
  ev.payload = R"({"transactionId":"tx-)" + ev.id + R"(","amount":"10.00"})";
  ev.timestamp_ms = kEventTimeMs;
  ev.headers = {{"cloudEvents_specversion", "1.0"},
                {"cloudEvents_id", ev.id},
                {"cloudEvents_type", ev.topic},
                {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}};
  return ev;
}

/// Collects verdicts by event index and counts how often each callback fired.
class Verdicts {
 public:
  explicit Verdicts(std::size_t n) : results_(n), calls_(n) {}

  broker::PublishCallback callback(std::size_t i) {
    return [this, i](PublishResult r) {
      // Notified under the lock: the waiter may return and destroy this object right after.
      std::lock_guard lock(mutex_);
      results_[i] = std::move(r);
      ++calls_[i];
      ++answered_;
      cv_.notify_all();
    };
  }

  /// Waits until `n` callbacks fired (or the timeout); returns how many did.
  std::size_t wait_for(std::size_t n, milliseconds timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return answered_ >= n; });
    return answered_;
  }

  PublishResult result(std::size_t i) {
    std::lock_guard lock(mutex_);
    return results_[i];
  }
  int calls(std::size_t i) {
    std::lock_guard lock(mutex_);
    return calls_[i];
  }
  std::size_t count(PublishStatus s) {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (std::size_t i = 0; i < results_.size(); ++i) n += calls_[i] > 0 && results_[i].status == s ? 1 : 0;
    return n;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<PublishResult> results_;
  std::vector<int> calls_;
  std::size_t answered_ = 0;
};

/// The answer to one probe.
struct ProbeAnswer {
  std::mutex mutex;
  std::condition_variable cv;
  int calls = 0;
  bool ready = false;
  std::string detail;

  broker::ProbeCallback callback() {
    return [this](bool r, std::string d) {
      std::lock_guard lock(mutex);
      ++calls;
      ready = r;
      detail = std::move(d);
      cv.notify_all();
    };
  }
  bool wait(milliseconds timeout) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, timeout, [&] { return calls > 0; });
  }
};

class AmqpPublisherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = TestRabbit::url();
    topology_.exchange = TestRabbit::unique_name("pix-test-");
    topology_.queue_prefix = topology_.exchange + ".";
    const AmqpOpResult declared = declare_topology(url_, topology_);
    ASSERT_TRUE(declared) << declared.error;
  }

  void TearDown() override {
    const AmqpOpResult deleted = delete_topology(url_, topology_);
    EXPECT_TRUE(deleted) << deleted.error;
  }

  std::unique_ptr<ConfirmPublisher> connected_publisher(std::string exchange) {
    ConfirmPublisher::Options options;
    options.url = url_;
    options.exchange = std::move(exchange);
    auto publisher = std::make_unique<ConfirmPublisher>(std::move(options));
    EXPECT_TRUE(publisher->wait_connected(kConnectWait)) << "no connection to " << url_.redacted();
    return publisher;
  }

  AmqpUrl url_;
  TopologyOptions topology_;
};

TEST_F(AmqpPublisherTest, PipelinedEventsAreAllConfirmedAndDeliveredPersistent) {
  constexpr std::size_t kEvents = 5000;
  const std::string key = "pix.payment.requested";
  test::AmqpTestConsumer consumer(url_, topology_.exchange, key);
  ASSERT_EQ(consumer.error(), "");
  auto publisher = connected_publisher(topology_.exchange);

  Verdicts verdicts(kEvents);
  std::vector<OutboundEvent> events;
  events.reserve(kEvents);
  for (std::size_t i = 0; i < kEvents; ++i) events.push_back(make_event(key, "evt-" + std::to_string(i)));

  const auto start = Clock::now();
  for (std::size_t i = 0; i < kEvents; ++i) publisher->publish(std::move(events[i]), verdicts.callback(i));
  ASSERT_EQ(verdicts.wait_for(kEvents, kVerdictWait), kEvents);
  const auto elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double rate = static_cast<double>(kEvents) / elapsed;
  std::printf("[ amqp     ] %zu confirmed events in %.3f s: %.0f events/s\n", kEvents, elapsed, rate);
  RecordProperty("confirmed_events_per_second", static_cast<int>(rate));

  EXPECT_EQ(verdicts.count(PublishStatus::kAcked), kEvents) << "first verdict: " << verdicts.result(0).detail;
  EXPECT_EQ(publisher->in_flight(), 0U);

  const auto received = consumer.receive(kEvents, kVerdictWait);
  ASSERT_EQ(consumer.error(), "");
  ASSERT_EQ(received.size(), kEvents);
  for (std::size_t i = 0; i < kEvents; ++i) {
    const auto& m = received[i];
    const std::string id = "evt-" + std::to_string(i);
    // One channel, one queue: the broker keeps publish order.
    ASSERT_EQ(m.message_id, id) << "at position " << i;
    EXPECT_EQ(m.routing_key, key);
    EXPECT_EQ(m.delivery_mode, 2);
    EXPECT_EQ(m.content_type, "application/json");
    EXPECT_EQ(m.timestamp, static_cast<std::uint64_t>(kEventTimeMs / 1000));
    EXPECT_EQ(m.app_id, "pix-pubsub");
    EXPECT_EQ(m.body, R"({"transactionId":"tx-)" + id + R"(","amount":"10.00"})");
    EXPECT_EQ(m.headers.at("cloudEvents_id"), id);
    EXPECT_EQ(m.headers.at("cloudEvents_type"), key);
    EXPECT_EQ(m.headers.at("cloudEvents_specversion"), "1.0");
    EXPECT_EQ(m.headers.at("traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  }
  EXPECT_EQ(publisher->drain(milliseconds{5000}), 0U);
}

TEST_F(AmqpPublisherTest, UnroutableEventIsRejectedNeverAcked) {
  // The topology's exchange routes everything (alternate exchange): this one must not.
  const std::string bare = TestRabbit::unique_name("pix-test-bare-");
  ASSERT_TRUE(test::declare_plain_exchange(url_, bare));
  test::AmqpTestConsumer consumer(url_, bare, "pix.payment.requested");
  ASSERT_EQ(consumer.error(), "");
  auto publisher = connected_publisher(bare);

  // Routable events on both sides of the unroutable one: the return must be pinned on the right
  // message, not on a neighbour.
  Verdicts verdicts(3);
  publisher->publish(make_event("pix.payment.requested", "before"), verdicts.callback(0));
  publisher->publish(make_event("pix.nobody.listens", "lost"), verdicts.callback(1));
  publisher->publish(make_event("pix.payment.requested", "after"), verdicts.callback(2));
  ASSERT_EQ(verdicts.wait_for(3, kVerdictWait), 3U);

  EXPECT_EQ(verdicts.result(0).status, PublishStatus::kAcked) << verdicts.result(0).detail;
  EXPECT_EQ(verdicts.result(1).status, PublishStatus::kRejected);
  EXPECT_EQ(verdicts.result(1).detail, "unroutable: no queue bound for pix.nobody.listens");
  EXPECT_EQ(verdicts.result(2).status, PublishStatus::kAcked) << verdicts.result(2).detail;
  EXPECT_FALSE(broker::is_retryable(verdicts.result(1).status));
  EXPECT_EQ(consumer.receive(2, kVerdictWait).size(), 2U);

  EXPECT_EQ(publisher->drain(milliseconds{5000}), 0U);
  EXPECT_TRUE(delete_exchange(url_, bare));
}

TEST_F(AmqpPublisherTest, UnreachableBrokerAnswersPromptlyAndProbeSaysNotReady) {
  ConfirmPublisher::Options options;
  options.url = *parse_amqp_url("amqp://guest:guest@127.0.0.1:1/").url;
  options.exchange = topology_.exchange;
  ConfirmPublisher publisher(std::move(options));

  // Wait for a real failed attempt, so that the answer below is about the broker, not start-up.
  const auto deadline = Clock::now() + kConnectWait;
  std::string detail;
  while (Clock::now() < deadline) {
    Verdicts v(1);
    publisher.publish(make_event("pix.payment.requested", "x"), v.callback(0));
    ASSERT_EQ(v.wait_for(1, milliseconds{100}), 1U) << "refusal must be immediate";
    ASSERT_EQ(v.result(0).status, PublishStatus::kBrokerUnavailable);
    detail = v.result(0).detail;
    if (detail.find("cannot connect") != std::string::npos) break;
    std::this_thread::sleep_for(milliseconds{10});
  }
  EXPECT_NE(detail.find("127.0.0.1:1"), std::string::npos) << detail;
  EXPECT_FALSE(publisher.connected());

  Verdicts verdicts(1);
  const auto start = Clock::now();
  publisher.publish(make_event("pix.payment.requested", "y"), verdicts.callback(0));
  ProbeAnswer probe;
  publisher.probe(probe.callback());
  ASSERT_TRUE(probe.wait(milliseconds{100}));
  ASSERT_EQ(verdicts.wait_for(1, milliseconds{100}), 1U);
  EXPECT_LT(Clock::now() - start, milliseconds{100});
  EXPECT_EQ(verdicts.result(0).status, PublishStatus::kBrokerUnavailable);
  EXPECT_FALSE(probe.ready);
  EXPECT_NE(probe.detail, "");
  EXPECT_EQ(publisher.in_flight(), 0U);
  EXPECT_EQ(publisher.drain(milliseconds{1000}), 0U);
}

TEST_F(AmqpPublisherTest, ProbeIsARealRoundTrip) {
  auto publisher = connected_publisher(topology_.exchange);
  ProbeAnswer good;
  publisher->probe(good.callback());
  ASSERT_TRUE(good.wait(milliseconds{5000}));
  EXPECT_TRUE(good.ready) << good.detail;
  EXPECT_EQ(good.calls, 1);

  // A publisher pointed at a missing exchange is up but not ready; once the exchange exists,
  // the same publisher (its probe channel reopened) becomes ready.
  const std::string missing = TestRabbit::unique_name("pix-test-missing-");
  auto orphan = connected_publisher(missing);
  ProbeAnswer bad;
  orphan->probe(bad.callback());
  ASSERT_TRUE(bad.wait(milliseconds{5000}));
  EXPECT_FALSE(bad.ready);
  EXPECT_NE(bad.detail.find("does not exist"), std::string::npos) << bad.detail;

  ASSERT_TRUE(test::declare_plain_exchange(url_, missing));
  const auto deadline = Clock::now() + milliseconds{5000};
  bool ready = false;
  while (!ready && Clock::now() < deadline) {
    ProbeAnswer again;
    orphan->probe(again.callback());
    ASSERT_TRUE(again.wait(milliseconds{3000}));
    ready = again.ready;
  }
  EXPECT_TRUE(ready);
  EXPECT_TRUE(delete_exchange(url_, missing));
}

TEST_F(AmqpPublisherTest, DrainAnswersEveryEventExactlyOnce) {
  constexpr std::size_t kEvents = 3000;
  auto publisher = connected_publisher(topology_.exchange);
  Verdicts verdicts(kEvents);
  for (std::size_t i = 0; i < kEvents; ++i) {
    publisher->publish(make_event("pix.payment.settled", "d-" + std::to_string(i)), verdicts.callback(i));
  }
  EXPECT_GT(publisher->in_flight(), 0U) << "nothing was in flight: the test proves nothing";

  EXPECT_EQ(publisher->drain(milliseconds{20'000}), 0U);
  EXPECT_EQ(publisher->in_flight(), 0U);
  // drain() returns only after the last callback, so no waiting here.
  for (std::size_t i = 0; i < kEvents; ++i) ASSERT_EQ(verdicts.calls(i), 1) << "event " << i;
  EXPECT_EQ(verdicts.count(PublishStatus::kAcked), kEvents);

  Verdicts late(1);
  publisher->publish(make_event("pix.payment.settled", "late"), late.callback(0));
  EXPECT_EQ(late.calls(0), 1);
  EXPECT_EQ(late.result(0).status, PublishStatus::kShuttingDown);
  EXPECT_EQ(publisher->drain(milliseconds{1000}), 0U);
}

TEST_F(AmqpPublisherTest, DrainPastItsDeadlineCountsWhatIsLeft) {
  constexpr std::size_t kEvents = 3000;
  auto publisher = connected_publisher(topology_.exchange);
  Verdicts verdicts(kEvents);
  for (std::size_t i = 0; i < kEvents; ++i) {
    publisher->publish(make_event("pix.audit.log", "z-" + std::to_string(i)), verdicts.callback(i));
  }
  const std::size_t left = publisher->drain(milliseconds{0});

  for (std::size_t i = 0; i < kEvents; ++i) ASSERT_EQ(verdicts.calls(i), 1) << "event " << i;
  // Whatever the broker did not confirm in time was answered locally, and counted.
  EXPECT_EQ(verdicts.count(PublishStatus::kAcked) + left, kEvents);
  EXPECT_EQ(verdicts.count(PublishStatus::kTimedOut) + verdicts.count(PublishStatus::kShuttingDown), left);
}

TEST_F(AmqpPublisherTest, FullLocalQueueRefusesAtOnceInsteadOfGrowing) {
  constexpr std::size_t kEvents = 200;
  ConfirmPublisher::Options options;
  options.url = url_;
  options.exchange = topology_.exchange;
  options.max_in_flight = 10;
  ConfirmPublisher publisher(std::move(options));
  ASSERT_TRUE(publisher.wait_connected(kConnectWait));

  Verdicts verdicts(kEvents);
  std::size_t refused_synchronously = 0;
  for (std::size_t i = 0; i < kEvents; ++i) {
    publisher.publish(make_event("pix.payment.requested", "q-" + std::to_string(i)), verdicts.callback(i));
    EXPECT_LE(publisher.in_flight(), 10U);
    if (verdicts.calls(i) == 1 && verdicts.result(i).status == PublishStatus::kQueueFull) ++refused_synchronously;
  }
  ASSERT_EQ(verdicts.wait_for(kEvents, kVerdictWait), kEvents);
  // A burst of 200 against a window of 10 outruns any broker's confirms.
  EXPECT_GT(refused_synchronously, 0U);
  EXPECT_EQ(verdicts.count(PublishStatus::kQueueFull), refused_synchronously);
  EXPECT_EQ(verdicts.count(PublishStatus::kAcked) + refused_synchronously, kEvents);
  EXPECT_TRUE(broker::is_retryable(PublishStatus::kQueueFull));
}

TEST_F(AmqpPublisherTest, BrokerNackOfAFullQuorumQueueIsMaybeStoredAndRetryableNeverAcked) {
  // Its own topology with room for 2 messages per queue (x-overflow reject-publish).
  TopologyOptions tiny = topology_;
  tiny.exchange = TestRabbit::unique_name("pix-test-tiny-");
  tiny.queue_prefix = tiny.exchange + ".";
  tiny.max_length = 2;
  ASSERT_TRUE(declare_topology(url_, tiny));
  auto publisher = connected_publisher(tiny.exchange);

  constexpr std::size_t kEvents = 10;
  Verdicts verdicts(kEvents);
  for (std::size_t i = 0; i < kEvents; ++i) {
    // One at a time, so that each publish sees the queue length the previous ones left.
    publisher->publish(make_event("pix.audit.log", "n-" + std::to_string(i)), verdicts.callback(i));
    ASSERT_EQ(verdicts.wait_for(i + 1, kVerdictWait), i + 1);
  }
  // Quorum queues enforce the limit approximately (one over is normal), but exactly what was
  // acked is in the queue and every other event was nacked.
  const std::size_t acked = verdicts.count(PublishStatus::kAcked);
  EXPECT_GE(acked, 2U);
  EXPECT_LE(acked, 3U);
  EXPECT_EQ(verdicts.count(PublishStatus::kNacked), kEvents - acked);
  EXPECT_EQ(verdicts.result(kEvents - 1).detail.rfind("broker nacked: ", 0), 0U) << verdicts.result(kEvents - 1).detail;
  EXPECT_TRUE(broker::is_retryable(PublishStatus::kNacked));
  EXPECT_EQ(test::queue_message_count(url_, topology_names(tiny).queues.back()).value_or(0), acked);
  EXPECT_EQ(publisher->drain(milliseconds{5000}), 0U);
  EXPECT_TRUE(delete_topology(url_, tiny));
}

TEST_F(AmqpPublisherTest, TopologyIsIdempotentAndEveryKeyLandsInItsQuorumQueue) {
  ASSERT_TRUE(declare_topology(url_, topology_)) << "second declare must succeed";
  const TopologyNames names = topology_names(topology_);
  auto publisher = connected_publisher(topology_.exchange);

  const std::vector<std::string>& keys = topology_.routing_keys;
  ASSERT_EQ(keys.size(), 5U);
  Verdicts verdicts(keys.size() + 1);
  for (std::size_t i = 0; i < keys.size(); ++i)
    publisher->publish(make_event(keys[i], "k-" + keys[i]), verdicts.callback(i));
  // No binding takes this key: the alternate exchange does, so it is confirmed, not returned.
  publisher->publish(make_event("pix.payment.unknown", "k-unknown"), verdicts.callback(keys.size()));
  ASSERT_EQ(verdicts.wait_for(keys.size() + 1, kVerdictWait), keys.size() + 1);
  for (std::size_t i = 0; i <= keys.size(); ++i) {
    EXPECT_EQ(verdicts.result(i).status, PublishStatus::kAcked) << i << ": " << verdicts.result(i).detail;
  }

  std::vector<std::string> queues = names.queues;
  queues.push_back(names.unrouted);
  for (const auto& queue : queues) {
    // Quorum queues may report the message a moment after confirming it.
    const auto deadline = Clock::now() + milliseconds{5000};
    std::optional<std::uint32_t> count;
    std::string error;
    while (Clock::now() < deadline) {
      count = test::queue_message_count(url_, queue, &error);
      if (count && *count >= 1) break;
      std::this_thread::sleep_for(milliseconds{20});
    }
    ASSERT_TRUE(count.has_value()) << queue << ": " << error;
    EXPECT_EQ(*count, 1U) << queue;
  }
  EXPECT_EQ(test::queue_message_count(url_, names.dead_letter_queue).value_or(99), 0U);
}

TEST_F(AmqpPublisherTest, TopologyReportsAConflictingExchangeClearly) {
  // Someone declared the exchange differently (here: transient, no alternate exchange): the
  // error must name the exchange and the broker's reason, not just "failed".
  TopologyOptions clash = topology_;
  clash.exchange = TestRabbit::unique_name("pix-test-clash-");
  clash.queue_prefix = clash.exchange + ".";
  ASSERT_TRUE(test::declare_plain_exchange(url_, clash.exchange));
  const AmqpOpResult result = declare_topology(url_, clash);
  EXPECT_FALSE(result);
  EXPECT_NE(result.error.find("'" + clash.exchange + "'"), std::string::npos) << result.error;
  EXPECT_NE(result.error.find("PRECONDITION_FAILED - inequivalent arg"), std::string::npos) << result.error;
  EXPECT_TRUE(delete_topology(url_, clash));
}

}  // namespace
}  // namespace pix::amqp
