#include "support/saga_world.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>

#include "pix/domain/topics.hpp"
#include "pix/kafka/acls.hpp"
#include "pix/kafka/admin.hpp"
#include "pix/kafka/producer.hpp"
#include "pix/saga/handlers.hpp"
#include "pix/security/decision_signature.hpp"
#include "pix/util/random_id.hpp"
#include "support/amqp_test_consumer.hpp"
#include "support/kafka_test_consumer.hpp"

namespace pix::test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {
constexpr const char* kIssuer = "https://saga-world.test/issuer";
}  // namespace

SagaWorld::SagaWorld(std::optional<SecureEnv> secure,
                     const std::map<std::string, std::map<std::string, std::string>>& topic_config)
    : secure_(std::move(secure)), prefix_("e2e" + util::random_hex(4) + ".") {
  std::vector<kafka::TopicSpec> specs;
  std::vector<std::string> names(domain::kTopicNames.begin(), domain::kTopicNames.end());
  names.emplace_back(saga::kDeadLetterTopic);
  for (const auto& n : names) {
    kafka::TopicSpec s;
    s.name = prefix_ + n;
    s.partitions = 3;
    if (auto c = topic_config.find(n); c != topic_config.end()) s.config = c->second;
    specs.push_back(s);
    topics_.push_back(s.name);
  }
  const auto admin = kafka_properties("pix-admin");
  for (const auto& o : kafka::create_topics(bootstrap(), specs, 30s, admin)) {
    EXPECT_TRUE(o.ok) << o.name << ": " << o.status;
  }
  if (secure_) {
    // What pix-admin topology --kafka-acls declares, for this test's topics.
    for (const auto& o :
         kafka::create_acls(bootstrap(), kafka::pix_acls(prefix_, saga::kDeadLetterTopic), 30s, admin)) {
      EXPECT_TRUE(o.ok) << o.rule.describe() << ": " << o.status;
    }
    // RabbitMQ users may only use the real names (exchange pix, queue pix.notification.sent):
    // the secure test broker is the test run's own, so those are declared and kept.
    rabbit_.exchange = "pix";
    // Fresh queues: whatever earlier tests left in pix.notification.sent is not this test's.
    amqp::delete_topology(secure_->rabbit_url("pix-admin"), rabbit_);
    auto declared = amqp::declare_topology(secure_->rabbit_url("pix-admin"), rabbit_);
    EXPECT_TRUE(declared) << declared.error;
    issuer_ = security::TokenIssuer::generate_es256();
    security::TokenRequest t;
    t.subject = "saga-world";
    t.issuer = kIssuer;
    t.scopes = {"publish:pix.payment.requested"};
    token_ = issuer_->sign(t);
  } else {
    rabbit_.exchange = TestRabbit::unique_name("e2e-pix");
    rabbit_.queue_prefix = rabbit_.exchange + ".";
    auto declared = amqp::declare_topology(TestRabbit::url(), rabbit_);
    EXPECT_TRUE(declared) << declared.error;
  }
  dir_ = (fs::temp_directory_path() / ("pix-e2e-" + util::random_hex(4))).string();
  fs::create_directories(dir_);
  if (issuer_) issuer_->save_jwks_file(dir_ + "/jwks.json");
  // The decision keys: settlement acts only on anti-fraud's signed decisions, the notifier only
  // on settlement's.
  for (const char* stage : {"antifraud", "settlement"}) {
    const std::string path = decision_key(stage);
    std::ofstream(path) << security::generate_decision_key_json(stage);
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  }
}

std::string SagaWorld::decision_key(const std::string& stage) const {
  return dir_ + "/" + stage + ".key.json";
}

