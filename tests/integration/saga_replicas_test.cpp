// One verdict per payment, whatever the replica: several replicas of anti-fraud and of the
// gateway, killed with SIGKILL mid-run and restarted, against the real brokers.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "pix/ledger/ledger.hpp"
#include "pix/saga/report.hpp"
#include "support/http_client.hpp"
#include "support/kafka_test_consumer.hpp"
#include "support/saga_world.hpp"
#include "support/service_process.hpp"

namespace pix::test {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

struct Verdict {
  std::string status;
  std::string rule;
  std::string payer;
};

/// Every record on the world's validated topic, by paymentId, in each partition's order.
std::map<std::string, std::vector<Verdict>> verdicts(SagaWorld& world) {
  std::map<std::string, std::vector<Verdict>> out;
  for (std::int32_t p = 0; p < 3; ++p) {
    for (const auto& rec : read_partition(world.bootstrap(), world.prefix() + "pix.payment.validated", p, 0, 1'000'000,
                                          3s, world.kafka_properties("pix-admin"))) {
      const auto v = json::parse(rec.value).as_object();
      Verdict d;
      d.status = std::string(v.at("status").as_string());
      d.payer = std::string(v.at("payer").as_string());
      if (const auto* r = v.if_contains("reason")) d.rule = std::string(r->at("rule").as_string());
      out[std::string(v.at("paymentId").as_string())].push_back(d);
    }
  }
  return out;
}

std::size_t count_verdicts(SagaWorld& world) {
  std::size_t n = 0;
  for (const auto& [id, vs] : verdicts(world)) n += vs.size();
  return n;
}

constexpr int kPayers = 6;
constexpr int kPerPayer = 10;
constexpr int kVelocityMax = 3;

TEST(SagaReplicas, ReplicasKilledMidRunKeepEveryVerdictEveryPayersLimitAndOneEffectPerPayment) {
  SagaWorld world;
  // Three approved payments per payer in any 10 minutes: a replica that forgot the window, or
  // re-judged a redelivered payment, would approve a fourth.
  world.set_antifraud_rules(R"({"velocity_max_count": 3})");
  ASSERT_NO_FATAL_FAILURE(world.start_all());
  ASSERT_NO_FATAL_FAILURE(world.start_stage("antifraud", 2));
  ASSERT_NO_FATAL_FAILURE(world.start_stage("notifier", 2));
  const std::size_t second_gateway = world.start_gateway();

  const int total = kPayers * kPerPayer;
  std::atomic<int> sent{0};
  std::atomic<bool> failed{false};
  // Two clients, one per gateway replica, each with an Idempotency-Key per payment. The second
  // gateway is killed mid-run: its client retries the same key on the first one, as a client of a
  // load balancer would, whether or not the killed replica had published it.
  auto send = [&](int first, std::size_t gateway) {
    auto preferred = world.api_client(gateway);
    auto fallback = world.api_client(0);
    bool use_fallback = false;
    for (int i = first; i < total; i += 2) {
      const int payer = 1 + i % kPayers;
      // Companies (PJ): no night limit, so the verdicts do not depend on the hour the test runs.
      const auto body = saga_payment("rep-" + std::to_string(i), "\"2.00\"", payer, 10 + payer, R"(,"payerType":"PJ")");
      const std::map<std::string, std::string> key{{"Idempotency-Key", "rep-" + std::to_string(i)}};
      int status = 0;
      for (int attempt = 0; attempt < 20 && status != 200; ++attempt) {
        try {
          status = world.post(use_fallback ? *fallback : *preferred, body, key).status;
        } catch (const std::exception&) {
          status = -1;
        }
        if (status != 200) {
          use_fallback = true;
          std::this_thread::sleep_for(100ms);
        }
      }
      if (status != 200) failed = true;
      ++sent;
      std::this_thread::sleep_for(80ms);
    }
  };
  std::thread even([&] { send(0, 0); });
  std::thread odd([&] { send(1, second_gateway); });
  // Each anti-fraud replica crashes once while payments flow; the other takes over, then it
  // comes back. A gateway and a notifier replica crash too.
  ASSERT_TRUE(eventually([&] { return sent.load() >= total / 4; }, 60s));
  world.stage("antifraud").kill_hard();
  world.gateway(second_gateway).kill_hard();
  ASSERT_TRUE(eventually([&] { return sent.load() >= total / 2; }, 60s));
  ASSERT_NO_FATAL_FAILURE(world.start_stage("antifraud"));
  world.stage("notifier").kill_hard();
  ASSERT_TRUE(eventually([&] { return sent.load() >= 3 * total / 4; }, 60s));
  world.stage("antifraud#2").kill_hard();
  ASSERT_NO_FATAL_FAILURE(world.start_stage("notifier"));
  even.join();
  odd.join();
  ASSERT_FALSE(failed.load()) << "a payment was never accepted by either gateway";
  ASSERT_NO_FATAL_FAILURE(world.start_stage("antifraud", 2));

  const std::size_t approvals = kPayers * kVelocityMax;
  auto r = world.wait_for(
      [&](const saga::SagaReport& s) {
        return s.validated + s.rejected_at_validation >= static_cast<std::size_t>(total) && s.notified >= approvals;
      },
      120s);

  // A replica in a group of its own re-reads every request from the start, with laxer rules:
  // every payment was decided before, so it must answer each exactly as it was decided.
  world.set_antifraud_rules(R"({"velocity_max_count": 1000})");
  const std::size_t before_replay = count_verdicts(world);
  ASSERT_NO_FATAL_FAILURE(world.start_stage("antifraud", 3, "antifraud-replay." + world.prefix()));
  ASSERT_TRUE(eventually([&] { return count_verdicts(world) >= before_replay + total; }, 60s))
      << "the replay replica did not answer every request";

  // It took every earlier verdict from the validated topic, as its metric says.
  HttpClient admin(world.stage("antifraud#3antifraud-replay." + world.prefix()).port());
  const auto metrics = admin.request("GET", "/metrics").body;
  const auto at = metrics.find("\npix_antifraud_verdicts_restored_total ");
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_GE(std::stod(metrics.substr(at + 39)), static_cast<double>(total));

  const auto all = verdicts(world);
  ASSERT_EQ(all.size(), static_cast<std::size_t>(total));
  std::map<std::string, int> approved_by_payer;
  for (const auto& [id, vs] : all) {
    for (const auto& v : vs) {
      EXPECT_EQ(v.status, vs.front().status) << id << ": decided " << vs.front().status << " first, then " << v.status;
      EXPECT_EQ(v.rule, vs.front().rule) << id;
    }
    if (vs.front().status == "validated") ++approved_by_payer[vs.front().payer];
  }
  for (int p = 1; p <= kPayers; ++p) {
    char name[16];
    std::snprintf(name, sizeof name, "pix-%04d", p);
    EXPECT_EQ(approved_by_payer[name], kVelocityMax) << name << ": the velocity limit did not hold across replicas";
  }

  r = world.wait_for([&](const saga::SagaReport& s) { return s.settled >= approvals && s.notified >= approvals; }, 60s);
  EXPECT_EQ(r.settled, approvals) << "a payment was settled twice, or one decided as rejected was settled";
  EXPECT_EQ(r.notified, approvals) << "a notification was lost or sent twice";
  EXPECT_TRUE(r.chain_valid) << r.chain_detail;
  ASSERT_TRUE(r.total_balance);
  EXPECT_EQ(*r.total_balance, 0) << "money was created or destroyed";
  ledger::Ledger ledger(world.ledger_db());
  EXPECT_TRUE(eventually([&] { return ledger.payment_count() == static_cast<std::size_t>(total); }, 30s))
      << ledger.payment_count() << " payments decided in the ledger, expected every one of " << total;
  for (int p = 1; p <= kPayers; ++p) {
    char name[16];
    std::snprintf(name, sizeof name, "pix-%04d", p);
    EXPECT_EQ(ledger.balance(name), kSagaPopulationCents - kVelocityMax * 200) << name;
  }
}

TEST(SagaReplicas, AnIdempotencyKeyReusedAcrossGatewayReplicasAndARestartMovesMoneyOnce) {
  SagaWorld world;
  ASSERT_NO_FATAL_FAILURE(world.start_all());
  const std::size_t second = world.start_gateway();
  auto gw0 = world.api_client(0);
  auto gw1 = world.api_client(second);
  const std::map<std::string, std::string> key{{"Idempotency-Key", "order-" + world.prefix()}};
  const std::string a = saga_payment("idem-a", "\"5.00\"", 1, 2);
  const std::string b = saga_payment("idem-b", "\"9.00\"", 1, 3);  // same payer: anti-fraud sees the reuse
  const std::string c = saga_payment("idem-c", "\"7.00\"", 4, 3);  // another payer: settlement does

  const auto first = world.post(*gw0, a, key);
  ASSERT_EQ(first.status, 200) << first.body;
  const std::string event_id(json::parse(first.body).at("eventId").as_string());
  // The other replica cannot know the key: it publishes under the same event id.
  const auto other = world.post(*gw1, b, key);
  ASSERT_EQ(other.status, 200) << other.body;
  EXPECT_EQ(json::parse(other.body).at("eventId").as_string(), event_id);
  // Where a replica can know, it refuses.
  EXPECT_EQ(world.post(*gw1, a, key).status, 422);
  // The ledger keeps the first decision to reach it; across partitions that is arrival order, not
  // posting order: the first payment settles before another payer's body is sent under the key.
  world.wait_for([](const saga::SagaReport& s) { return s.settled >= 1; }, 60s);
  // After a restart the gateway has forgotten the key, and derives the same event id again.
  world.restart_gateway(0);
  gw0 = world.api_client(0);
  const auto after = world.post(*gw0, c, key);
  ASSERT_EQ(after.status, 200) << after.body;
  EXPECT_EQ(json::parse(after.body).at("eventId").as_string(), event_id);
  // The same body again on the restarted replica: one payment effect, whatever is republished.
  const auto again = world.post(*world.api_client(second), b, key);
  EXPECT_EQ(again.status, 200) << again.body;

  const auto r = world.wait_for(
      [](const saga::SagaReport& s) { return s.settled >= 1 && s.notified >= 1 && s.notified_rejections >= 2; }, 90s);
  EXPECT_EQ(r.settled, 1u);
  EXPECT_EQ(r.notified, 1u);
  EXPECT_EQ(r.notified_rejections, 2u) << "each other body under the key is notified as a duplicate, once";
  EXPECT_GE(r.rejected_by_reason.at("AM05 duplicate"), 2u);
  EXPECT_TRUE(r.chain_valid) << r.chain_detail;
  ASSERT_TRUE(r.total_balance);
  EXPECT_EQ(*r.total_balance, 0);
  ledger::Ledger ledger(world.ledger_db());
  EXPECT_EQ(ledger.balance("pix-0001"), kSagaPopulationCents - 500) << "the first payment, once";
  EXPECT_EQ(ledger.balance("pix-0002"), kSagaPopulationCents + 500);
  EXPECT_EQ(ledger.balance("pix-0003"), kSagaPopulationCents) << "a reused key's other body moved money";
  EXPECT_EQ(ledger.balance("pix-0004"), kSagaPopulationCents);
}

}  // namespace
}  // namespace pix::test
