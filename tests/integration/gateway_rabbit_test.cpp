// Black-box tests of api-rabbitmq: the real pix-api binary against the real RabbitMQ, each test
// on a fresh exchange (and queues) of its own.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <atomic>
#include <csignal>
#include <thread>

#include "support/amqp_test_consumer.hpp"
#include "support/broker_control.hpp"
#include "support/http_client.hpp"
#include "support/service_process.hpp"

namespace pix::test {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

constexpr const char* kSeedRabbitExample = R"({
  "topic": "pix.notification.sent",
  "value": {
    "transactionId": "12345",
    "status": "notified"
  }
})";

// A private copy of the production topology, removed when the test ends.
class FreshTopology {
 public:
  FreshTopology() {
    options_.exchange = TestRabbit::unique_name("pix-test");
    options_.queue_prefix = options_.exchange + ".";
    auto r = amqp::declare_topology(TestRabbit::url(), options_);
    EXPECT_TRUE(r) << r.error;
  }
  ~FreshTopology() {
    if (broker_restarted_) settle_quorum_queues(TestRabbit::url(), options_);
    amqp::delete_topology(TestRabbit::url(), options_);
  }
  /// The test restarts RabbitMQ: the queues settle before they are deleted.
  void broker_restarted() { broker_restarted_ = true; }
  const std::string& exchange() const { return options_.exchange; }
  std::string queue_for(const std::string& key) const { return options_.queue_prefix + key; }

 private:
  amqp::TopologyOptions options_;
  bool broker_restarted_ = false;
};

std::unique_ptr<GatewayProcess> start_gateway(const std::string& exchange, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--broker", "rabbit", "--rabbit-url", rabbit_url(), "--exchange", exchange};
  args.insert(args.end(), extra.begin(), extra.end());
  auto gw = std::make_unique<GatewayProcess>(args);
  HttpClient c(gw->port());
  EXPECT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200; }, 30s)) << gw->logs();
  return gw;
}

TEST(GatewayRabbit, SeedExampleIsConfirmedAndDeliveredPersistentWithHeaders) {
  FreshTopology topo;
  AmqpTestConsumer consumer(TestRabbit::url(), topo.exchange(), "pix.notification.sent");
  ASSERT_TRUE(consumer.error().empty()) << consumer.error();
  auto gw = start_gateway(topo.exchange());
  HttpClient c(gw->port());

  auto r = c.post_json("/rabbit", kSeedRabbitExample);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = json::parse(r.body).as_object();
  EXPECT_EQ(body.at("broker").as_string(), "rabbitmq");
  EXPECT_EQ(body.at("exchange").as_string(), topo.exchange());
  EXPECT_EQ(body.at("routingKey").as_string(), "pix.notification.sent");
  const std::string event_id(body.at("eventId").as_string());

  auto got = consumer.receive(1, 10s);
  ASSERT_EQ(got.size(), 1u);
  const auto& m = got[0];
  EXPECT_EQ(m.routing_key, "pix.notification.sent");
  EXPECT_EQ(json::parse(m.body), json::parse(R"({"transactionId":"12345","status":"notified"})"));
  EXPECT_EQ(m.delivery_mode, 2) << "not persistent";
  EXPECT_EQ(m.message_id, event_id);
  EXPECT_EQ(m.content_type, "application/json");
  EXPECT_GT(m.timestamp, 0u);
  EXPECT_EQ(m.headers.at("cloudEvents_specversion"), "1.0");
  EXPECT_EQ(m.headers.at("cloudEvents_id"), event_id);
  EXPECT_EQ(m.headers.at("cloudEvents_type"), "pix.notification.sent");
  EXPECT_EQ(m.headers.at("cloudEvents_source"), "/pix-pubsub/api-rabbitmq");
  EXPECT_EQ(m.headers.at("traceparent").size(), 55u);

  // The production topology's own queue for that key holds it too (durable quorum queue).
  EXPECT_TRUE(eventually(
      [&] { return queue_message_count(TestRabbit::url(), topo.queue_for("pix.notification.sent")) == 1u; }, 5s));
}

