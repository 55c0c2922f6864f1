// What each saga stage does with one event, without brokers: the handlers are pure of I/O except
// for their own stores (temporary SQLite files here).
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

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

std::int64_t kafka_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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
  EXPECT_EQ(ledger->payment_count(), 1u) << "a rejection naming no receiver has nothing to record";
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

TEST(SagaNotifier, ADuplicateIsNotifiedAsSuchUnderItsOwnId) {
  NotifierHandler h;
  auto r = h(record("pix.payment.settled",
                    R"({"paymentId":"evt-1","transactionId":"tx-2","status":"rejected","valor":"9.00",)"
                    R"("fingerprint":"v1:bb","reason":{"code":"AM05","rule":"duplicate","message":"reused"}})",
                    "evt-1:settled:duplicate:v1:bb"));
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_EQ(r.outputs[0].event.id, "evt-1:notified:duplicate:v1:bb");
  const auto v = payload_of(r.outputs[0]);
  EXPECT_EQ(v.at("status").as_string(), "rejected");
  EXPECT_EQ(v.at("reason").at("code").as_string(), "AM05");
  // Any other rejection moved no money and notifies nothing.
  EXPECT_TRUE(h(record("pix.payment.settled", R"({"paymentId":"p","status":"rejected","valor":"1.00",)"
                                              R"("reason":{"code":"AM04"}})"))
                  .outputs.empty());
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

TEST(SagaAuditor, AnotherEventUnderAnIdAlreadyAuditedIsChainedAsItsOwnEntry) {
  TempFile db("audit");
  auto store = std::make_shared<audit::AuditStore>(db.path());
  Auditor a(store);
  a(record("pix.payment.requested", R"({"transactionId":"1","receiver":"bob"})", "key-e"));
  auto other = a(record("pix.payment.requested", R"({"transactionId":"1","receiver":"mallory"})", "key-e"));
  EXPECT_EQ(store->count(), 2u) << "the second body under the same event id was merged into the first";
  EXPECT_EQ(std::string(payload_of(other.outputs[0]).at("sourceEventId").as_string()).substr(0, 16),
            "key-e:duplicate:");
  a(record("pix.payment.requested", R"({"transactionId":"1","receiver":"mallory"})", "key-e"));  // redelivered
  EXPECT_EQ(store->count(), 2u);
  // A stage's output re-emitted after a redelivery has new timestamps under its old id: the same event.
  auto settled = record("pix.payment.settled", R"({"transactionId":"1","settledAt":"1"})", "p:settled");
  settled.headers["ce_source"] = "/pix-pubsub/settlement";
  a(settled);
  settled.value = R"({"transactionId":"1","settledAt":"2"})";
  a(settled);
  EXPECT_EQ(store->count(), 3u);
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

// ---- One verdict per payment, whatever the replica ----

/// What a consumer of the output topic would read: the output as a record at `offset`.
kafka::ConsumedRecord as_record(const Output& o, std::int64_t offset) {
  kafka::ConsumedRecord r;
  r.topic = o.event.topic;
  r.partition = o.event.partition;
  r.offset = offset;
  r.key = o.event.key;
  r.value = o.event.payload;
  r.timestamp_ms = o.event.timestamp_ms;
  for (const auto& h : o.event.headers) r.headers[h.name] = h.value;
  return r;
}

/// A verdict log in memory: what anti-fraud wrote, by partition, and how often it was read.
struct FakeVerdictLog {
  std::map<std::int32_t, std::vector<kafka::ConsumedRecord>> partitions;
  int reads = 0;

  void append(const HandlerResult& r) {
    for (const auto& o : r.outputs) {
      auto& p = partitions[o.event.partition];
      p.push_back(as_record(o, static_cast<std::int64_t>(p.size())));
    }
  }
  VerdictLog log() {
    return [this](std::int32_t partition, std::int64_t since_ms,
                  const std::function<void(const kafka::ConsumedRecord&)>& each) {
      ++reads;
      for (const auto& r : partitions[partition]) {
        if (r.timestamp_ms >= since_ms) each(r);
      }
    };
  }
};

kafka::ConsumedRecord request(const std::string& id, const std::string& value, std::int32_t partition = 2,
                              std::int64_t offset = 0) {
  auto r = record("pix.payment.requested", value, id);
  r.partition = partition;
  r.offset = offset;
  r.key = "alice";
  r.timestamp_ms = kafka_now_ms() - 1000;
  return r;
}

std::string payment(const std::string& tx, const std::string& amount, const std::string& receiver = "bob") {
  return R"({"transactionId":")" + tx + R"(","amount":")" + amount + R"(","payer":"alice","receiver":")" + receiver +
         R"(","payerType":"PJ"})";
}

std::string status_of(const HandlerResult& r) {
  return std::string(payload_of(r.outputs.at(0)).at("status").as_string());
}

