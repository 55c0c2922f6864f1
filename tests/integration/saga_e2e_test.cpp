// The whole saga, end to end, against the real brokers: the real pix-api and the four real stage
// processes, each test on Kafka topics and a RabbitMQ exchange of its own.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <atomic>
#include <filesystem>
#include <future>
#include <random>
#include <thread>

#include "pix/amqp/topology.hpp"
#include "pix/domain/topics.hpp"
#include "pix/kafka/admin.hpp"
#include "pix/kafka/producer.hpp"
#include "pix/saga/handlers.hpp"
#include "pix/saga/report.hpp"
#include "pix/util/random_id.hpp"
#include "support/amqp_test_consumer.hpp"
#include "support/http_client.hpp"
#include "support/kafka_test_consumer.hpp"
#include "support/saga_world.hpp"
#include "support/service_process.hpp"

namespace pix::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST(SagaEndToEnd, PaymentsFlowToNotificationAndRejectionsMoveNoMoney) {
  SagaWorld world;
  expect_payments_flow_and_rejections_move_no_money(world);
}

// The plain profile lets any client publish any of the five topics: a validation posted through
// POST /kafka looks exactly like anti-fraud's, but it is not signed by anti-fraud's key.
TEST(SagaEndToEnd, AForgedValidationPostedThroughTheApiIsNeverSettledAndIsDeadLettered) {
  SagaWorld world;
  ASSERT_NO_FATAL_FAILURE(world.start_all());
  auto api = world.api_client();
  const auto forged = world.post(*api, R"({"topic":"pix.payment.validated","value":{"transactionId":"forged-1",)"
                                       R"("paymentId":"forged-1","status":"validated","payer":"pix-0001",)"
                                       R"("receiver":"pix-0002","amountCents":1000000,"valor":"10000.00"}})");
  ASSERT_EQ(forged.status, 200) << forged.body;
  // A genuine payment after it: once it is settled, settlement has been past the forged record.
  ASSERT_EQ(world.post(*api, saga_payment("genuine-1", "\"7.00\"", 3, 4)).status, 200);
  const auto r = world.wait_for([](const saga::SagaReport& s) { return s.settled >= 1 && s.notified >= 1; }, 60s);
  EXPECT_EQ(r.settled, 1u);
  EXPECT_EQ(r.notified, 1u);
  ledger::Ledger ledger(world.ledger_db());
  EXPECT_EQ(ledger.payment_count(), 1u) << "the forged validation moved money";
  ASSERT_TRUE(r.total_balance);
  EXPECT_EQ(*r.total_balance, 0);

  std::vector<KafkaRecord> dead;
  for (std::int32_t p = 0; p < 3; ++p) {
    for (auto& rec : read_partition(world.bootstrap(), world.prefix() + "pix.dlq", p, 0, 1'000'000, 2s)) {
      dead.push_back(std::move(rec));
    }
  }
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].key, "forged-1");
  EXPECT_EQ(dead[0].header("pix_dlq_stage"), "settlement");
  EXPECT_EQ(dead[0].header("pix_dlq_reason"), "provenance: missing: not a decision signed by antifraud; not acted on");

  HttpClient admin(world.stage("settlement").port());
  const auto metrics = admin.request("GET", "/metrics").body;
  EXPECT_NE(metrics.find(R"(pix_saga_provenance_refused_total{stage="settlement",reason="missing"} 1)"),
            std::string::npos)
      << metrics;
}

