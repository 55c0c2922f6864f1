// broker::guarded: what a callback throws stops there (logged critical, counted), so that it
// never unwinds through a C library's frames or kills a publisher's thread.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "log_capture.hpp"
#include "pix/amqp/confirm_publisher.hpp"
#include "pix/broker/guarded_callback.hpp"
#include "pix/kafka/producer.hpp"
#include "pix/util/invariant.hpp"

namespace pix::broker {
namespace {

using namespace std::chrono_literals;

using test::LogCapture;

static_assert(noexcept(guarded("x", [] { throw std::runtime_error("x"); })));

TEST(GuardedCallback, ACallbackThatReturnsRunsOnceAndCountsNothing) {
  const auto before = util::invariant_violations();
  int calls = 0;
  EXPECT_TRUE(guarded("test callback", [&] { ++calls; }));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(util::invariant_violations(), before);
}

TEST(GuardedCallback, AnExceptionIsStoppedLoggedCriticalWithWhereAndWhatAndCounted) {
  LogCapture logs;
  const auto before = util::invariant_violations();
  EXPECT_FALSE(guarded("kafka delivery report", [] { throw std::runtime_error("handler exploded"); }));
  EXPECT_EQ(util::invariant_violations(), before + 1);
  EXPECT_TRUE(logs.contains("[critical] kafka delivery report: a callback threw"));
  EXPECT_TRUE(logs.contains("handler exploded"));
}

TEST(GuardedCallback, AnythingThrownIsStoppedNotOnlyStdExceptions) {
  LogCapture logs;
  const auto before = util::invariant_violations();
  EXPECT_FALSE(guarded("amqp probe callback", [] { throw 42; }));
  EXPECT_EQ(util::invariant_violations(), before + 1);
  EXPECT_TRUE(logs.contains("amqp probe callback: a callback threw"));
}

// The publishers answer a refusal (no broker) through the same guard: a callback that throws
// neither escapes publish() nor stops the publisher from answering the next one.
void expect_a_throwing_publish_callback_stopped(Publisher& publisher, const std::string& where) {
  LogCapture logs;
  const auto before = util::invariant_violations();
  OutboundEvent ev;
  ev.topic = "pix.payment.requested";
  EXPECT_NO_THROW(publisher.publish(ev, [](PublishResult) { throw std::runtime_error("caller bug"); }));
  EXPECT_EQ(util::invariant_violations(), before + 1);
  EXPECT_TRUE(logs.contains(where + ": a callback threw"));
  PublishStatus second = PublishStatus::kAcked;
  publisher.publish(ev, [&](PublishResult r) { second = r.status; });
  EXPECT_EQ(second, PublishStatus::kBrokerUnavailable);
  EXPECT_EQ(publisher.in_flight(), 0u);
}

TEST(GuardedCallback, AKafkaPublishCallbackThatThrowsIsStoppedAndTheNextOneStillAnswered) {
  kafka::ProducerOptions o;
  o.bootstrap_servers = "127.0.0.1:1";
  o.ack_timeout = 500ms;
  kafka::KafkaPublisher publisher(o);
  expect_a_throwing_publish_callback_stopped(publisher, "kafka publish callback");
}

TEST(GuardedCallback, AnAmqpPublishCallbackThatThrowsIsStoppedAndTheNextOneStillAnswered) {
  amqp::ConfirmPublisher::Options o;
  o.url = *amqp::parse_amqp_url("amqp://guest:guest@127.0.0.1:1/").url;
  o.connect_timeout = 500ms;
  amqp::ConfirmPublisher publisher(o);
  expect_a_throwing_publish_callback_stopped(publisher, "amqp publish callback");
}

}  // namespace
}  // namespace pix::broker
