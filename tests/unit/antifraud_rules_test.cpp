#include "pix/antifraud/rules.hpp"

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

#include <string>

#include "pix/domain/end_to_end_id.hpp"

namespace pix::antifraud {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;
using Clock = RuleEngine::Clock;

// A time of day in Sao Paulo (UTC-3) on 2026-06-15.
Clock::time_point sao_paulo(int hour, int minute) {
  return sys_days{2026y / June / 15} + hours(hour + 3) + minutes(minute);
}

const Clock::time_point kNoon = sao_paulo(12, 0);

PaymentRequest request_from(std::string_view json, std::string event_id, Clock::time_point when = kNoon) {
  auto r = payment_request_from_json(boost::json::parse(json).as_object(), std::move(event_id), when);
  if (const auto* error = std::get_if<std::string>(&r)) {
    ADD_FAILURE() << json << ": " << *error;
    return {};
  }
  return std::get<PaymentRequest>(std::move(r));
}

// A payment of `amount` (JSON text) from `payer` to bob.
PaymentRequest payment(std::string event_id, std::string_view amount, std::string_view payer = "alice",
                       Clock::time_point when = kNoon) {
  const std::string json = R"({"transactionId":"t-)" + event_id + R"(","amount":)" + std::string(amount) +
                           R"(,"payer":")" + std::string(payer) + R"(","receiver":"bob"})";
  return request_from(json, std::move(event_id), when);
}

void expect_rejected(const Decision& d, std::string_view code, std::string_view rule) {
  EXPECT_FALSE(d.approved);
  EXPECT_EQ(d.code, code);
  EXPECT_EQ(d.rule, rule);
  EXPECT_FALSE(d.message.empty());
}

void expect_approved(const Decision& d) {
  EXPECT_TRUE(d.approved) << d.code << " " << d.rule << ": " << d.message;
  EXPECT_EQ(d.code, "");
  EXPECT_EQ(d.rule, "");
}

// --- the rules, one by one ---

TEST(AntifraudRules, ApprovesTheSeedPayment) {
  RuleEngine engine({});
  const PaymentRequest r =
      request_from(R"({"transactionId":"12345","amount":100,"payer":"alice","receiver":"bob"})", "evt-1");
  const Decision d = engine.evaluate(r, kNoon);
  expect_approved(d);
  EXPECT_EQ(d.amount_cents, 10000);
  EXPECT_TRUE(domain::is_valid_end_to_end_id(d.end_to_end_id)) << d.end_to_end_id;
  EXPECT_EQ(d.end_to_end_id.substr(0, 9), "E99999999");
}

TEST(AntifraudRules, UnreadableAmountIsEd05) {
  RuleEngine engine({});
  const Decision d = engine.evaluate(payment("e1", "10.505"), kNoon);
  expect_rejected(d, "ED05", "amount_format");
  EXPECT_EQ(d.message, "invalid amount: more than 2 decimal places");
  EXPECT_EQ(d.amount_cents, 0);
  expect_rejected(engine.evaluate(payment("e2", R"("10.5")"), kNoon), "ED05", "amount_format");
  expect_rejected(engine.evaluate(payment("e3", R"("abc")"), kNoon), "ED05", "amount_format");
  expect_rejected(engine.evaluate(payment("e4", "true"), kNoon), "ED05", "amount_format");
  expect_rejected(
      engine.evaluate(request_from(R"({"transactionId":"1","payer":"alice","receiver":"bob"})", "e5"), kNoon), "ED05",
      "amount_format");
  expect_approved(engine.evaluate(payment("e6", "10.5"), kNoon));
}

TEST(AntifraudRules, ZeroOrNegativeAmountIsAm01) {
  RuleEngine engine({});
  expect_rejected(engine.evaluate(payment("e1", "0"), kNoon), "AM01", "positive_amount");
  expect_rejected(engine.evaluate(payment("e2", R"("0.00")"), kNoon), "AM01", "positive_amount");
  expect_rejected(engine.evaluate(payment("e3", "-5"), kNoon), "AM01", "positive_amount");
  expect_approved(engine.evaluate(payment("e4", "0.01"), kNoon));
}

TEST(AntifraudRules, BlockedAccountsAndKeysAreAc06) {
  RulesConfig config;
  config.blocked = {"mallory", "52998224725", "+5511987654321"};
  RuleEngine engine(config);
  expect_rejected(engine.evaluate(payment("e1", "10", "mallory"), kNoon), "AC06", "blocked");
  expect_rejected(
      engine.evaluate(request_from(R"({"transactionId":"1","amount":10,"payer":"alice","receiver":"mallory"})", "e2"),
                      kNoon),
      "AC06", "blocked");
  // The CPF is listed bare and sent formatted: still the same key.
  const Decision by_key = engine.evaluate(
      request_from(
          R"({"transactionId":"1","amount":10,"payer":"carol","receiver":"dave","receiverKey":"529.982.247-25"})",
          "e3"),
      kNoon);
  expect_rejected(by_key, "AC06", "blocked");
  EXPECT_EQ(by_key.message, "receiverKey '529.982.247-25' is blocked");
  expect_rejected(
      engine.evaluate(
          request_from(
              R"({"transactionId":"1","amount":10,"payer":"carol","receiver":"dave","payerKey":"+5511987654321"})",
              "e4"),
          kNoon),
      "AC06", "blocked");
  expect_approved(engine.evaluate(payment("e5", "10", "carol"), kNoon));
}

TEST(AntifraudRules, FormattedBlockedEntryMatchesBareKey) {
  RulesConfig config;
  config.blocked = {"11.444.777/0001-61"};
  RuleEngine engine(config);
  expect_rejected(
      engine.evaluate(
          request_from(R"({"transactionId":"1","amount":10,"payer":"a","receiver":"b","receiverKey":"11444777000161"})",
                       "e1"),
          kNoon),
      "AC06", "blocked");
}

TEST(AntifraudRules, InvalidKeysAreAc03) {
  RuleEngine engine({});
  const Decision payer = engine.evaluate(
      request_from(R"({"transactionId":"1","amount":10,"payer":"a","receiver":"b","payerKey":"529.982.247-24"})", "e1"),
      kNoon);
  expect_rejected(payer, "AC03", "payer_key");
  EXPECT_EQ(payer.message, "payerKey: cpf check digits do not match");
  expect_rejected(
      engine.evaluate(
          request_from(R"({"transactionId":"1","amount":10,"payer":"a","receiver":"b","receiverKey":"+551187654321"})",
                       "e2"),
          kNoon),
      "AC03", "receiver_key");
  expect_approved(engine.evaluate(
      request_from(
          R"({"transactionId":"1","amount":10,"payer":"a","receiver":"b","payerKey":"12.ABC.345/01DE-35","receiverKey":"bob@example.com"})",
          "e3"),
      kNoon));
}

TEST(AntifraudRules, PerTransactionLimitIsAm02) {
  RuleEngine engine({});
  expect_approved(engine.evaluate(payment("e1", R"("15000.00")", "alice"), kNoon));
  const Decision d = engine.evaluate(payment("e2", R"("15000.01")", "carol"), kNoon);
  expect_rejected(d, "AM02", "per_transaction_limit");
  EXPECT_EQ(d.message, "amount 15000.01 is over the per-transaction limit of 15000.00");
  EXPECT_EQ(d.amount_cents, 1'500'001);
}

TEST(AntifraudRules, NightLimitForIndividualsFrom20To6SaoPauloTime) {
  RuleEngine engine({});
  const auto at = [&](std::string id, int h, int m, std::string_view amount = R"("1000.01")") {
    // A payer per call, so that velocity plays no part.
    return engine.evaluate(payment(id, amount, "payer-" + id, sao_paulo(h, m)), sao_paulo(h, m));
  };
  expect_approved(at("e1", 19, 59));
  expect_rejected(at("e2", 20, 0), "AM02", "night_limit");
  expect_rejected(at("e3", 23, 30), "AM02", "night_limit");
  expect_rejected(at("e4", 0, 0), "AM02", "night_limit");
  expect_rejected(at("e5", 5, 59), "AM02", "night_limit");
  expect_approved(at("e6", 6, 0));
  expect_approved(at("e7", 23, 30, R"("1000.00")"));
}

TEST(AntifraudRules, CompaniesHaveNoNightLimit) {
  RuleEngine engine({});
  const auto late = sao_paulo(23, 0);
  expect_approved(engine.evaluate(
      request_from(R"({"transactionId":"1","amount":5000,"payer":"acme","receiver":"b","payerType":"PJ"})", "e1", late),
      late));
  expect_rejected(
      engine.evaluate(
          request_from(R"({"transactionId":"2","amount":5000,"payer":"ana","receiver":"b","payerType":"PF"})", "e2",
                       late),
          late),
      "AM02", "night_limit");
}

TEST(AntifraudRules, NightIsJudgedWhenThePayerAskedNotWhenTheEventIsProcessed) {
  RuleEngine engine({});
  // Asked at 19:59, processed at 20:30 after a consumer backlog: the day limit applied.
  expect_approved(engine.evaluate(payment("e1", "5000", "ana", sao_paulo(19, 59)), sao_paulo(20, 30)));
  // No event time: the consumer's clock decides (the epoch itself was 21:00 in Sao Paulo: night).
  expect_approved(engine.evaluate(payment("e2", "5000", "bia", Clock::time_point{}), kNoon));
  // Kafka's "no timestamp" (-1 ms) is no time either, not a payment at 20:59 on 31 Dec 1969.
  expect_approved(engine.evaluate(payment("e3", "5000", "dan", Clock::time_point(-1ms)), kNoon));
  // An event time in the future (the sender's clock two minutes ahead) is not trusted: at 05:58
  // it is still night, whatever the sender says.
  expect_rejected(engine.evaluate(payment("e4", "5000", "cid", sao_paulo(6, 0)), sao_paulo(5, 58)), "AM02",
                  "night_limit");
}

TEST(AntifraudRules, NightWindowFollowsTheConfiguredHours) {
  RulesConfig config;
  config.night_start_hour = 22;
  RuleEngine engine(config);
  expect_approved(engine.evaluate(payment("e1", "5000", "ana", sao_paulo(21, 59)), sao_paulo(21, 59)));
  expect_rejected(engine.evaluate(payment("e2", "5000", "bia", sao_paulo(22, 0)), sao_paulo(22, 0)), "AM02",
                  "night_limit");
}

TEST(AntifraudRules, VelocityCountWithinTheWindow) {
  RulesConfig config;
  config.velocity_max_count = 3;
  RuleEngine engine(config);
  const auto t0 = kNoon;
  const auto pay = [&](std::string id, Clock::time_point t, std::string_view payer = "alice") {
    return engine.evaluate(payment(id, "10", payer, t), t);
  };
  expect_approved(pay("e1", t0));
  expect_approved(pay("e2", t0 + 1min));
  expect_approved(pay("e3", t0 + 2min));
  const Decision fourth = pay("e4", t0 + 3min);
  expect_rejected(fourth, "AM02", "velocity_count");
  EXPECT_EQ(fourth.message, "payer already has 3 payments in the last 600 s (limit 3)");
  expect_approved(pay("e5", t0 + 3min, "bruno"));  // per payer
  // Ten minutes after the first payment it has left the window: one slot is free again.
  expect_approved(pay("e6", t0 + 10min));
  expect_rejected(pay("e7", t0 + 10min + 30s), "AM02", "velocity_count");
  expect_approved(pay("e8", t0 + 12min));
}

TEST(AntifraudRules, VelocitySumWithinTheWindow) {
  RulesConfig config;
  config.velocity_max_sum_cents = 10'000;  // R$ 100.00
  RuleEngine engine(config);
  const auto t0 = kNoon;
  expect_approved(engine.evaluate(payment("e1", "60", "alice", t0), t0));
  const Decision over = engine.evaluate(payment("e2", "50", "alice", t0 + 1min), t0 + 1min);
  expect_rejected(over, "AM02", "velocity_sum");
  EXPECT_EQ(over.message, "payments in the last 600 s would total 110.00, over the limit of 100.00");
  expect_approved(engine.evaluate(payment("e3", "40", "alice", t0 + 2min), t0 + 2min));  // exactly 100.00
  expect_rejected(engine.evaluate(payment("e4", "0.01", "alice", t0 + 9min), t0 + 9min), "AM02", "velocity_sum");
  // The 60 has left the window; the 40 of t0+2min is still in it.
  expect_approved(engine.evaluate(payment("e5", "60", "alice", t0 + 10min), t0 + 10min));
  expect_rejected(engine.evaluate(payment("e6", "0.01", "alice", t0 + 11min), t0 + 11min), "AM02", "velocity_sum");
}

TEST(AntifraudRules, RejectedPaymentsDoNotCountTowardVelocity) {
  RulesConfig config;
  config.velocity_max_count = 2;
  RuleEngine engine(config);
  for (int i = 0; i < 5; ++i) {
    expect_rejected(engine.evaluate(payment("big" + std::to_string(i), "20000"), kNoon), "AM02",
                    "per_transaction_limit");
  }
  expect_approved(engine.evaluate(payment("e1", "10"), kNoon));
  expect_approved(engine.evaluate(payment("e2", "10"), kNoon));
  expect_rejected(engine.evaluate(payment("e3", "10"), kNoon), "AM02", "velocity_count");
}

TEST(AntifraudRules, RulesApplyInTheDocumentedOrder) {
  RulesConfig config;
  config.blocked = {"mallory"};
  RuleEngine engine(config);
  const auto night = sao_paulo(23, 0);
  // Blocked payer with an invalid key, over both limits, at night: blocked wins over the rest.
  expect_rejected(
      engine.evaluate(
          request_from(R"({"transactionId":"1","amount":20000,"payer":"mallory","receiver":"b","payerKey":"x"})", "e1",
                       night),
          night),
      "AC06", "blocked");
  // An invalid key comes before the limits.
  expect_rejected(
      engine.evaluate(request_from(R"({"transactionId":"1","amount":20000,"payer":"a","receiver":"b","payerKey":"x"})",
                                   "e2", night),
                      night),
      "AC03", "payer_key");
  // Per-transaction before night.
  expect_rejected(engine.evaluate(payment("e3", "20000", "a", night), night), "AM02", "per_transaction_limit");
  // A malformed amount before anything else.
  expect_rejected(engine.evaluate(payment("e4", "1.001", "mallory", night), night), "ED05", "amount_format");
}

TEST(AntifraudRules, PayingYourselfIsAllowed) {
  RuleEngine engine({});
  expect_approved(engine.evaluate(
      request_from(R"({"transactionId":"1","amount":10,"payer":"alice","receiver":"alice"})", "e1"), kNoon));
}

// --- redelivery and identity ---

TEST(AntifraudRedelivery, SameEventGetsTheSameDecisionAndCountsOnce) {
  RulesConfig config;
  config.velocity_max_count = 1;
  RuleEngine engine(config);
  const Decision first = engine.evaluate(payment("evt-1", "10"), kNoon);
  expect_approved(first);
  // Redelivered a minute later: the same answer, not a velocity rejection of itself.
  const Decision again = engine.evaluate(payment("evt-1", "10"), kNoon + 1min);
  EXPECT_EQ(again, first);
  // The window holds one payment, not two.
  expect_rejected(engine.evaluate(payment("evt-2", "10"), kNoon + 2min), "AM02", "velocity_count");
}

TEST(AntifraudRedelivery, RejectionsAreRememberedToo) {
  RuleEngine engine({});
  const auto night = sao_paulo(22, 0);
  const Decision first = engine.evaluate(payment("evt-1", "5000", "ana", night), night);
  expect_rejected(first, "AM02", "night_limit");
  EXPECT_EQ(engine.evaluate(payment("evt-1", "5000", "ana", night), night + 1h), first);
}

TEST(AntifraudRedelivery, OnlyTheLastDedupeCapacityEventsAreRemembered) {
  RulesConfig config;
  config.dedupe_capacity = 2;
  config.velocity_max_count = 3;
  RuleEngine engine(config);
  expect_approved(engine.evaluate(payment("evt-1", "10"), kNoon));
  expect_approved(engine.evaluate(payment("evt-2", "10"), kNoon));
  expect_approved(engine.evaluate(payment("evt-3", "10"), kNoon));
  EXPECT_EQ(engine.remembered_events(), 2u);
  expect_approved(engine.evaluate(payment("evt-3", "10"), kNoon));  // still remembered
  // evt-1 was forgotten: it is judged afresh and now meets a full window.
  expect_rejected(engine.evaluate(payment("evt-1", "10"), kNoon), "AM02", "velocity_count");
}

TEST(AntifraudEndToEnd, KeepsAValidIdFromTheRequest) {
  RuleEngine engine({});
  const Decision d = engine.evaluate(
      request_from(
          R"({"transactionId":"1","amount":10,"payer":"a","receiver":"b","endToEndId":"E00038166202606151500abcDEF12345"})",
          "e1"),
      kNoon);
  EXPECT_EQ(d.end_to_end_id, "E00038166202606151500abcDEF12345");
}

TEST(AntifraudEndToEnd, ReplacesAnInvalidIdAndMakesTheSameOneForTheSameEvent) {
  RuleEngine engine({});
  RuleEngine other({});
  const PaymentRequest r = request_from(
      R"({"transactionId":"1","amount":10,"payer":"a","receiver":"b","endToEndId":"E00038166202613151500abcDEF12345"})",
      "evt-42");
  const Decision d = engine.evaluate(r, kNoon);
  EXPECT_NE(d.end_to_end_id, "E00038166202613151500abcDEF12345");
  EXPECT_TRUE(domain::is_valid_end_to_end_id(d.end_to_end_id)) << d.end_to_end_id;
  // The event time in UTC (12:00 in Sao Paulo is 15:00 UTC).
  EXPECT_EQ(d.end_to_end_id.substr(0, 21), "E99999999202606151500");
  // Another consumer (after a rebalance) makes the same id for the same event.
  EXPECT_EQ(other.evaluate(r, kNoon + 5min).end_to_end_id, d.end_to_end_id);
  EXPECT_NE(engine.evaluate(payment("evt-43", "10"), kNoon).end_to_end_id, d.end_to_end_id);
}

TEST(AntifraudEndToEnd, UsesTheConfiguredIspb) {
  RulesConfig config;
  config.ispb = "00038166";
  RuleEngine engine(config);
  EXPECT_EQ(engine.evaluate(payment("e1", "10"), kNoon).end_to_end_id.substr(0, 9), "E00038166");
}

TEST(AntifraudMemory, IdlePayersAreForgottenAfterTheWindow) {
  RuleEngine engine({});
  expect_approved(engine.evaluate(payment("e1", "10", "alice", kNoon), kNoon));
  expect_approved(engine.evaluate(payment("e2", "10", "bruno", kNoon + 1min), kNoon + 1min));
  EXPECT_EQ(engine.tracked_payers(), 2u);
  expect_approved(engine.evaluate(payment("e3", "10", "carla", kNoon + 30min), kNoon + 30min));
  EXPECT_EQ(engine.tracked_payers(), 1u);
}

// --- extracting the request ---

TEST(AntifraudRequest, ExtractsEveryField) {
  const auto when = kNoon;
  auto r = payment_request_from_json(
      boost::json::parse(
          R"({"transactionId":12345,"amount":"12.34","payer":"acme","receiver":"bob","payerKey":"11444777000161",)"
          R"("receiverKey":"bob@example.com","payerType":"PJ","endToEndId":"E00038166202606151500abcDEF12345",)"
          R"("description":"lunch"})")
          .as_object(),
      "evt-9", when);
  ASSERT_TRUE(std::holds_alternative<PaymentRequest>(r)) << std::get<std::string>(r);
  const auto& p = std::get<PaymentRequest>(r);
  EXPECT_EQ(p.event_id, "evt-9");
  EXPECT_EQ(p.transaction_id, "12345");
  EXPECT_EQ(p.amount.cents, 1234);
  EXPECT_EQ(p.payer, "acme");
  EXPECT_EQ(p.receiver, "bob");
  EXPECT_EQ(p.payer_key, "11444777000161");
  EXPECT_EQ(p.receiver_key, "bob@example.com");
  EXPECT_EQ(p.payer_type, PayerType::kCompany);
  EXPECT_EQ(p.end_to_end_id, "E00038166202606151500abcDEF12345");
  EXPECT_EQ(p.event_time, when);
}

TEST(AntifraudRequest, OptionalFieldsDefault) {
  const PaymentRequest p = request_from(
      R"({"transactionId":"1","amount":1,"payer":"a","receiver":"b","payerKey":null,"payerType":null})", "e");
  EXPECT_EQ(p.payer_type, PayerType::kIndividual);
  EXPECT_FALSE(p.payer_key.has_value());
  EXPECT_FALSE(p.receiver_key.has_value());
  EXPECT_FALSE(p.end_to_end_id.has_value());
}

TEST(AntifraudRequest, ABadAmountIsKeptForTheEngineToReject) {
  const PaymentRequest p = request_from(R"({"transactionId":"1","amount":"lots","payer":"a","receiver":"b"})", "e");
  EXPECT_FALSE(p.amount);
  EXPECT_EQ(p.amount.reason, domain::AmountError::kNotAnAmount);
}

TEST(AntifraudRequest, MalformedEventsNameTheField) {
  const auto error = [](std::string_view json) {
    auto r = payment_request_from_json(boost::json::parse(json).as_object(), "e", kNoon);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : std::string("(no error)");
  };
  EXPECT_EQ(error(R"({"amount":1,"payer":"a","receiver":"b"})"), "transactionId is required");
  EXPECT_EQ(error(R"({"transactionId":"","amount":1,"payer":"a","receiver":"b"})"),
            "transactionId must be a non-empty string or an integer");
  EXPECT_EQ(error(R"({"transactionId":"1","amount":1,"receiver":"b"})"), "payer is required");
  EXPECT_EQ(error(R"({"transactionId":"1","amount":1,"payer":7,"receiver":"b"})"), "payer must be a string");
  EXPECT_EQ(error(R"({"transactionId":"1","amount":1,"payer":"a","receiver":""})"), "receiver must not be empty");
  EXPECT_EQ(error(R"({"transactionId":"1","amount":1,"payer":"a","receiver":"b","payerKey":52998224725})"),
            "payerKey must be a string");
  EXPECT_EQ(error(R"({"transactionId":"1","amount":1,"payer":"a","receiver":"b","payerType":"pj"})"),
            R"(payerType must be "PF" or "PJ")");
}

// --- the rules file ---

RulesConfig config_ok(std::string_view json) {
  const RulesConfigParse parsed = load_rules_config(json);
  EXPECT_TRUE(parsed) << json << ": " << parsed.error;
  return parsed.config.value_or(RulesConfig{});
}

std::string config_error(std::string_view json) {
  const RulesConfigParse parsed = load_rules_config(json);
  EXPECT_FALSE(parsed) << json << " loaded, but should not have";
  return parsed.error;
}

TEST(AntifraudConfig, EmptyFileKeepsTheDefaults) {
  const RulesConfig c = config_ok("{}");
  EXPECT_EQ(c.per_transaction_limit_cents, 1'500'000);
  EXPECT_EQ(c.night_limit_cents, 100'000);
  EXPECT_EQ(c.night_start_hour, 20);
  EXPECT_EQ(c.night_end_hour, 6);
  EXPECT_EQ(c.utc_offset_minutes, -180);
  EXPECT_EQ(c.velocity_window, 600s);
  EXPECT_EQ(c.velocity_max_count, 20u);
  EXPECT_EQ(c.velocity_max_sum_cents, 2'000'000);
  EXPECT_TRUE(c.blocked.empty());
  EXPECT_EQ(c.dedupe_capacity, 100'000u);
  EXPECT_EQ(c.ispb, domain::kDemoIspb);
}

TEST(AntifraudConfig, ReadsEveryField) {
  const RulesConfig c = config_ok(R"({
    "per_transaction_limit": "5000.00", "night_limit": 500, "velocity_max_sum": 1234.56,
    "night_start_hour": 22, "night_end_hour": 5, "utc_offset_minutes": -240,
    "velocity_window_seconds": 60, "velocity_max_count": 5,
    "blocked": ["mallory", "529.982.247-25"], "dedupe_capacity": 10, "ispb": "00038166"})");
  EXPECT_EQ(c.per_transaction_limit_cents, 500'000);
  EXPECT_EQ(c.night_limit_cents, 50'000);
  EXPECT_EQ(c.velocity_max_sum_cents, 123'456);
  EXPECT_EQ(c.night_start_hour, 22);
  EXPECT_EQ(c.night_end_hour, 5);
  EXPECT_EQ(c.utc_offset_minutes, -240);
  EXPECT_EQ(c.velocity_window, 60s);
  EXPECT_EQ(c.velocity_max_count, 5u);
  EXPECT_EQ(c.blocked, (std::set<std::string, std::less<>>{"mallory", "529.982.247-25"}));
  EXPECT_EQ(c.dedupe_capacity, 10u);
  EXPECT_EQ(c.ispb, "00038166");
}

TEST(AntifraudConfig, LoadedLimitsAreTheOnesTheEngineApplies) {
  RuleEngine engine(config_ok(R"({"per_transaction_limit": "50.00", "blocked": ["529.982.247-25"]})"));
  expect_approved(engine.evaluate(payment("e1", "50"), kNoon));
  expect_rejected(engine.evaluate(payment("e2", "50.01"), kNoon), "AM02", "per_transaction_limit");
  expect_rejected(
      engine.evaluate(
          request_from(R"({"transactionId":"1","amount":1,"payer":"a","receiver":"b","receiverKey":"52998224725"})",
                       "e3"),
          kNoon),
      "AC06", "blocked");
}

TEST(AntifraudConfig, UnknownFieldIsAnError) {
  const std::string error = config_error(R"({"nigth_limit": "500.00"})");
  EXPECT_NE(error.find("unknown field 'nigth_limit'"), std::string::npos) << error;
  EXPECT_NE(error.find("night_limit"), std::string::npos) << error;
}

TEST(AntifraudConfig, BadValuesNameTheField) {
  EXPECT_EQ(config_error(R"({"night_limit": "10.505"})"), "night_limit: more than 2 decimal places");
  EXPECT_EQ(config_error(R"({"per_transaction_limit": 0})"), "per_transaction_limit: must be more than 0.00");
  EXPECT_EQ(config_error(R"({"velocity_max_sum": "-1.00"})"), "velocity_max_sum: negative");
  EXPECT_EQ(config_error(R"({"night_start_hour": 24})"), "night_start_hour: must be from 0 to 23");
  EXPECT_EQ(config_error(R"({"night_end_hour": 6.5})"), "night_end_hour: must be an integer");
  EXPECT_EQ(config_error(R"({"velocity_max_count": 0})"), "velocity_max_count: must be from 1 to 1000000");
  EXPECT_EQ(config_error(R"({"velocity_window_seconds": "600"})"), "velocity_window_seconds: must be an integer");
  EXPECT_EQ(config_error(R"({"blocked": "mallory"})"), "blocked: must be an array of strings");
  EXPECT_EQ(config_error(R"({"blocked": ["a", 1]})"), "blocked[1]: must be a non-empty string");
  EXPECT_EQ(config_error(R"({"ispb": "123"})"), "ispb: must be 8 characters [0-9A-Z]");
}

TEST(AntifraudConfig, NotAJsonObjectIsAnError) {
  EXPECT_NE(config_error(R"({"night_limit": )").find("not valid JSON"), std::string::npos);
  EXPECT_EQ(config_error("[1, 2]"), "rules file must be a JSON object");
}

}  // namespace
}  // namespace pix::antifraud