SagaWorld::~SagaWorld() {
  stages_.clear();
  gateways_.clear();
  kafka::delete_topics(bootstrap(), topics_, 30s, kafka_properties("pix-admin"));
  if (!secure_) {
    if (broker_restarted_) settle_quorum_queues(TestRabbit::url(), rabbit_);
    amqp::delete_topology(TestRabbit::url(), rabbit_);
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string SagaWorld::ledger_db() const {
  return dir_ + "/ledger.db";
}
std::string SagaWorld::audit_db() const {
  return dir_ + "/audit.db";
}
bool SagaWorld::stores_exist() const {
  return fs::exists(audit_db()) && fs::exists(ledger_db());
}

std::string SagaWorld::bootstrap() const {
  return secure_ ? secure_->kafka_bootstrap() : kafka_bootstrap();
}

std::map<std::string, std::string> SagaWorld::kafka_properties(const std::string& component) const {
  return secure_ ? secure_->kafka_properties(component) : std::map<std::string, std::string>{};
}

std::map<std::string, std::string> SagaWorld::env_of(const std::string& component) const {
  auto env = secure_ ? secure_->env(component) : std::map<std::string, std::string>{};
  for (const auto& [k, v] : extra_env_) env[k] = v;
  return env;
}

std::vector<std::string> SagaWorld::stage_args(const std::string& stage, int replica, const std::string& group) const {
  // Group names start with the stage's name: the secure profile's ACLs allow exactly those.
  std::vector<std::string> a{
      "--kafka-bootstrap", bootstrap(),
      "--topic-prefix",    prefix_,
      "--group",           group.empty() ? stage + "." + prefix_ : group,
      "--instance-id",     prefix_ + stage + "-" + std::to_string(replica) + (group.empty() ? "" : "-" + group)};
  if (stage == "antifraud") a.insert(a.end(), {"--decision-key", decision_key("antifraud")});
  if (stage == "antifraud" && !rules_file_.empty()) a.insert(a.end(), {"--rules", rules_file_});
  if (auto extra = extra_args_.find(stage); extra != extra_args_.end()) {
    a.insert(a.end(), extra->second.begin(), extra->second.end());
  }
  if (stage == "settlement") {
    a.insert(a.end(),
             {"--db", ledger_db(), "--population", std::to_string(kSagaPopulation), "--population-balance", "50000.00",
              "--decision-key", decision_key("settlement"), "--trust-key", decision_key("antifraud")});
  }
  if (stage == "notifier") a.insert(a.end(), {"--trust-key", decision_key("settlement")});
  // Secure: the RabbitMQ URL (each stage's own user) comes from its env file.
  if (stage == "notifier") {
    if (!secure_) a.insert(a.end(), {"--rabbit-url", rabbit_url()});
    a.insert(a.end(), {"--exchange", rabbit_.exchange});
  }
  if (stage == "auditor") {
    a.insert(a.end(), {"--db", audit_db(), "--notification-queue", rabbit_.queue_prefix + "pix.notification.sent"});
    if (!secure_) a.insert(a.end(), {"--rabbit-url", rabbit_url()});
  }
  return a;
}

void SagaWorld::start_stage(const std::string& stage, int replica, const std::string& group) {
  const std::string name = replica == 1 && group.empty() ? stage : stage + "#" + std::to_string(replica) + group;
  stages_.erase(name);  // a restart: the old process is gone before the new one starts
  stages_[name] = std::make_unique<StageProcess>("pix-" + stage, stage_args(stage, replica, group), env_of(stage));
  HttpClient c(stages_[name]->port());
  ASSERT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200; }, 60s))
      << name << " never became ready:\n"
      << stages_[name]->logs();
}

void SagaWorld::set_antifraud_rules(const std::string& json) {
  rules_file_ = dir_ + "/rules.json";
  std::ofstream(rules_file_) << json;
}

std::vector<std::string> SagaWorld::gateway_args() const {
  std::vector<std::string> args{"--broker", "kafka", "--kafka-bootstrap", bootstrap(), "--topic-prefix", prefix_};
  if (secure_) {
    args.insert(args.end(), {"--tls-cert", secure_->server_cert(), "--tls-key", secure_->server_key(), "--auth", "jwt",
                             "--jwks", dir_ + "/jwks.json", "--jwt-issuer", kIssuer});
  }
  return args;
}

std::size_t SagaWorld::start_gateway() {
  gateways_.push_back(std::make_unique<GatewayProcess>(gateway_args(), env_of("api-kafka")));
  const std::size_t i = gateways_.size() - 1;
  auto c = api_client(i);
  EXPECT_TRUE(eventually([&] { return c->request("GET", "/readyz").status == 200; }, 30s)) << gateways_[i]->logs();
  return i;
}

void SagaWorld::restart_gateway(std::size_t i) {
  gateways_.at(i)->kill_hard();
  gateways_[i] = std::make_unique<GatewayProcess>(gateway_args(), env_of("api-kafka"));
  auto c = api_client(i);
  EXPECT_TRUE(eventually([&] { return c->request("GET", "/readyz").status == 200; }, 30s)) << gateways_[i]->logs();
}

void SagaWorld::start_all() {
  start_gateway();
  for (const char* s : {"antifraud", "settlement", "notifier", "auditor"}) start_stage(s);
}

std::unique_ptr<HttpClient> SagaWorld::api_client(std::size_t i) const {
  const auto port = gateways_.at(i)->port();
  if (secure_) return std::make_unique<HttpClient>(port, TlsClientOptions{secure_->ca_file(), "", ""});
  return std::make_unique<HttpClient>(port);
}

