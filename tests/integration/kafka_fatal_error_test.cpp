// The producer's fatal-error path (a broken idempotence sequence): the producer is recreated and
// what the old one had not delivered is re-sent, and an event that may have been written is never
// answered "nothing was stored". Triggered with librdkafka's rd_kafka_test_fatal_error.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "pix/kafka/admin.hpp"
#include "pix/kafka/producer.hpp"
#include "pix/util/random_id.hpp"
#include "support/broker_control.hpp"
#include "support/kafka_test_consumer.hpp"
#include "support/service_process.hpp"

namespace pix::test {
namespace {

using namespace std::chrono_literals;
using broker::PublishStatus;

/// Verdicts by event index.
struct Verdicts {
  std::mutex mutex;
  std::vector<std::optional<broker::PublishResult>> results;
  explicit Verdicts(std::size_t n) : results(n) {}
  broker::PublishCallback callback(std::size_t i) {
    return [this, i](broker::PublishResult r) {
      std::lock_guard lock(mutex);
      results[i] = std::move(r);
    };
  }
  bool all_in() {
    std::lock_guard lock(mutex);
    for (const auto& r : results) {
      if (!r) return false;
    }
    return true;
  }
};

broker::OutboundEvent event(const std::string& topic, std::size_t i) {
  broker::OutboundEvent ev;
  ev.topic = topic;
  ev.key = "k";
  ev.id = "fatal-" + std::to_string(i);
  ev.payload = R"({"i":)" + std::to_string(i) + "}";
  ev.timestamp_ms = 1'700'000'000'000;
  ev.headers = {{"ce_id", ev.id}};
  return ev;
}

class KafkaFatalError : public ::testing::Test {
 protected:
  void SetUp() override {
    topic_ = "pix-test-fatal-" + util::random_hex(4);
    kafka::TopicSpec spec;
    spec.name = topic_;
    spec.partitions = 1;
    for (const auto& o : kafka::create_topics(kafka_bootstrap(), {spec})) ASSERT_TRUE(o.ok) << o.status;
  }
  void TearDown() override { kafka::delete_topics(kafka_bootstrap(), {topic_}); }
  std::string topic_;
};

TEST_F(KafkaFatalError, TheRecreatedProducerDeliversWhatTheOldOneHadNot) {
  kafka::ProducerOptions po;
  po.bootstrap_servers = kafka_bootstrap();
  po.ack_timeout = 15s;
  kafka::KafkaPublisher pub(po);
  ASSERT_TRUE(eventually([&] { return pub.broker_up(); }, 10s));
  constexpr std::size_t kEvents = 400;
  Verdicts v(kEvents);
  for (std::size_t i = 0; i < kEvents; ++i) {
    pub.publish(event(topic_, i), v.callback(i));
    if (i == kEvents / 2) pub.inject_fatal_error("test: sequence broken mid-stream");
  }
  ASSERT_TRUE(eventually([&] { return v.all_in(); }, 30s));
  std::set<std::string> acked;
  for (std::size_t i = 0; i < kEvents; ++i) {
    EXPECT_EQ(v.results[i]->status, PublishStatus::kAcked) << i << ": " << v.results[i]->detail;
    acked.insert("fatal-" + std::to_string(i));
  }
  // Every acknowledged event is in the topic (a resend may add a copy: consumers de-duplicate).
  std::set<std::string> stored;
  for (const auto& rec : read_partition(kafka_bootstrap(), topic_, 0, 0, 1'000'000, 5s))
    stored.insert(rec.header("ce_id"));
  for (const auto& id : acked) EXPECT_TRUE(stored.contains(id)) << id << " was acknowledged but is not stored";
  // And the new producer goes on working.
  Verdicts after(1);
  pub.publish(event(topic_, kEvents), after.callback(0));
  ASSERT_TRUE(eventually([&] { return after.all_in(); }, 15s));
  EXPECT_EQ(after.results[0]->status, PublishStatus::kAcked);
}

TEST_F(KafkaFatalError, AnEventThatMayHaveBeenWrittenIsNeverAnsweredNothingWasStored) {
  if (std::getenv("PIX_TEST_BROKER_CONTROL") == nullptr) {
    GTEST_SKIP() << "set PIX_TEST_BROKER_CONTROL=1 to let tests freeze the local Kafka";
  }
  kafka::ProducerOptions po;
  po.bootstrap_servers = kafka_bootstrap();
  po.ack_timeout = 3s;
  kafka::KafkaPublisher pub(po);
  ASSERT_TRUE(eventually([&] { return pub.broker_up(); }, 10s));
  constexpr std::size_t kEvents = 20;
  Verdicts v(kEvents);
  {
    // Sent to a broker that no longer answers: each may or may not be written. The fatal error
    // retires the producer; the re-sends on the new one cannot reach the broker and time out.
    FrozenProcess frozen(local_broker_pid("kafka"));
    for (std::size_t i = 0; i < kEvents; ++i) pub.publish(event(topic_, i), v.callback(i));
    std::this_thread::sleep_for(500ms);
    pub.inject_fatal_error("test: sequence broken while the broker is silent");
    ASSERT_TRUE(eventually([&] { return v.all_in(); }, 20s));
  }
  for (std::size_t i = 0; i < kEvents; ++i) {
    EXPECT_NE(v.results[i]->status, PublishStatus::kBrokerUnavailable)
        << i << " may have been written, and was answered 'nothing was stored': " << v.results[i]->detail;
    EXPECT_NE(v.results[i]->status, PublishStatus::kAcked) << i;
  }
}

}  // namespace
}  // namespace pix::test