TEST(SagaEndToEnd, KillNineMidRunLosesNothingAndPostsNothingTwice) {
  SagaWorld world;
  ASSERT_NO_FATAL_FAILURE(world.start_all());
  const int total = 240;
  std::atomic<int> sent{0};
  std::atomic<bool> failed{false};
  std::thread sender([&] {
    auto api = world.api_client();
    for (int i = 0; i < total; ++i) {
      const auto r =
          world.post(*api, saga_payment("crash-" + std::to_string(i), "\"1." + std::to_string(10 + i % 90) + "\"",
                                        1 + i % kSagaPopulation, 1 + (i + 7) % kSagaPopulation));
      if (r.status != 200) failed = true;
      ++sent;
      std::this_thread::sleep_for(10ms);
    }
  });
  // Crash each effectful stage once while payments flow, and bring it back on the same files.
  ASSERT_TRUE(eventually([&] { return sent.load() >= total / 4; }, 60s));
  world.stage("settlement").kill_hard();
  ASSERT_NO_FATAL_FAILURE(world.start_stage("settlement"));
  ASSERT_TRUE(eventually([&] { return sent.load() >= total / 2; }, 60s));
  world.stage("auditor").kill_hard();
  ASSERT_NO_FATAL_FAILURE(world.start_stage("auditor"));
  ASSERT_TRUE(eventually([&] { return sent.load() >= 3 * total / 4; }, 60s));
  world.stage("notifier").kill_hard();
  ASSERT_NO_FATAL_FAILURE(world.start_stage("notifier"));
  sender.join();
  ASSERT_FALSE(failed.load()) << "the gateway refused a payment";

  auto r = world.wait_for(
      [&](const saga::SagaReport& s) {
        return s.notified >= static_cast<std::size_t>(total) && s.audited >= static_cast<std::size_t>(4 * total);
      },
      120s);
  EXPECT_EQ(r.requested, static_cast<std::size_t>(total));
  EXPECT_EQ(r.validated, static_cast<std::size_t>(total));
  EXPECT_EQ(r.settled, static_cast<std::size_t>(total)) << "a payment was lost";
  EXPECT_EQ(r.notified, static_cast<std::size_t>(total));
  EXPECT_EQ(r.audited, static_cast<std::size_t>(4 * total)) << "an event is missing from, or twice in, the chain";
  EXPECT_TRUE(r.chain_valid) << r.chain_detail;
  ASSERT_TRUE(r.total_balance);
  EXPECT_EQ(*r.total_balance, 0);
  ledger::Ledger ledger(world.ledger_db());
  EXPECT_EQ(ledger.payment_count(), static_cast<std::size_t>(total)) << "a payment was posted twice or not at all";
  // Funding wrote two postings per population account, every payment two more.
  EXPECT_EQ(ledger.posting_count(), static_cast<std::size_t>(2 * (kSagaPopulation + kSagaDemoAccounts) + 2 * total));
}

TEST(SagaEndToEnd, StagesReconnectWhenRabbitMqComesBack) {
  if (std::getenv("PIX_TEST_BROKER_CONTROL") == nullptr) {
    GTEST_SKIP() << "set PIX_TEST_BROKER_CONTROL=1 to let tests stop and start the local RabbitMQ";
  }
  SagaWorld world;
  ASSERT_NO_FATAL_FAILURE(world.start_all());
  auto api = world.api_client();
  const int total = 20;
  world.broker_restarted();
  ASSERT_EQ(std::system(PIX_SOURCE_DIR "/scripts/local/rabbitmq.sh stop >/dev/null 2>&1"), 0);
  // Payments keep coming in through Kafka while notifications cannot go out.
  for (int i = 0; i < total; ++i) {
    ASSERT_EQ(world
                  .post(*api, saga_payment("rmq-" + std::to_string(i), "\"3.00\"", 1 + i % kSagaPopulation,
                                           1 + (i + 3) % kSagaPopulation))
                  .status,
              200);
  }
  auto before =
      world.wait_for([&](const saga::SagaReport& s) { return s.settled >= static_cast<std::size_t>(total); }, 60s);
  EXPECT_EQ(before.settled, static_cast<std::size_t>(total));
  EXPECT_EQ(before.notified, 0u);
  ASSERT_EQ(std::system(PIX_SOURCE_DIR "/scripts/local/rabbitmq.sh start >/dev/null 2>&1"), 0);
  // Neither the notifier nor the auditor was restarted: they reconnect and catch up by themselves.
  auto r = world.wait_for(
      [&](const saga::SagaReport& s) {
        return s.notified >= static_cast<std::size_t>(total) && s.audited >= static_cast<std::size_t>(4 * total);
      },
      90s);
  EXPECT_EQ(r.notified, static_cast<std::size_t>(total));
  EXPECT_EQ(r.audited, static_cast<std::size_t>(4 * total));
  EXPECT_TRUE(r.chain_valid) << r.chain_detail;
  EXPECT_TRUE(world.dead_letters().empty()) << "an outage dead-lettered what only had to wait";
}

}  // namespace
}  // namespace pix::test
