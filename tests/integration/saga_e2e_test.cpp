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
#include "support/service_process.hpp"

namespace pix::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int kPopulation = 20;
constexpr std::int64_t kPopulationCents = 5'000'000;  // R$50,000.00 each
constexpr int kDemoAccounts = 5;                      // alice..erin, funded by default too

/// Private topics, exchange, databases and consumer groups; removed at the end.
class SagaWorld {
 public:
  SagaWorld() : prefix_("e2e" + util::random_hex(4) + ".") {
    std::vector<kafka::TopicSpec> specs;
    std::vector<std::string> names(domain::kTopicNames.begin(), domain::kTopicNames.end());
    names.emplace_back(saga::kDeadLetterTopic);
    for (const auto& n : names) {
      kafka::TopicSpec s;
      s.name = prefix_ + n;
      s.partitions = 3;
      specs.push_back(s);
      topics_.push_back(s.name);
    }
    for (const auto& o : kafka::create_topics(kafka_bootstrap(), specs))
      EXPECT_TRUE(o.ok) << o.name << ": " << o.status;
    rabbit_.exchange = TestRabbit::unique_name("e2e-pix");
    rabbit_.queue_prefix = rabbit_.exchange + ".";
    auto declared = amqp::declare_topology(TestRabbit::url(), rabbit_);
    EXPECT_TRUE(declared) << declared.error;
    dir_ = fs::temp_directory_path() / ("pix-e2e-" + util::random_hex(4));
    fs::create_directories(dir_);
  }
  ~SagaWorld() {
    stages_.clear();
    api_.reset();
    kafka::delete_topics(kafka_bootstrap(), topics_);
    amqp::delete_topology(TestRabbit::url(), rabbit_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string ledger_db() const { return (dir_ / "ledger.db").string(); }
  std::string audit_db() const { return (dir_ / "audit.db").string(); }

  std::vector<std::string> stage_args(const std::string& stage) const {
    std::vector<std::string> a{"--kafka-bootstrap", kafka_bootstrap(), "--topic-prefix", prefix_,
                               "--group",           prefix_ + stage,   "--instance-id",  prefix_ + stage + "-1"};
    if (stage == "settlement") {
      a.insert(a.end(),
               {"--db", ledger_db(), "--population", std::to_string(kPopulation), "--population-balance", "50000.00"});
    }
    if (stage == "notifier") a.insert(a.end(), {"--rabbit-url", rabbit_url(), "--exchange", rabbit_.exchange});
    if (stage == "auditor") {
      a.insert(a.end(), {"--db", audit_db(), "--rabbit-url", rabbit_url(), "--notification-queue",
                         rabbit_.queue_prefix + "pix.notification.sent"});
    }
    return a;
  }

  void start_stage(const std::string& stage) {
    stages_[stage] = std::make_unique<StageProcess>("pix-" + stage, stage_args(stage));
    HttpClient c(stages_[stage]->port());
    ASSERT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200; }, 60s))
        << stage << " never became ready:\n"
        << stages_[stage]->logs();
  }

  void start_all() {
    api_ = std::make_unique<GatewayProcess>(std::vector<std::string>{"--broker", "kafka", "--kafka-bootstrap",
                                                                     kafka_bootstrap(), "--topic-prefix", prefix_});
    for (const char* s : {"antifraud", "settlement", "notifier", "auditor"}) start_stage(s);
    HttpClient c(api_->port());
    ASSERT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200; }, 30s));
  }

  ServiceProcess& stage(const std::string& name) { return *stages_.at(name); }
  const std::string& prefix() const { return prefix_; }
  std::uint16_t api_port() const { return api_->port(); }

  /// The saga's state as the audit store and the ledger tell it.
  saga::SagaReport report() const {
    audit::AuditStore store(audit_db());
    ledger::Ledger ledger(ledger_db());
    return saga::build_report(store, &ledger);
  }

  /// Polls until `done(report)` or the timeout; returns the last report.
  template <typename Pred>
  saga::SagaReport wait_for(Pred done, std::chrono::seconds timeout) const {
    saga::SagaReport r;
    eventually(
        [&] {
          if (!fs::exists(audit_db()) || !fs::exists(ledger_db())) return false;
          r = report();
          return done(r);
        },
        timeout, 250ms);
    return r;
  }

 private:
  std::string prefix_;
  std::vector<std::string> topics_;
  amqp::TopologyOptions rabbit_;
  fs::path dir_;
  std::unique_ptr<GatewayProcess> api_;
  std::map<std::string, std::unique_ptr<StageProcess>> stages_;
};

