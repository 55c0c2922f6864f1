// Failures that end: a permanently refused output reaches the dead-letter topic and its partition
// moves on; a Kafka outage makes the auditor hold what it cannot forward, and nothing that only had
// to wait is dead-lettered. Against the real brokers.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>

#include "pix/amqp/confirm_publisher.hpp"
#include "pix/amqp/topology.hpp"
#include "pix/broker/cloud_event.hpp"
#include "pix/ledger/ledger.hpp"
#include "support/amqp_test_consumer.hpp"
#include "support/http_client.hpp"
#include "support/saga_world.hpp"
#include "support/service_process.hpp"

namespace pix::test {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

/// The value of an unlabelled-or-labelled sample line `<name>{...} <value>` in a /metrics body.
double sample(const std::string& metrics, const std::string& name_and_labels) {
  const auto at = metrics.find("\n" + name_and_labels + " ");
  if (at == std::string::npos) return -1;
  return std::stod(metrics.substr(at + name_and_labels.size() + 2));
}

TEST(SagaFailures, AnOutputRefusedForGoodIsDeadLetteredAndItsPartitionMovesOn) {
  // Anti-fraud may not write a record over 20,000 bytes (as if its topic's max.message.bytes
  // were that): a validation of 30,000 is refused (MSG_SIZE_TOO_LARGE) and no retry can help.
  SagaWorld world;
  world.add_stage_args("antifraud", {"--kafka-option", "message.max.bytes=20000"});
  ASSERT_NO_FATAL_FAILURE(world.start_all());
  auto api = world.api_client();
  const std::string description(30000, 'x');
  ASSERT_EQ(
      world.post(*api, saga_payment("huge-1", "\"4.00\"", 1, 2, R"(,"description":")" + description + "\"")).status,
      200);
  // The same payer, so the same partition: these wait behind the refused one.
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(world.post(*api, saga_payment("after-" + std::to_string(i), "\"1.00\"", 1, 3)).status, 200);
  }
  const auto r = world.wait_for([](const saga::SagaReport& s) { return s.settled >= 3 && s.notified >= 3; }, 90s);
  EXPECT_EQ(r.settled, 3u) << "the partition did not move on past the refused output";

  const auto dead = world.dead_letters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].header("pix_dlq_stage"), "antifraud");
  EXPECT_EQ(dead[0].header("pix_dlq_target"), world.prefix() + "pix.payment.validated");
  EXPECT_NE(dead[0].header("pix_dlq_reason").find("too large"), std::string::npos) << dead[0].header("pix_dlq_reason");
  EXPECT_EQ(dead[0].header("pix_dlq_source").rfind(world.prefix() + "pix.payment.requested/", 0), 0u);
  EXPECT_EQ(json::parse(dead[0].value).at("refused").as_string(), "record too large");

  ledger::Ledger ledger(world.ledger_db());
  EXPECT_EQ(ledger.balance("pix-0001"), kSagaPopulationCents - 300) << "the refused payment moved money";
  HttpClient admin(world.stage("antifraud").port());
  EXPECT_EQ(admin.request("GET", "/readyz").status, 200) << "readiness still reports the refused output";
  const auto metrics = admin.request("GET", "/metrics").body;
  EXPECT_EQ(sample(metrics, R"(pix_stage_dead_lettered_total{stage="antifraud"})"), 1);
  EXPECT_EQ(sample(metrics, R"(pix_stage_outputs_stuck{stage="antifraud"})"), 0);
}

TEST(SagaFailures, WhileKafkaIsDownTheAuditorHoldsNotificationsAndAuditsThemAllAfter) {
  if (std::getenv("PIX_TEST_BROKER_CONTROL") == nullptr) {
    GTEST_SKIP() << "set PIX_TEST_BROKER_CONTROL=1 to let tests stop and start the local Kafka";
  }
  SagaWorld world;
  ASSERT_NO_FATAL_FAILURE(world.start_all());
  const auto& topology = world.rabbit_topology();
  const auto names = amqp::topology_names(topology);
  const std::string queue = topology.queue_prefix + "pix.notification.sent";
  // The quorum queues carry the explicit delivery limit (scripts/local/rabbitmq.sh's policy).
  std::FILE* policies = ::popen(PIX_SOURCE_DIR "/scripts/local/rabbitmq.sh ctl -q list_queues name policy", "r");
  ASSERT_NE(policies, nullptr);
  std::string listed;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, policies)) listed += buf;
  ::pclose(policies);
  EXPECT_NE(listed.find(queue + "\tpix-delivery-limit"), std::string::npos) << listed;

  amqp::ConfirmPublisher::Options po;
  po.url = TestRabbit::url();
  po.exchange = topology.exchange;
  amqp::ConfirmPublisher notifications(po);
  ASSERT_TRUE(notifications.wait_connected(10s));

  ASSERT_EQ(std::system(PIX_SOURCE_DIR "/scripts/local/kafka.sh stop >/dev/null 2>&1"), 0);
  constexpr int kHeld = 10;
  std::atomic<int> confirmed{0};
  for (int i = 0; i < kHeld; ++i) {
    broker::OutboundEvent ev;
    ev.topic = "pix.notification.sent";
    ev.id = "held-" + std::to_string(i) + "-" + world.prefix();
    ev.payload = R"({"transactionId":"held-)" + std::to_string(i) + R"(","status":"notified"})";
    ev.timestamp_ms = broker::now_epoch_ms();
    notifications.publish(ev, [&](broker::PublishResult r) {
      if (r.status == broker::PublishStatus::kAcked) ++confirmed;
    });
  }
  EXPECT_TRUE(eventually([&] { return confirmed.load() == kHeld; }, 10s));
  // Kafka stays down a while: long enough for a requeue loop to redeliver each many times.
  std::this_thread::sleep_for(8s);
  ASSERT_EQ(std::system(PIX_SOURCE_DIR "/scripts/local/kafka.sh start >/dev/null 2>&1"), 0);

  const auto r = world.wait_for([](const saga::SagaReport& s) { return s.audited >= kHeld; }, 120s);
  EXPECT_EQ(r.audited, static_cast<std::size_t>(kHeld)) << "a held notification was lost or audited twice";
  EXPECT_TRUE(r.chain_valid) << r.chain_detail;
  EXPECT_TRUE(eventually([&] { return queue_message_count(TestRabbit::url(), queue).value_or(1) == 0; }, 30s))
      << "notifications were left in " << queue;
  EXPECT_EQ(queue_message_count(TestRabbit::url(), names.dead_letter_queue).value_or(0), 0u)
      << "the outage dead-lettered a notification that only had to wait";
  EXPECT_TRUE(world.dead_letters().empty());
}

}  // namespace
}  // namespace pix::test