TEST(GatewayRabbit, EveryTopicIsRoutedToItsQueue) {
  FreshTopology topo;
  auto gw = start_gateway(topo.exchange());
  HttpClient c(gw->port());
  const std::vector<std::pair<std::string, std::string>> events = {
      {"pix.payment.requested", R"({"transactionId":"t1","amount":1,"payer":"a","receiver":"b"})"},
      {"pix.payment.validated", R"({"transactionId":"t1","status":"validated"})"},
      {"pix.payment.settled", R"({"transactionId":"t1","status":"settled"})"},
      {"pix.notification.sent", R"({"transactionId":"t1","status":"notified"})"},
      {"pix.audit.log", R"({"transactionId":"t1","action":"completed"})"}};
  for (const auto& [topic, value] : events) {
    auto r = c.post_json("/rabbit", R"({"topic":")" + topic + R"(","value":)" + value + "}");
    ASSERT_EQ(r.status, 200) << topic << " " << r.body;
  }
  for (const auto& [topic, value] : events) {
    EXPECT_TRUE(eventually([&] { return queue_message_count(TestRabbit::url(), topo.queue_for(topic)) == 1u; }, 5s))
        << topic;
  }
}

TEST(GatewayRabbit, IdempotentRetryPublishesOnce) {
  FreshTopology topo;
  auto gw = start_gateway(topo.exchange());
  HttpClient c(gw->port());
  const std::string key = TestRabbit::unique_name("key");
  auto first = c.post_json("/rabbit", kSeedRabbitExample, {{"Idempotency-Key", key}});
  auto second = c.post_json("/rabbit", kSeedRabbitExample, {{"Idempotency-Key", key}});
  ASSERT_EQ(first.status, 200) << first.body;
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(first.body, second.body);
  EXPECT_EQ(second.header("idempotent-replayed"), "true");
  // A different key is a different event.
  ASSERT_EQ(c.post_json("/rabbit", kSeedRabbitExample, {{"Idempotency-Key", key + "-2"}}).status, 200);
  const auto queue = topo.queue_for("pix.notification.sent");
  EXPECT_TRUE(eventually([&] { return queue_message_count(TestRabbit::url(), queue) == 2u; }, 5s));
  std::this_thread::sleep_for(200ms);  // a late duplicate would show up here
  EXPECT_EQ(queue_message_count(TestRabbit::url(), queue), 2u);
}

TEST(GatewayRabbit, MissingExchangeIsNotReady) {
  GatewayProcess gw(
      {"--broker", "rabbit", "--rabbit-url", rabbit_url(), "--exchange", TestRabbit::unique_name("no-such-exchange")});
  HttpClient c(gw.port());
  EXPECT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 503; }, 10s));
}

TEST(GatewayRabbitUnreachable, AnswersServiceUnavailableNeverOk) {
  GatewayProcess gw({"--broker", "rabbit", "--rabbit-url", "amqp://guest:guest@127.0.0.1:1/"});
  HttpClient c(gw.port());
  for (int i = 0; i < 20; ++i) {
    auto r = c.post_json("/rabbit", kSeedRabbitExample);
    ASSERT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.header("retry-after"), "1");
  }
  EXPECT_EQ(c.request("GET", "/readyz").status, 503);
  EXPECT_EQ(c.request("GET", "/healthz").status, 200);
}

TEST(GatewayRabbitDrain, SigtermLosesNoneOfTheAcknowledgedEvents) {
  FreshTopology topo;
  auto gw = start_gateway(topo.exchange());
  std::atomic<int> acked{0}, maybe_stored{0}, answered{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&] {
      try {
        HttpClient c(gw->port());
        for (;;) {
          const int status = c.post_json("/rabbit", kSeedRabbitExample).status;
          ++answered;
          if (status == 200) ++acked;
          if (status == 504) ++maybe_stored;
        }
      } catch (const std::exception&) {
        // The server closed the connection after draining: this client is done.
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return answered.load() > 200; }, 30s));
  gw->signal(SIGTERM);
  EXPECT_EQ(gw->wait_exit(20s), 0) << gw->logs();
  for (auto& t : clients) t.join();
  ASSERT_GT(acked.load(), 0);
  // Every 200 is in the durable queue; only a 504 (which says "may exist") could add more.
  const auto queue = topo.queue_for("pix.notification.sent");
  const auto expected = static_cast<std::uint32_t>(acked.load());
  EXPECT_TRUE(eventually([&] { return queue_message_count(TestRabbit::url(), queue) >= expected; }, 10s))
      << "acknowledged " << expected << ", queued " << queue_message_count(TestRabbit::url(), queue).value_or(0);
  EXPECT_LE(queue_message_count(TestRabbit::url(), queue).value_or(0), expected + maybe_stored.load());
}