std::string payment(const std::string& tx, const std::string& amount, int payer, int receiver,
                    const std::string& extra = "") {
  char p[16], r[16];
  std::snprintf(p, sizeof p, "pix-%04d", payer);
  std::snprintf(r, sizeof r, "pix-%04d", receiver);
  return R"({"topic":"pix.payment.requested","value":{"transactionId":")" + tx + R"(","amount":)" + amount +
         R"(,"payer":")" + p + R"(","receiver":")" + r + "\"" + extra + "}}";
}

TEST(SagaEndToEnd, PaymentsFlowToNotificationAndRejectionsMoveNoMoney) {
  SagaWorld world;
  ASSERT_NO_FATAL_FAILURE(world.start_all());
  HttpClient api(world.api_port());

  // A record no one can parse, written straight to the topic (the gateway would refuse it).
  {
    kafka::ProducerOptions po;
    po.bootstrap_servers = kafka_bootstrap();
    kafka::KafkaPublisher raw(po);
    ASSERT_TRUE(eventually([&] { return raw.broker_up(); }, 10s));
    broker::OutboundEvent ev;
    ev.topic = world.prefix() + "pix.payment.requested";
    ev.key = "poison";
    ev.payload = "this is not JSON";
    ev.id = "poison-1";
    ev.headers = {{"ce_id", "poison-1"}};
    std::promise<broker::PublishStatus> acked;
    raw.publish(ev, [&](broker::PublishResult r) { acked.set_value(r.status); });
    ASSERT_EQ(acked.get_future().get(), broker::PublishStatus::kAcked);
  }

  const int good = 30;
  for (int i = 0; i < good; ++i) {
    const auto r = api.post_json(
        "/kafka", payment("ok-" + std::to_string(i), "\"" + std::to_string(1 + i) + ".25\"", 1 + i % 10, 11 + i % 10));
    ASSERT_EQ(r.status, 200) << r.body;
  }
  // Payers 11..15 each break one rule: their balances must not move.
  const std::vector<std::string> bad = {
      payment("bad-zero", "0", 11, 1),                                              // AM01
      payment("bad-limit", "\"15000.01\"", 12, 1),                                  // AM02 per transaction
      payment("bad-key", "\"5.00\"", 13, 1, R"(,"receiverKey":"529.982.247-24")"),  // AC03
      payment("bad-decimals", "10.505", 14, 1),                                     // ED05
      payment("bad-big", "\"60000.00\"", 15, 1, R"(,"payerType":"PJ")"),            // AM02 (over 15,000)
  };
  // pix-0000 has no account: anti-fraud lets it through, settlement refuses it (AM04).
  ASSERT_EQ(api.post_json("/kafka", payment("no-funds", "\"5.00\"", 0, 1)).status, 200);
  for (const auto& b : bad) ASSERT_EQ(api.post_json("/kafka", b).status, 200);
  const int requested = good + static_cast<int>(bad.size()) + 1;

  auto r = world.wait_for(
      [&](const saga::SagaReport& s) {
        return s.notified >= static_cast<std::size_t>(good) && s.requested == static_cast<std::size_t>(requested) &&
               s.rejected_at_settlement >= 1 &&
               s.validated + s.rejected_at_validation == static_cast<std::size_t>(requested);
      },
      90s);
  EXPECT_EQ(r.requested, static_cast<std::size_t>(requested));  // the poison record is audited, not counted
  EXPECT_EQ(r.validated, static_cast<std::size_t>(good + 1));
  EXPECT_EQ(r.rejected_at_validation, bad.size());
  EXPECT_EQ(r.settled, static_cast<std::size_t>(good));
  EXPECT_EQ(r.rejected_at_settlement, 1u);
  EXPECT_EQ(r.rejected_by_reason["AM04 settlement"], 1u);
  EXPECT_EQ(r.notified, static_cast<std::size_t>(good));
  EXPECT_EQ(r.rejected_by_reason["AM01 positive_amount"], 1u);
  EXPECT_EQ(r.rejected_by_reason["AC03 receiver_key"], 1u);
  EXPECT_EQ(r.rejected_by_reason["ED05 amount_format"], 1u);
  EXPECT_EQ(r.rejected_by_reason["AM02 per_transaction_limit"], 2u);
  // Every event once: requested + validated for all, settled for the good ones and the AM04 one,
  // notified for the good ones.
  EXPECT_EQ(r.audited, static_cast<std::size_t>(2 * requested + 2 * good + 1 + 1));  // + the poison record
  EXPECT_TRUE(r.chain_valid) << r.chain_detail;
  ASSERT_TRUE(r.total_balance);
  EXPECT_EQ(*r.total_balance, 0) << "money was created or destroyed";

  // The poison record went to the dead-letter topic with its reason, and the stage went on.
  std::vector<KafkaRecord> dead;
  for (std::int32_t p = 0; p < 3; ++p) {
    for (auto& rec : read_partition(kafka_bootstrap(), world.prefix() + "pix.dlq", p, 0, 1'000'000, 2s)) {
      dead.push_back(std::move(rec));
    }
  }
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].value, "this is not JSON");
  EXPECT_EQ(dead[0].headers["pix_dlq_stage"], "antifraud");
  EXPECT_NE(dead[0].headers["pix_dlq_reason"].find("not JSON"), std::string::npos);
  EXPECT_EQ(dead[0].headers["ce_id"], "poison-1");

  ledger::Ledger ledger(world.ledger_db());
  EXPECT_EQ(ledger.payment_count(), static_cast<std::size_t>(good + 1));  // the AM04 is recorded, not posted
  EXPECT_EQ(ledger.posting_count(), static_cast<std::size_t>(2 * (kPopulation + kDemoAccounts) + 2 * good));
  for (int payer = 11; payer <= 15; ++payer) {
    char name[16];
    std::snprintf(name, sizeof name, "pix-%04d", payer);
    // Payers 11..15 received from the good payments (receivers 11..20) but paid nothing.
    std::int64_t received = 0;
    for (int i = 0; i < good; ++i) {
      if (11 + i % 10 == payer) received += (1 + i) * 100 + 25;
    }
    EXPECT_EQ(ledger.balance(name).value_or(-1), kPopulationCents + received) << name;
  }
}

