#include "pix/saga/handlers.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "pix/broker/cloud_event.hpp"
#include "pix/domain/amount.hpp"
#include "pix/domain/payment_fingerprint.hpp"
#include "pix/domain/topics.hpp"
#include "pix/telemetry/tracer.hpp"
#include "pix/util/sha256.hpp"

namespace pix::saga {
namespace {

namespace json = boost::json;

// The CloudEvents sources of the stages' outputs: the auditor knows a re-emitted output by them.
constexpr std::string_view kAntifraudSource = "/pix-pubsub/antifraud";
constexpr std::string_view kSettlementSource = "/pix-pubsub/settlement";
constexpr std::string_view kNotifierSource = "/pix-pubsub/notifier";

/// The record's value as a JSON object, or an error for the dead-letter topic.
std::variant<json::object, std::string> value_object(const kafka::ConsumedRecord& record) {
  json::error_code ec;
  auto v = json::parse(record.value, ec);
  if (ec) return "value is not JSON: " + ec.message();
  if (!v.is_object()) return std::string("value is not a JSON object");
  return std::move(v.as_object());
}

// The trace an output continues: the input's context as it came (a new trace without one). The
// stage that publishes the output replaces it with its own PRODUCER span's context, so no span id
// is made here only to be thrown away.
telemetry::TraceContext continued_trace(const std::string& traceparent) {
  auto parent = telemetry::parse_traceparent(traceparent);
  return parent ? *parent : telemetry::TraceContext::child_of(std::nullopt);
}

std::optional<std::string> string_field(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (!v || !v->is_string() || v->as_string().empty()) return std::nullopt;
  return std::string(v->as_string());
}

std::string text_of(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

Output kafka_output(std::string topic, const kafka::ConsumedRecord& in, const json::object& value, std::string id,
                    const std::string& source) {
  return {Sink::kKafka, broker::make_cloud_event(broker::Binding::kKafka, std::move(topic), in.key,
                                                 json::serialize(value), std::move(id), source,
                                                 continued_trace(in.header("traceparent")), broker::now_epoch_ms())};
}

HandlerResult poison(std::string reason) {
  HandlerResult r;
  r.poison_reason = std::move(reason);
  return r;
}

std::string reason_code_of(const json::object& value) {
  const auto* reason = value.if_contains("reason");
  if (!reason || !reason->is_object()) return {};
  return string_field(reason->as_object(), "code").value_or("");
}

std::chrono::system_clock::time_point time_of_ms(std::int64_t ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

// Takes one read-back verdict into `engine`; false if it is not a verdict of this stage.
bool restore_verdict(antifraud::RuleEngine& engine, const kafka::ConsumedRecord& record) {
  auto parsed = value_object(record);
  auto* value = std::get_if<json::object>(&parsed);
  if (!value) return false;
  const auto payment_id = string_field(*value, "paymentId");
  const auto status = string_field(*value, "status");
  const auto requested_at = broker::parse_rfc3339_utc_ms(string_field(*value, "requestedAt").value_or(""));
  if (!payment_id || (status != "validated" && status != "rejected") || !requested_at) return false;
  auto request = antifraud::payment_request_from_json(*value, *payment_id, time_of_ms(*requested_at));
  auto* req = std::get_if<antifraud::PaymentRequest>(&request);
  if (!req) return false;
  req->fingerprint = string_field(*value, "fingerprint").value_or("");

  antifraud::Decision d;
  d.approved = status == "validated";
  if (const auto* reason = value->if_contains("reason"); reason && reason->is_object()) {
    d.code = string_field(reason->as_object(), "code").value_or("");
    d.rule = string_field(reason->as_object(), "rule").value_or("");
    d.message = string_field(reason->as_object(), "message").value_or("");
  }
  if (const auto* cents = value->if_contains("amountCents"); cents && cents->is_int64())
    d.amount_cents = cents->as_int64();
  d.end_to_end_id = string_field(*value, "endToEndId").value_or("");
  // The limits were judged at the request's time, or at the processing time if that was earlier.
  const auto validated_at = broker::parse_rfc3339_utc_ms(string_field(*value, "validatedAt").value_or(""));
  const auto judged = validated_at ? std::min(*requested_at, *validated_at) : *requested_at;
  engine.restore(*req, d, time_of_ms(judged));
  return true;
}

}  // namespace

std::string derived_event_id(const std::string& payment_id, std::string_view stage_suffix) {
  return payment_id + ":" + std::string(stage_suffix);
}

std::string duplicate_event_id(const std::string& payment_id, std::string_view stage_suffix,
                               const std::string& fingerprint) {
  return payment_id + ":" + std::string(stage_suffix) + ":duplicate:" + fingerprint;
}

AntifraudHandler::AntifraudHandler(antifraud::RulesConfig rules)
    : AntifraudHandler(AntifraudOptions{std::move(rules), {}, {}}) {}

AntifraudHandler::AntifraudHandler(AntifraudOptions options) : options_(std::move(options)) {}

void AntifraudHandler::forget(std::int32_t partition) {
  engines_.erase(partition);
}

antifraud::RuleEngine& AntifraudHandler::engine_for(const kafka::ConsumedRecord& first) {
  if (auto it = engines_.find(first.partition); it != engines_.end()) return it->second;
  antifraud::RuleEngine engine(options_.rules);
  if (options_.verdicts) {
    // Everything decided on this partition that the first record to judge could need: its own
    // verdict if it is a redelivery (decided after it was written) and the payer's window.
    const std::int64_t at = first.timestamp_ms > 0 ? first.timestamp_ms : broker::now_epoch_ms();
    const auto window = std::chrono::duration_cast<std::chrono::milliseconds>(options_.rules.velocity_window);
    const std::int64_t since = at - window.count() - options_.clock_margin.count();
    options_.verdicts(first.partition, since, [&](const kafka::ConsumedRecord& verdict) {
      if (options_.own && !options_.own(verdict)) return;  // not signed by this stage: forged
      if (restore_verdict(engine, verdict)) ++restored_;
    });
  }
  return engines_.emplace(first.partition, std::move(engine)).first->second;
}

HandlerResult AntifraudHandler::operator()(const kafka::ConsumedRecord& record) {
  auto parsed = value_object(record);
  if (auto* err = std::get_if<std::string>(&parsed)) return poison(*err);
  json::object value = std::move(std::get<json::object>(parsed));

  const std::string payment_id = event_id_of(record);
  auto request = antifraud::payment_request_from_json(value, payment_id, time_of_ms(record.timestamp_ms));
  if (auto* err = std::get_if<std::string>(&request)) return poison(*err);
  auto& req = std::get<antifraud::PaymentRequest>(request);
  req.fingerprint = domain::payment_fingerprint(value);
  antifraud::RuleEngine* engine = nullptr;
  {
    telemetry::Span read_back =
        engines_.contains(record.partition) ? telemetry::Span{} : telemetry::child_span("antifraud read back verdicts");
    const std::size_t before = restored_;
    engine = &engine_for(record);
    read_back.set("pix.antifraud.verdicts_restored", static_cast<std::int64_t>(restored_ - before))
        .set("messaging.destination.partition.id", std::to_string(record.partition));
  }
  telemetry::Span decide = telemetry::child_span("antifraud decide");
  const auto decision = engine->evaluate(req, std::chrono::system_clock::now());
  const bool duplicate = antifraud::RuleEngine::is_duplicate(decision);
  // A rejection is the stage doing its job: an attribute, not an error.
  decide.set("pix.payment_id", payment_id).set("pix.antifraud.status", decision.approved ? "validated" : "rejected");
  if (!decision.approved) decide.set("pix.antifraud.rule", decision.rule).set("pix.antifraud.code", decision.code);
  decide.end();

  value["paymentId"] = payment_id;
  value["fingerprint"] = req.fingerprint;
  value["status"] = decision.approved ? "validated" : "rejected";
  value["endToEndId"] = decision.end_to_end_id;
  if (decision.amount_cents > 0) {
    value["amountCents"] = decision.amount_cents;
    value["valor"] = domain::format_amount(decision.amount_cents);
  }
  value["requestedAt"] = broker::rfc3339_utc_ms(record.timestamp_ms);
  value["validatedAt"] = broker::rfc3339_utc_ms(broker::now_epoch_ms());
  if (!decision.approved) {
    value["reason"] = {{"code", decision.code}, {"rule", decision.rule}, {"message", decision.message}};
  }
  HandlerResult r;
  r.outputs.push_back(kafka_output(std::string(domain::topic_name(domain::Topic::kPaymentValidated)), record, value,
                                   duplicate ? duplicate_event_id(payment_id, "validated", req.fingerprint)
                                             : derived_event_id(payment_id, "validated"),
                                   std::string(kAntifraudSource)));
  // Partition p of the output holds the verdicts on partition p of the input: what a later owner
  // of p reads back.
  r.outputs.back().event.partition = record.partition;
  return r;
}

SettlementHandler::SettlementHandler(std::shared_ptr<ledger::Ledger> ledger) : ledger_(std::move(ledger)) {}

HandlerResult SettlementHandler::operator()(const kafka::ConsumedRecord& record) {
  auto parsed = value_object(record);
  if (auto* err = std::get_if<std::string>(&parsed)) return poison(*err);
  json::object value = std::move(std::get<json::object>(parsed));

  const auto status = string_field(value, "status");
  if (status != "validated" && status != "rejected") return poison("status must be 'validated' or 'rejected'");
  const auto payment_id = string_field(value, "paymentId");
  const auto payer = string_field(value, "payer");
  const auto receiver = string_field(value, "receiver");
  const std::string fingerprint = string_field(value, "fingerprint").value_or("");
  const auto* cents_field = value.if_contains("amountCents");
  const std::int64_t cents = cents_field && cents_field->is_int64() ? cents_field->as_int64() : 0;
  if (!payment_id) {
    if (status == "rejected") return {};  // nothing moves, and nothing names the payment to record
    return poison("paymentId is missing: not a payment validated by the antifraud stage");
  }
  if (!payer || !receiver) {
    if (status == "rejected") return {};
    return poison("payer and receiver are required");
  }

  const std::string code = reason_code_of(value);
  telemetry::Span tx_span = telemetry::child_span("ledger transaction");
  tx_span.set("db.system", "sqlite").set("pix.payment_id", *payment_id).set("pix.amount_cents", cents);
  ledger::TransferResult t;
  if (status == "rejected") {
    if (code != domain::kReasonDuplicate) {
      // Stopped at validation: nothing moves, but the decision is kept, so that no later record
      // under this id (a replica's or a forger's) can settle it.
      ledger_->record_rejection(*payment_id, *payer, *receiver, cents, code.empty() ? "ED05" : code, fingerprint);
      tx_span.set("pix.ledger.outcome", "rejection recorded").set("pix.reason_code", code.empty() ? "ED05" : code);
      return {};
    }
    t.outcome = ledger::TransferResult::Outcome::kRejected;
    t.conflict = true;  // anti-fraud saw the id reused: passed on, to be notified
  } else {
    if (cents <= 0) return poison("amountCents must be a positive integer");
    t = ledger_->transfer(*payment_id, *payer, *receiver, cents, fingerprint);
    tx_span.set("pix.ledger.outcome", t.outcome == ledger::TransferResult::Outcome::kSettled ? "settled" : "rejected")
        .set("pix.ledger.duplicate", t.duplicate);
    if (!t.reason_code.empty()) tx_span.set("pix.reason_code", t.reason_code);
    // Rejected before settlement the first time (a replica's second verdict, or a forger's):
    // that decision stands, and it emitted nothing.
    if (t.duplicate && t.outcome == ledger::TransferResult::Outcome::kRejected &&
        t.reason_code != ledger::kReasonInsufficientFunds) {
      return {};
    }
  }

  tx_span.end();
  json::object out;
  out["paymentId"] = *payment_id;
  out["transactionId"] = value.contains("transactionId") ? value.at("transactionId") : json::value(record.key);
  out["endToEndId"] = value.contains("endToEndId") ? value.at("endToEndId") : json::value("");
  out["payer"] = *payer;
  out["receiver"] = *receiver;
  out["amountCents"] = cents;
  out["valor"] = domain::format_amount(cents);
  if (const auto* k = value.if_contains("receiverKey")) out["receiverKey"] = *k;
  if (const auto* at = value.if_contains("requestedAt")) out["requestedAt"] = *at;
  if (!fingerprint.empty()) out["fingerprint"] = fingerprint;
  out["settledAt"] = broker::rfc3339_utc_ms(broker::now_epoch_ms());
  std::string id = derived_event_id(*payment_id, "settled");
  if (t.conflict) {
    out["status"] = "rejected";
    out["reason"] = {
        {"code", domain::kReasonDuplicate},
        {"rule", antifraud::kRuleDuplicate},
        {"message", "payment id " + *payment_id + " was already decided for a payment with other content"}};
    id = duplicate_event_id(*payment_id, "settled", fingerprint);
  } else if (t.outcome == ledger::TransferResult::Outcome::kSettled) {
    out["status"] = "settled";
  } else {
    out["status"] = "rejected";
    out["reason"] = {{"code", t.reason_code},
                     {"rule", "settlement"},
                     {"message", t.reason_code == "AM04" ? "insufficient balance" : "amount not settleable"}};
  }
  HandlerResult r;
  r.outputs.push_back(kafka_output(std::string(domain::topic_name(domain::Topic::kPaymentSettled)), record, out,
                                   std::move(id), std::string(kSettlementSource)));
  return r;
}

HandlerResult NotifierHandler::operator()(const kafka::ConsumedRecord& record) {
  auto parsed = value_object(record);
  if (auto* err = std::get_if<std::string>(&parsed)) return poison(*err);
  const json::object& value = std::get<json::object>(parsed);
  const auto status = string_field(value, "status");
  if (status != "settled" && status != "rejected") return poison("status must be 'settled' or 'rejected'");
  const bool duplicate = status == "rejected" && reason_code_of(value) == domain::kReasonDuplicate;
  if (status == "rejected" && !duplicate) return {};  // no money moved: nothing to notify
  const auto payment_id = string_field(value, "paymentId");
  const auto valor = string_field(value, "valor");
  if (!payment_id || !valor) return poison("paymentId and valor are required");

  // The webhook's txid is 1-35 alphanumerics: the transactionId's, when it has any.
  const std::string tx = value.contains("transactionId") ? text_of(value.at("transactionId")) : record.key;
  std::string txid;
  for (char c : tx) {
    if (std::isalnum(static_cast<unsigned char>(c)) && txid.size() < 35) txid += c;
  }
  json::object body;
  body["transactionId"] = tx;
  body["status"] = duplicate ? "rejected" : "notified";
  if (duplicate) body["reason"] = value.at("reason");
  body["paymentId"] = *payment_id;
  body["endToEndId"] = value.contains("endToEndId") ? value.at("endToEndId") : json::value("");
  if (!txid.empty()) body["txid"] = txid;
  body["valor"] = *valor;
  if (const auto* k = value.if_contains("receiverKey")) body["chave"] = *k;
  body["horario"] =
      value.contains("settledAt") ? value.at("settledAt") : json::value(broker::rfc3339_utc_ms(broker::now_epoch_ms()));
  if (const auto* at = value.if_contains("requestedAt")) body["requestedAt"] = *at;
  body["notifiedAt"] = broker::rfc3339_utc_ms(broker::now_epoch_ms());

  HandlerResult r;
  r.outputs.push_back(
      {Sink::kRabbit,
       broker::make_cloud_event(
           broker::Binding::kAmqp, std::string(domain::topic_name(domain::Topic::kNotificationSent)), tx,
           json::serialize(body),
           duplicate ? duplicate_event_id(*payment_id, "notified", string_field(value, "fingerprint").value_or(""))
                     : derived_event_id(*payment_id, "notified"),
           std::string(kNotifierSource), continued_trace(record.header("traceparent")), broker::now_epoch_ms())});
  return r;
}

Auditor::Auditor(std::shared_ptr<audit::AuditStore> store) : store_(std::move(store)) {}

broker::OutboundEvent Auditor::audit(const std::string& event_id, const std::string& source, const std::string& payload,
                                     const std::string& traceparent, const std::string& event_source) {
  const bool stage_output =
      event_source == kAntifraudSource || event_source == kSettlementSource || event_source == kNotifierSource;
  audit::AppendResult appended;
  telemetry::Span append = telemetry::child_span("audit append");
  {
    std::lock_guard lock(mutex_);
    appended = store_->append(event_id, source, payload, broker::now_epoch_ms());
    if (!appended.appended && !stage_output && appended.entry.payload != payload) {
      // Another event under an id already audited (an Idempotency-Key reused for another body):
      // chained as its own entry, never merged with the first. A redelivery of it is the same
      // bytes, so it maps to the same entry.
      appended = store_->append(event_id + ":duplicate:" + util::sha256_hex(payload).substr(0, 16), source, payload,
                                broker::now_epoch_ms());
    }
  }
  const auto& e = appended.entry;
  append.set("db.system", "sqlite")
      .set("pix.audit.seq", e.seq)
      .set("pix.audit.appended", appended.appended)
      .set("pix.audit.source_event_id", e.event_id);
  append.end();
  json::error_code ec;
  const auto original = json::parse(e.payload, ec);
  std::string tx;
  if (!ec && original.is_object()) {
    if (const auto* t = original.as_object().if_contains("transactionId")) tx = text_of(*t);
  }
  json::object out;
  out["transactionId"] = tx.empty() ? e.event_id : tx;
  out["action"] = "audited";
  out["sourceEventId"] = e.event_id;
  out["source"] = e.source;
  out["seq"] = e.seq;
  out["hash"] = e.hash;
  out["prevHash"] = e.prev_hash;
  out["recordedAt"] = broker::rfc3339_utc_ms(e.recorded_at_ms);
  return broker::make_cloud_event(broker::Binding::kKafka, std::string(domain::topic_name(domain::Topic::kAuditLog)),
                                  tx, json::serialize(out), derived_event_id(e.event_id, "audit"),
                                  "/pix-pubsub/auditor", continued_trace(traceparent), e.recorded_at_ms);
}

HandlerResult Auditor::operator()(const kafka::ConsumedRecord& record) {
  // Any payload is audited as it came, JSON or not: the audit trail records, it does not judge.
  // Who asked (the gateway's verified principal) is part of the chained entry: `<principal>@kafka:<topic>`.
  const std::string principal = record.header("ce_principal");
  const std::string source = (principal.empty() ? "" : principal + "@") + "kafka:" + record.topic;
  HandlerResult r;
  r.outputs.push_back({Sink::kKafka, audit(event_id_of(record), source, record.value, record.header("traceparent"),
                                           record.header("ce_source"))});
  return r;
}

}  // namespace pix::saga