TEST(GatewayRabbitSilentBroker, AnswersGatewayTimeoutWhenNoConfirmComes) {
  if (std::getenv("PIX_TEST_BROKER_CONTROL") == nullptr) {
    GTEST_SKIP() << "set PIX_TEST_BROKER_CONTROL=1 to let tests freeze the local RabbitMQ";
  }
  const int pid = local_broker_pid("rabbitmq");
  ASSERT_GT(pid, 0) << "no pid file for the local RabbitMQ";
  FreshTopology topo;
  auto gw = start_gateway(topo.exchange(), {"--publish-timeout-ms", "1000"});
  HttpClient c(gw->port());
  ASSERT_EQ(c.post_json("/rabbit", kSeedRabbitExample).status, 200);
  {
    FrozenProcess frozen(pid);
    auto r = c.post_json("/rabbit", kSeedRabbitExample);
    ASSERT_EQ(r.status, 504) << r.body;
    EXPECT_EQ(json::parse(r.body).at("type").as_string(), "urn:pix-pubsub:problem:broker-ack-timeout");
  }
  const Reply back = post_until_status(c, "/rabbit", kSeedRabbitExample, 200, 60s);
  EXPECT_EQ(back.status, 200) << back.status << " " << back.body;
}

TEST(GatewayRabbitOutage, NeverOkWhileDownAndResumesByItselfWhenBack) {
  if (std::getenv("PIX_TEST_BROKER_CONTROL") == nullptr) {
    GTEST_SKIP() << "set PIX_TEST_BROKER_CONTROL=1 to let tests stop and start the local RabbitMQ";
  }
  FreshTopology topo;
  auto gw = start_gateway(topo.exchange(), {"--publish-timeout-ms", "3000"});
  HttpClient c(gw->port());
  ASSERT_EQ(c.post_json("/rabbit", kSeedRabbitExample).status, 200);

  topo.broker_restarted();
  ASSERT_EQ(std::system(PIX_SOURCE_DIR "/scripts/local/rabbitmq.sh stop >/dev/null 2>&1"), 0);
  int unavailable = 0, maybe_stored = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = c.post_json("/rabbit", kSeedRabbitExample);
    ASSERT_NE(r.status, 200) << "answered 200 with the broker stopped: " << r.body;
    ASSERT_TRUE(r.status == 503 || r.status == 504) << r.status << " " << r.body;
    unavailable += r.status == 503 ? 1 : 0;
    maybe_stored += r.status == 504 ? 1 : 0;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GT(unavailable, 0);
  EXPECT_EQ(c.request("GET", "/readyz").status, 503);

  ASSERT_EQ(std::system(PIX_SOURCE_DIR "/scripts/local/rabbitmq.sh start >/dev/null 2>&1"), 0);
  const Reply back = post_until_status(c, "/rabbit", kSeedRabbitExample, 200, 60s);
  ASSERT_EQ(back.status, 200) << "publishing did not resume after the broker came back: " << back.status << " "
                              << back.body;
  EXPECT_EQ(c.request("GET", "/readyz").status, 200);
  // One before the outage, one after (plus any 504, which may exist): the durable queue kept
  // the first across the restart.
  const auto queue = topo.queue_for("pix.notification.sent");
  EXPECT_TRUE(eventually([&] { return queue_message_count(TestRabbit::url(), queue) >= 2u; }, 5s));
  EXPECT_LE(queue_message_count(TestRabbit::url(), queue).value_or(0), 2u + maybe_stored);
}

}  // namespace
}  // namespace pix::test