TEST(SagaEndToEnd, KillNineMidRunLosesNothingAndPostsNothingTwice) {
  SagaWorld world;
  ASSERT_NO_FATAL_FAILURE(world.start_all());
  const int total = 240;
  std::atomic<int> sent{0};
  std::atomic<bool> failed{false};
  std::thread sender([&] {
    HttpClient api(world.api_port());
    for (int i = 0; i < total; ++i) {
      const auto r =
          api.post_json("/kafka", payment("crash-" + std::to_string(i), "\"1." + std::to_string(10 + i % 90) + "\"",
                                          1 + i % kPopulation, 1 + (i + 7) % kPopulation));
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
  EXPECT_EQ(ledger.posting_count(), static_cast<std::size_t>(2 * (kPopulation + kDemoAccounts) + 2 * total));
}

TEST(SagaEndToEnd, StagesReconnectWhenRabbitMqComesBack) {
  if (std::getenv("PIX_TEST_BROKER_CONTROL") == nullptr) {
    GTEST_SKIP() << "set PIX_TEST_BROKER_CONTROL=1 to let tests stop and start the local RabbitMQ";
  }
  SagaWorld world;
  ASSERT_NO_FATAL_FAILURE(world.start_all());
  HttpClient api(world.api_port());
  const int total = 20;
  ASSERT_EQ(std::system(PIX_SOURCE_DIR "/scripts/local/rabbitmq.sh stop >/dev/null 2>&1"), 0);
  // Payments keep coming in through Kafka while notifications cannot go out.
  for (int i = 0; i < total; ++i) {
    ASSERT_EQ(api.post_json("/kafka", payment("rmq-" + std::to_string(i), "\"3.00\"", 1 + i % kPopulation,
                                              1 + (i + 3) % kPopulation))
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
}

}  // namespace
}  // namespace pix::test
