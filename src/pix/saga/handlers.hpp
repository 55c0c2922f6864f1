#pragma once
/// @file What each saga stage does with one event. Pure of brokers: a handler turns a consumed
/// record into its durable effect and the events to publish; the KafkaStage loop does the rest.

#include <memory>
#include <mutex>
#include <string>

#include "pix/antifraud/rules.hpp"
#include "pix/audit/audit_store.hpp"
#include "pix/ledger/ledger.hpp"
#include "pix/saga/stage.hpp"

namespace pix::saga {

/// Topic of the dead-letter copies of poison records.
inline constexpr std::string_view kDeadLetterTopic = "pix.dlq";

/// @brief The id every stage derives its own event ids from: the `paymentId` the anti-fraud
/// stage stamps on the value (the id of the `requested` event), so that a redelivered input
/// yields the same output id and downstream de-duplication holds.
std::string derived_event_id(const std::string& payment_id, std::string_view stage_suffix);

/// @brief antifraud: pix.payment.requested -> pix.payment.validated (status validated or
/// rejected, with `reason {code, rule, message}`).
class AntifraudHandler {
 public:
  explicit AntifraudHandler(antifraud::RulesConfig rules);
  HandlerResult operator()(const kafka::ConsumedRecord& record);

 private:
  antifraud::RuleEngine engine_;
};

/// @brief settlement: validated payments -> ledger transfer (at most once per paymentId) ->
/// pix.payment.settled (status settled, or rejected with AM04). Rejected validations are skipped.
class SettlementHandler {
 public:
  explicit SettlementHandler(std::shared_ptr<ledger::Ledger> ledger);
  HandlerResult operator()(const kafka::ConsumedRecord& record);

 private:
  std::shared_ptr<ledger::Ledger> ledger_;
};

/// @brief notifier: settled payments -> pix.notification.sent on RabbitMQ, shaped like the API Pix
/// webhook (`endToEndId`, `txid`, `valor` "123.45", `horario`) plus the `transactionId`.
class NotifierHandler {
 public:
  HandlerResult operator()(const kafka::ConsumedRecord& record);
};

/// @brief auditor: every PIX event -> one entry of the hash-chained audit store -> pix.audit.log.
/// Shared by the auditor's Kafka and AMQP consumers (the store is guarded by a mutex).
class Auditor {
 public:
  explicit Auditor(std::shared_ptr<audit::AuditStore> store);
  /// Appends (once per event id) and returns the pix.audit.log event for the entry.
  broker::OutboundEvent audit(const std::string& event_id, const std::string& source, const std::string& payload,
                              const std::string& traceparent);
  HandlerResult operator()(const kafka::ConsumedRecord& record);

 private:
  std::shared_ptr<audit::AuditStore> store_;
  std::mutex mutex_;
};

}  // namespace pix::saga
