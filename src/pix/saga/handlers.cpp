#include "pix/saga/handlers.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "pix/broker/cloud_event.hpp"
#include "pix/domain/amount.hpp"
#include "pix/domain/topics.hpp"

namespace pix::saga {
namespace {

namespace json = boost::json;

/// The record's value as a JSON object, or an error for the dead-letter topic.
std::variant<json::object, std::string> value_object(const kafka::ConsumedRecord& record) {
  json::error_code ec;
  auto v = json::parse(record.value, ec);
  if (ec) return "value is not JSON: " + ec.message();
  if (!v.is_object()) return std::string("value is not a JSON object");
  return std::move(v.as_object());
}

telemetry::TraceContext child_trace(const std::string& traceparent) {
  return telemetry::TraceContext::child_of(telemetry::parse_traceparent(traceparent));
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
                                                 child_trace(in.header("traceparent")), broker::now_epoch_ms())};
}

HandlerResult poison(std::string reason) {
  HandlerResult r;
  r.poison_reason = std::move(reason);
  return r;
}

}  // namespace

std::string derived_event_id(const std::string& payment_id, std::string_view stage_suffix) {
  return payment_id + ":" + std::string(stage_suffix);
}

AntifraudHandler::AntifraudHandler(antifraud::RulesConfig rules) : engine_(std::move(rules)) {}

HandlerResult AntifraudHandler::operator()(const kafka::ConsumedRecord& record) {
  auto parsed = value_object(record);
  if (auto* err = std::get_if<std::string>(&parsed)) return poison(*err);
  json::object value = std::move(std::get<json::object>(parsed));

  const std::string payment_id = event_id_of(record);
  const auto event_time = std::chrono::system_clock::time_point(std::chrono::milliseconds(record.timestamp_ms));
  auto request = antifraud::payment_request_from_json(value, payment_id, event_time);
  if (auto* err = std::get_if<std::string>(&request)) return poison(*err);
  const auto decision =
      engine_.evaluate(std::get<antifraud::PaymentRequest>(request), std::chrono::system_clock::now());

  value["paymentId"] = payment_id;
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
                                   derived_event_id(payment_id, "validated"), "/pix-pubsub/antifraud"));
  return r;
}

SettlementHandler::SettlementHandler(std::shared_ptr<ledger::Ledger> ledger) : ledger_(std::move(ledger)) {}

HandlerResult SettlementHandler::operator()(const kafka::ConsumedRecord& record) {
  auto parsed = value_object(record);
  if (auto* err = std::get_if<std::string>(&parsed)) return poison(*err);
  json::object value = std::move(std::get<json::object>(parsed));

  const auto status = string_field(value, "status");
  if (status == "rejected") return {};  // stopped at validation: nothing moves
  if (status != "validated") return poison("status must be 'validated' or 'rejected'");
  const auto payment_id = string_field(value, "paymentId");
  const auto payer = string_field(value, "payer");
  const auto receiver = string_field(value, "receiver");
  const auto* cents = value.if_contains("amountCents");
  if (!payment_id) return poison("paymentId is missing: not a payment validated by the antifraud stage");
  if (!payer || !receiver) return poison("payer and receiver are required");
  if (!cents || !cents->is_int64() || cents->as_int64() <= 0) return poison("amountCents must be a positive integer");

  const auto t = ledger_->transfer(*payment_id, *payer, *receiver, cents->as_int64());
  json::object out;
  out["paymentId"] = *payment_id;
  out["transactionId"] = value.contains("transactionId") ? value.at("transactionId") : json::value(record.key);
  out["endToEndId"] = value.contains("endToEndId") ? value.at("endToEndId") : json::value("");
  out["payer"] = *payer;
  out["receiver"] = *receiver;
  out["amountCents"] = cents->as_int64();
  out["valor"] = domain::format_amount(cents->as_int64());
  if (const auto* k = value.if_contains("receiverKey")) out["receiverKey"] = *k;
  if (const auto* at = value.if_contains("requestedAt")) out["requestedAt"] = *at;
  out["settledAt"] = broker::rfc3339_utc_ms(broker::now_epoch_ms());
  if (t.outcome == ledger::TransferResult::Outcome::kSettled) {
    out["status"] = "settled";
  } else {
    out["status"] = "rejected";
    out["reason"] = {{"code", t.reason_code},
                     {"rule", "settlement"},
                     {"message", t.reason_code == "AM04" ? "insufficient balance" : "amount not settleable"}};
  }
  HandlerResult r;
  r.outputs.push_back(kafka_output(std::string(domain::topic_name(domain::Topic::kPaymentSettled)), record, out,
                                   derived_event_id(*payment_id, "settled"), "/pix-pubsub/settlement"));
  return r;
}

HandlerResult NotifierHandler::operator()(const kafka::ConsumedRecord& record) {
  auto parsed = value_object(record);
  if (auto* err = std::get_if<std::string>(&parsed)) return poison(*err);
  const json::object& value = std::get<json::object>(parsed);
  const auto status = string_field(value, "status");
  if (status == "rejected") return {};  // no money moved: nothing to notify
  if (status != "settled") return poison("status must be 'settled' or 'rejected'");
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
  body["status"] = "notified";
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
      {Sink::kRabbit, broker::make_cloud_event(
                          broker::Binding::kAmqp, std::string(domain::topic_name(domain::Topic::kNotificationSent)), tx,
                          json::serialize(body), derived_event_id(*payment_id, "notified"), "/pix-pubsub/notifier",
                          child_trace(record.header("traceparent")), broker::now_epoch_ms())});
  return r;
}

Auditor::Auditor(std::shared_ptr<audit::AuditStore> store) : store_(std::move(store)) {}

broker::OutboundEvent Auditor::audit(const std::string& event_id, const std::string& source, const std::string& payload,
                                     const std::string& traceparent) {
  audit::AppendResult appended;
  {
    std::lock_guard lock(mutex_);
    appended = store_->append(event_id, source, payload, broker::now_epoch_ms());
  }
  const auto& e = appended.entry;
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
                                  "/pix-pubsub/auditor", child_trace(traceparent), e.recorded_at_ms);
}

HandlerResult Auditor::operator()(const kafka::ConsumedRecord& record) {
  // Any payload is audited as it came, JSON or not: the audit trail records, it does not judge.
  // Who asked (the gateway's verified principal) is part of the chained entry: `<principal>@kafka:<topic>`.
  const std::string principal = record.header("ce_principal");
  const std::string source = (principal.empty() ? "" : principal + "@") + "kafka:" + record.topic;
  HandlerResult r;
  r.outputs.push_back({Sink::kKafka, audit(event_id_of(record), source, record.value, record.header("traceparent"))});
  return r;
}

}  // namespace pix::saga