TEST(SagaAntifraudVerdicts, AVerdictIsWrittenToThePartitionItsRequestCameFromWithTheFingerprint) {
  AntifraudHandler h{antifraud::RulesConfig{}};
  auto r = h(request("e1", payment("1", "10.00"), 4));
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_EQ(r.outputs[0].event.partition, 4);
  EXPECT_EQ(r.outputs[0].event.key, "alice");
  const auto fp = payload_of(r.outputs[0]).at("fingerprint").as_string();
  EXPECT_EQ(fp.size(), 35u);  // "v1:" + 32 hex
  // Re-ordering the request's JSON does not make it another payment.
  auto same = AntifraudHandler{antifraud::RulesConfig{}}(
      request("e1", R"({"payerType":"PJ","receiver":"bob","payer":"alice","amount":"10.00","transactionId":"1"})", 4));
  EXPECT_EQ(payload_of(same.outputs[0]).at("fingerprint").as_string(), fp);
}

TEST(SagaAntifraudVerdicts, TheNextOwnerOfAPartitionReturnsTheStoredVerdictNotANewJudgement) {
  antifraud::RulesConfig strict;
  strict.per_transaction_limit_cents = 100'00;
  FakeVerdictLog log;
  AntifraudHandler first{strict};
  const auto approved = first(request("e1", payment("1", "50.00"), 2, 0));
  const auto rejected = first(request("e2", payment("2", "500.00"), 2, 1));
  log.append(approved);
  log.append(rejected);
  ASSERT_EQ(status_of(approved), "validated");
  ASSERT_EQ(status_of(rejected), "rejected");

  // Another replica (or the same one after a restart) with laxer rules gets the partition: the
  // redelivered payments keep the verdicts they had, with the same endToEndId and event id.
  antifraud::RulesConfig lax;
  AntifraudOptions o{lax, log.log(), {}};
  AntifraudHandler next(o);
  const auto again_rejected = next(request("e2", payment("2", "500.00"), 2, 1));
  const auto again_approved = next(request("e1", payment("1", "50.00"), 2, 0));
  EXPECT_EQ(status_of(again_rejected), "rejected") << "a rejected payment came back validated";
  EXPECT_EQ(payload_of(again_rejected.outputs[0]).at("reason").at("rule").as_string(), "per_transaction_limit");
  EXPECT_EQ(status_of(again_approved), "validated");
  EXPECT_EQ(again_approved.outputs[0].event.id, approved.outputs[0].event.id);
  EXPECT_EQ(payload_of(again_approved.outputs[0]).at("endToEndId"), payload_of(approved.outputs[0]).at("endToEndId"));
  EXPECT_EQ(next.restored(), 2u);
  EXPECT_EQ(log.reads, 1) << "the partition is read back once, when its first record arrives";
}

TEST(SagaAntifraudVerdicts, ReadBackApprovalsCountTowardThePayersVelocity) {
  antifraud::RulesConfig rules;
  rules.velocity_max_count = 2;
  FakeVerdictLog log;
  AntifraudHandler first{rules};
  log.append(first(request("e1", payment("1", "10.00"), 0, 0)));
  log.append(first(request("e2", payment("2", "10.00"), 0, 1)));

  AntifraudHandler next(AntifraudOptions{rules, log.log(), {}});
  const auto third = next(request("e3", payment("3", "10.00"), 0, 2));
  ASSERT_EQ(status_of(third), "rejected") << "the payer's window was empty on the new owner";
  EXPECT_EQ(payload_of(third.outputs[0]).at("reason").at("rule").as_string(), "velocity_count");
  // Without the read-back the same payment would have passed: the test can fail.
  AntifraudHandler amnesiac{rules};
  EXPECT_EQ(status_of(amnesiac(request("e3", payment("3", "10.00"), 0, 2))), "validated");
}

TEST(SagaAntifraudVerdicts, VerdictsNotSignedByAntifraudAreNotReadBack) {
  antifraud::RulesConfig strict;
  strict.per_transaction_limit_cents = 100'00;
  FakeVerdictLog log;
  AntifraudHandler first{strict};
  auto forged = first(request("e1", payment("1", "500.00"), 1, 0));
  // A forger's "validated" for a payment anti-fraud never approved.
  auto value = payload_of(forged.outputs[0]);
  value["status"] = "validated";
  value.erase("reason");
  forged.outputs[0].event.payload = json::serialize(value);
  log.append(forged);

  AntifraudOptions o{strict, log.log(),
                     [](const kafka::ConsumedRecord& r) { return r.header("pix-signature") == "ok"; }};
  AntifraudHandler next(o);
  EXPECT_EQ(status_of(next(request("e1", payment("1", "500.00"), 1, 0))), "rejected");
  EXPECT_EQ(next.restored(), 0u);
}

