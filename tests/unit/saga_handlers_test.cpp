// What each saga stage does with one event, without brokers: the handlers are pure of I/O except
// for their own stores (temporary SQLite files here).
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "pix/saga/handlers.hpp"
#include "pix/util/random_id.hpp"
#include "temp_db_file.hpp"

namespace pix::saga {
namespace {

namespace json = boost::json;

constexpr const char* kParentTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

kafka::ConsumedRecord record(const std::string& topic, const std::string& value, const std::string& id = "evt-1") {
  kafka::ConsumedRecord r;
  r.topic = topic;
  r.partition = 0;
  r.offset = 7;
  r.key = "tx-1";
  r.value = value;
  r.timestamp_ms = 1764347060123;  // 2025-11-28T16:24:20Z: 13:24 in Sao Paulo, daytime
  r.headers = {{"ce_id", id}, {"traceparent", kParentTrace}};
  return r;
}

json::object payload_of(const Output& o) {
  return json::parse(o.event.payload).as_object();
}

std::string header(const broker::OutboundEvent& ev, const std::string& name) {
  for (const auto& h : ev.headers) {
    if (h.name == name) return h.value;
  }
  return "<missing>";
}

using TempFile = test::TempDbFile;

TEST(SagaAntifraud, ApprovedPaymentBecomesValidatedWithDerivedIdAndTrace) {
  AntifraudHandler h{antifraud::RulesConfig{}};
  auto r =
      h(record("pix.payment.requested", R"({"transactionId":"12345","amount":100,"payer":"alice","receiver":"bob"})"));
  ASSERT_TRUE(r.poison_reason.empty());
  ASSERT_EQ(r.outputs.size(), 1u);
  const auto& ev = r.outputs[0].event;
  EXPECT_EQ(r.outputs[0].sink, Sink::kKafka);
  EXPECT_EQ(ev.topic, "pix.payment.validated");
  EXPECT_EQ(ev.key, "tx-1");
  EXPECT_EQ(ev.id, "evt-1:validated");
  EXPECT_EQ(header(ev, "ce_id"), "evt-1:validated");
  EXPECT_EQ(header(ev, "traceparent").substr(3, 32), "4bf92f3577b34da6a3ce929d0e0e4736");
  const auto v = payload_of(r.outputs[0]);
  EXPECT_EQ(v.at("status").as_string(), "validated");
  EXPECT_EQ(v.at("paymentId").as_string(), "evt-1");
  EXPECT_EQ(v.at("amountCents").as_int64(), 10000);
  EXPECT_EQ(v.at("valor").as_string(), "100.00");
  EXPECT_EQ(v.at("endToEndId").as_string().size(), 32u);
  EXPECT_FALSE(v.contains("reason"));
}

TEST(SagaAntifraud, RejectionCarriesTheReasonCode) {
  AntifraudHandler h{antifraud::RulesConfig{}};
  auto r = h(
      record("pix.payment.requested", R"({"transactionId":"1","amount":"20000.00","payer":"alice","receiver":"bob"})"));
  ASSERT_EQ(r.outputs.size(), 1u);
  const auto v = payload_of(r.outputs[0]);
  EXPECT_EQ(v.at("status").as_string(), "rejected");
  EXPECT_EQ(v.at("reason").at("code").as_string(), "AM02");
  EXPECT_EQ(v.at("reason").at("rule").as_string(), "per_transaction_limit");
}

TEST(SagaAntifraud, UnjudgeableEventsArePoison) {
  AntifraudHandler h{antifraud::RulesConfig{}};
  EXPECT_FALSE(h(record("pix.payment.requested", "not json")).poison_reason.empty());
  EXPECT_FALSE(h(record("pix.payment.requested", "[1]")).poison_reason.empty());
  EXPECT_FALSE(h(record("pix.payment.requested", R"({"transactionId":"1","amount":1})")).poison_reason.empty());
}

TEST(SagaSettlement, ValidatedPaymentIsPostedOnceWhateverIsRedelivered) {
  TempFile db("ledger");
  auto ledger = std::make_shared<ledger::Ledger>(db.path());
  ledger->fund({{"alice", 10000}});
  SettlementHandler h(ledger);
  const auto in = record("pix.payment.validated",
                         R"({"paymentId":"evt-1","transactionId":"12345","status":"validated","payer":"alice",)"
                         R"("receiver":"bob","amountCents":2550,"endToEndId":"E9999999920251128162411111111111"})",
                         "evt-1:validated");
  auto first = h(in);
  auto again = h(in);
  ASSERT_EQ(first.outputs.size(), 1u);
  ASSERT_EQ(again.outputs.size(), 1u);
  EXPECT_EQ(first.outputs[0].event.id, "evt-1:settled");
  EXPECT_EQ(again.outputs[0].event.id, "evt-1:settled");
  EXPECT_EQ(payload_of(first.outputs[0]).at("status").as_string(), "settled");
  EXPECT_EQ(payload_of(again.outputs[0]).at("status").as_string(), "settled");
  EXPECT_EQ(ledger->balance("alice"), 10000 - 2550);
  EXPECT_EQ(ledger->balance("bob"), 2550);
  EXPECT_EQ(ledger->payment_count(), 1u);
  EXPECT_EQ(ledger->total_balance(), 0);
}

TEST(SagaSettlement, OverdraftIsRejectedWithAm04AndRejectedValidationsAreSkipped) {
  TempFile db("ledger");
  auto ledger = std::make_shared<ledger::Ledger>(db.path());
  SettlementHandler h(ledger);
  auto r = h(record("pix.payment.validated",
                    R"({"paymentId":"p2","status":"validated","payer":"nobody","receiver":"bob","amountCents":100})"));
  ASSERT_EQ(r.outputs.size(), 1u);
  const auto v = payload_of(r.outputs[0]);
  EXPECT_EQ(v.at("status").as_string(), "rejected");
  EXPECT_EQ(v.at("reason").at("code").as_string(), "AM04");
  EXPECT_EQ(ledger->balance("bob").value_or(0), 0);

  auto skipped = h(record("pix.payment.validated", R"({"paymentId":"p3","status":"rejected","payer":"a"})"));
  EXPECT_TRUE(skipped.outputs.empty());
  EXPECT_TRUE(skipped.poison_reason.empty());
  // The seed simulator's bare validated event is not a payment: poison, not a crash.
  EXPECT_FALSE(
      h(record("pix.payment.validated", R"({"transactionId":"tx123","status":"validated"})")).poison_reason.empty());
}

TEST(SagaNotifier, SettledPaymentBecomesAWebhookShapedAmqpEvent) {
  NotifierHandler h;
  auto r = h(record("pix.payment.settled",
                    R"({"paymentId":"evt-1","transactionId":"tx-12_345","status":"settled","valor":"25.50",)"
                    R"("endToEndId":"E9999999920251128162411111111111","settledAt":"2025-11-28T16:24:21.000Z",)"
                    R"("receiverKey":"fulana@example.com"})"));
  ASSERT_EQ(r.outputs.size(), 1u);
  const auto& out = r.outputs[0];
  EXPECT_EQ(out.sink, Sink::kRabbit);
  EXPECT_EQ(out.event.topic, "pix.notification.sent");
  EXPECT_EQ(out.event.id, "evt-1:notified");
  EXPECT_EQ(header(out.event, "cloudEvents_id"), "evt-1:notified");
  const auto v = payload_of(out);
  EXPECT_EQ(v.at("transactionId").as_string(), "tx-12_345");
  EXPECT_EQ(v.at("status").as_string(), "notified");
  EXPECT_EQ(v.at("txid").as_string(), "tx12345");
  EXPECT_EQ(v.at("valor").as_string(), "25.50");
  EXPECT_EQ(v.at("horario").as_string(), "2025-11-28T16:24:21.000Z");
  EXPECT_EQ(v.at("chave").as_string(), "fulana@example.com");
  EXPECT_EQ(v.at("endToEndId").as_string(), "E9999999920251128162411111111111");

  EXPECT_TRUE(h(record("pix.payment.settled", R"({"paymentId":"p","status":"rejected"})")).outputs.empty());
}

TEST(SagaAuditor, EachEventIsChainedOnceAndAnnouncedWithItsHash) {
  TempFile db("audit");
  auto store = std::make_shared<audit::AuditStore>(db.path());
  Auditor a(store);
  const auto in = record("pix.payment.requested", R"({"transactionId":"12345"})");
  auto first = a(in);
  auto again = a(in);
  ASSERT_EQ(first.outputs.size(), 1u);
  EXPECT_EQ(store->count(), 1u);
  EXPECT_EQ(first.outputs[0].event.topic, "pix.audit.log");
  EXPECT_EQ(first.outputs[0].event.id, "evt-1:audit");
  EXPECT_EQ(again.outputs[0].event.id, first.outputs[0].event.id);
  const auto v = payload_of(first.outputs[0]);
  EXPECT_EQ(v.at("action").as_string(), "audited");
  EXPECT_EQ(v.at("transactionId").as_string(), "12345");
  EXPECT_EQ(v.at("seq").as_int64(), 1);
  EXPECT_EQ(v.at("hash").as_string(), store->last()->hash);
  EXPECT_TRUE(store->verify().ok);
}

TEST(SagaAuditor, TheChainSaysWhoAskedForAPayment) {
  TempFile db("audit");
  auto store = std::make_shared<audit::AuditStore>(db.path());
  Auditor a(store);
  auto in = record("pix.payment.requested", R"({"transactionId":"12345"})");
  in.headers["ce_principal"] = "bank-app-7";
  auto out = a(in);
  EXPECT_EQ(store->last()->source, "bank-app-7@kafka:pix.payment.requested");
  EXPECT_EQ(payload_of(out.outputs[0]).at("source").as_string(), "bank-app-7@kafka:pix.payment.requested");
  // Without authentication there is no principal, and the source is the topic alone.
  a(record("pix.payment.requested", R"({"transactionId":"2"})", "evt-2"));
  EXPECT_EQ(store->last()->source, "kafka:pix.payment.requested");
  EXPECT_TRUE(store->verify().ok);
}

}  // namespace
}  // namespace pix::saga