Reply SagaWorld::post(HttpClient& client, const std::string& body,
                      const std::map<std::string, std::string>& headers) const {
  auto all = headers;
  if (secure_) all["Authorization"] = "Bearer " + token_;
  return client.post_json("/kafka", body, all);
}

saga::SagaReport SagaWorld::report() const {
  audit::AuditStore store(audit_db());
  ledger::Ledger ledger(ledger_db());
  return saga::build_report(store, &ledger);
}

std::vector<KafkaRecord> SagaWorld::dead_letters() const {
  std::vector<KafkaRecord> dead;
  for (std::int32_t p = 0; p < 3; ++p) {
    for (auto& rec :
         read_partition(bootstrap(), prefix_ + "pix.dlq", p, 0, 1'000'000, 2s, kafka_properties("pix-admin"))) {
      dead.push_back(std::move(rec));
    }
  }
  return dead;
}

std::string saga_payment(const std::string& tx, const std::string& amount, int payer, int receiver,
                         const std::string& extra) {
  char p[16], r[16];
  std::snprintf(p, sizeof p, "pix-%04d", payer);
  std::snprintf(r, sizeof r, "pix-%04d", receiver);
  return R"({"topic":"pix.payment.requested","value":{"transactionId":")" + tx + R"(","amount":)" + amount +
         R"(,"payer":")" + p + R"(","receiver":")" + r + "\"" + extra + "}}";
}

void expect_payments_flow_and_rejections_move_no_money(SagaWorld& world) {
  ASSERT_NO_FATAL_FAILURE(world.start_all());
  auto api = world.api_client();

  // A record no one can parse, written straight to the topic (the gateway would refuse it).
  {
    kafka::ProducerOptions po;
    po.bootstrap_servers = world.bootstrap();
    po.extra = world.kafka_properties("api-kafka");  // only the gateway may write requests
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
    const auto r = world.post(
        *api, saga_payment("ok-" + std::to_string(i), "\"" + std::to_string(1 + i) + ".25\"", 1 + i % 10, 11 + i % 10));
    ASSERT_EQ(r.status, 200) << r.body;
  }
  // Payers 11..15 each break one rule: their balances must not move.
  const std::vector<std::string> bad = {
      saga_payment("bad-zero", "0", 11, 1),                                              // AM01
      saga_payment("bad-limit", "\"15000.01\"", 12, 1),                                  // AM02 per transaction
      saga_payment("bad-key", "\"5.00\"", 13, 1, R"(,"receiverKey":"529.982.247-24")"),  // AC03
      saga_payment("bad-decimals", "10.505", 14, 1),                                     // ED05
      saga_payment("bad-big", "\"60000.00\"", 15, 1, R"(,"payerType":"PJ")"),            // AM02 (over 15,000)
  };
  // pix-0000 has no account: anti-fraud lets it through, settlement refuses it (AM04).
  ASSERT_EQ(world.post(*api, saga_payment("no-funds", "\"5.00\"", 0, 1)).status, 200);
  for (const auto& b : bad) ASSERT_EQ(world.post(*api, b).status, 200);
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
    for (auto& rec : read_partition(world.bootstrap(), world.prefix() + "pix.dlq", p, 0, 1'000'000, 2s,
                                    world.kafka_properties("pix-admin"))) {
      dead.push_back(std::move(rec));
    }
  }
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].value, "this is not JSON");
  EXPECT_EQ(dead[0].headers["pix_dlq_stage"], "antifraud");
  EXPECT_NE(dead[0].headers["pix_dlq_reason"].find("not JSON"), std::string::npos);
  EXPECT_EQ(dead[0].headers["ce_id"], "poison-1");

  ledger::Ledger ledger(world.ledger_db());
  // The AM04 and the rule rejections are recorded (so nothing later under their ids can settle),
  // not posted. Settlement may still be reaching the last rejections, which emit nothing.
  const auto decided = static_cast<std::size_t>(good + 1) + bad.size();
  EXPECT_TRUE(eventually([&] { return ledger.payment_count() == decided; }, 30s))
      << ledger.payment_count() << " payments decided, expected " << decided;
  EXPECT_EQ(ledger.posting_count(), static_cast<std::size_t>(2 * (kSagaPopulation + kSagaDemoAccounts) + 2 * good));
  for (int payer = 11; payer <= 15; ++payer) {
    char name[16];
    std::snprintf(name, sizeof name, "pix-%04d", payer);
    // Payers 11..15 received from the good payments (receivers 11..20) but paid nothing.
    std::int64_t received = 0;
    for (int i = 0; i < good; ++i) {
      if (11 + i % 10 == payer) received += (1 + i) * 100 + 25;
    }
    EXPECT_EQ(ledger.balance(name).value_or(-1), kSagaPopulationCents + received) << name;
  }
}

}  // namespace pix::test