TEST(SagaAntifraudVerdicts, ARevokedPartitionIsReadBackAgainWhenItReturns) {
  FakeVerdictLog log;
  AntifraudHandler h(AntifraudOptions{antifraud::RulesConfig{}, log.log(), {}});
  log.append(h(request("e1", payment("1", "10.00"), 3, 0)));
  h(request("e2", payment("2", "10.00"), 3, 1));
  EXPECT_EQ(log.reads, 1);
  h.forget(3);
  h(request("e2", payment("2", "10.00"), 3, 1));
  EXPECT_EQ(log.reads, 2) << "another member may have judged the partition meanwhile";
}

TEST(SagaAntifraudVerdicts, TheSamePaymentIdWithOtherContentIsADuplicateUnderItsOwnId) {
  AntifraudHandler h{antifraud::RulesConfig{}};
  const auto first = h(request("e1", payment("1", "10.00", "bob")));
  const auto other = h(request("e1", payment("1", "10.00", "mallory")));
  ASSERT_EQ(status_of(first), "validated");
  ASSERT_EQ(status_of(other), "rejected");
  const auto v = payload_of(other.outputs[0]);
  EXPECT_EQ(v.at("reason").at("code").as_string(), "AM05");
  EXPECT_EQ(v.at("reason").at("rule").as_string(), "duplicate");
  EXPECT_EQ(other.outputs[0].event.id, "e1:validated:duplicate:" + std::string(v.at("fingerprint").as_string()));
  // The first payment keeps its verdict; the duplicate did not replace it.
  EXPECT_EQ(status_of(h(request("e1", payment("1", "10.00", "bob")))), "validated");
}

TEST(SagaSettlementDuplicates, ARejectionIsRecordedSoNoLaterValidationUnderItsIdSettles) {
  TempFile db("ledger");
  auto ledger = std::make_shared<ledger::Ledger>(db.path());
  ledger->fund({{"alice", 10000}});
  SettlementHandler h(ledger);
  const std::string common =
      R"("paymentId":"p9","payer":"alice","receiver":"bob","amountCents":500,"fingerprint":"v1:aa")";
  auto first = h(record("pix.payment.validated",
                        "{" + common + R"(,"status":"rejected","reason":{"code":"AM02","rule":"velocity_count"}})"));
  EXPECT_TRUE(first.outputs.empty());
  // A second verdict for the same payment (a zombie replica's, or a replayed record) says validated.
  auto second = h(record("pix.payment.validated", "{" + common + R"(,"status":"validated"})", "p9:validated"));
  EXPECT_TRUE(second.outputs.empty()) << "the first decision (rejected) must stand";
  EXPECT_EQ(ledger->balance("alice"), 10000);
  EXPECT_EQ(ledger->balance("bob").value_or(0), 0);
}

TEST(SagaSettlementDuplicates, AnIdReusedForAnotherPaymentIsRejectedAm05AndMovesNothingMore) {
  TempFile db("ledger");
  auto ledger = std::make_shared<ledger::Ledger>(db.path());
  ledger->fund({{"alice", 10000}});
  SettlementHandler h(ledger);
  auto first =
      h(record("pix.payment.validated", R"({"paymentId":"p1","status":"validated","payer":"alice","receiver":"bob",)"
                                        R"("amountCents":1000,"fingerprint":"v1:aa"})"));
  auto other = h(record("pix.payment.validated",
                        R"({"paymentId":"p1","status":"validated","payer":"alice","receiver":"mallory",)"
                        R"("amountCents":9000,"fingerprint":"v1:bb"})"));
  ASSERT_EQ(other.outputs.size(), 1u);
  EXPECT_EQ(other.outputs[0].event.id, "p1:settled:duplicate:v1:bb");
  const auto v = payload_of(other.outputs[0]);
  EXPECT_EQ(v.at("status").as_string(), "rejected");
  EXPECT_EQ(v.at("reason").at("code").as_string(), "AM05");
  EXPECT_EQ(v.at("receiver").as_string(), "mallory");
  EXPECT_EQ(ledger->balance("bob"), 1000);
  EXPECT_EQ(ledger->balance("mallory").value_or(0), 0) << "the first payment's money went to the second's receiver";
  // Anti-fraud's own AM05 goes on to be notified, touching nothing.
  auto passed = h(record("pix.payment.validated",
                         R"({"paymentId":"p1","status":"rejected","payer":"alice","receiver":"eve","amountCents":5,)"
                         R"("fingerprint":"v1:cc","reason":{"code":"AM05","rule":"duplicate"}})"));
  ASSERT_EQ(passed.outputs.size(), 1u);
  EXPECT_EQ(passed.outputs[0].event.id, "p1:settled:duplicate:v1:cc");
  EXPECT_EQ(ledger->payment_count(), 1u);
  EXPECT_EQ(ledger->total_balance(), 0);
}

}  // namespace
}  // namespace pix::saga
