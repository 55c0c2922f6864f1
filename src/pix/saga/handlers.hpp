#pragma once
/// @file What each saga stage does with one event. Pure of brokers: a handler turns a consumed
/// record into its durable effect and the events to publish; the KafkaStage loop does the rest.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
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

/// The id of the output that answers a reused payment id (AM05): distinct from the first
/// payment's output, so that downstream de-duplication by event id does not swallow it, and the
/// same on every redelivery of the duplicate.
std::string duplicate_event_id(const std::string& payment_id, std::string_view stage_suffix,
                               const std::string& fingerprint);

/// Reads back, for one partition of the stage's output topic, every record written since a time
/// (epoch ms), calling `each` in offset order. Throws if the partition cannot be read.
using VerdictLog = std::function<void(std::int32_t partition, std::int64_t since_ms,
                                      const std::function<void(const kafka::ConsumedRecord&)>& each)>;

struct AntifraudOptions {
  antifraud::RulesConfig rules;
  /// Where this stage's earlier verdicts are read back from: the validated topic, whose partition
  /// p holds the verdicts on requested partition p. Null: memory only (a restart re-judges).
  VerdictLog verdicts;
  /// True if a read-back record is this stage's own decision (its signature verifies). Null:
  /// every record is taken (the unsigned profile, where anyone who can write may forge anyway).
  std::function<bool(const kafka::ConsumedRecord&)> own;
  /// The read-back starts this long before the velocity window of the first record to judge:
  /// room for the gateway's and anti-fraud's clocks to disagree.
  std::chrono::milliseconds clock_margin{std::chrono::minutes(5)};
};

/// @brief antifraud: pix.payment.requested -> pix.payment.validated (status validated or
/// rejected, with `reason {code, rule, message}`), written to the same partition number it was
/// read from, with the payment's `fingerprint`.
///
/// One verdict per payment, whatever the replica: requests are keyed by payer, so one partition
/// holds all of a payer's payments and one member judges them at a time. Each partition has its
/// own RuleEngine; before judging the first record of a partition it was given, the handler
/// reads the verdicts already on that partition of the output topic (the durable store of every
/// decision: it is written, acknowledged by all in-sync replicas, before the input is
/// committed) back into the engine: a redelivery, a restart or the next owner returns the stored
/// verdict and sees the payer's velocity window as it was. docs/guarantees.md.
class AntifraudHandler {
 public:
  explicit AntifraudHandler(antifraud::RulesConfig rules);
  explicit AntifraudHandler(AntifraudOptions options);
  HandlerResult operator()(const kafka::ConsumedRecord& record);
  /// The partition went to another member: its state is dropped, read back if it comes back.
  void forget(std::int32_t partition);
  /// Verdicts read back from the output topic so far.
  std::size_t restored() const noexcept { return restored_; }

 private:
  antifraud::RuleEngine& engine_for(const kafka::ConsumedRecord& first);

  AntifraudOptions options_;
  std::map<std::int32_t, antifraud::RuleEngine> engines_;
  std::size_t restored_ = 0;
};

/// @brief settlement: validated payments -> ledger transfer (at most once per paymentId) ->
/// pix.payment.settled (status settled, or rejected with AM04). A rejected validation is
/// recorded in the ledger (so that no later record under its id can settle it) and emits
/// nothing. A payment id decided before for another fingerprint, or anti-fraud's own AM05, goes
/// on as a rejected AM05 on pix.payment.settled under duplicate_event_id(), to be notified.
class SettlementHandler {
 public:
  explicit SettlementHandler(std::shared_ptr<ledger::Ledger> ledger);
  HandlerResult operator()(const kafka::ConsumedRecord& record);

 private:
  std::shared_ptr<ledger::Ledger> ledger_;
};

/// @brief notifier: settled payments -> pix.notification.sent on RabbitMQ, shaped like the API Pix
/// webhook (`endToEndId`, `txid`, `valor` "123.45", `horario`) plus the `transactionId`. A
/// duplicate (AM05) is notified as such: `status` "rejected" with its `reason`; other rejections
/// moved no money and notify nothing.
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
  /// `event_source` is the event's CloudEvents source: a saga stage's re-emitted output carries
  /// new timestamps under its old id and is the same event; anyone else's other body under an id
  /// already audited (an Idempotency-Key reused) is another event, chained as its own entry.
  broker::OutboundEvent audit(const std::string& event_id, const std::string& source, const std::string& payload,
                              const std::string& traceparent, const std::string& event_source = "");
  HandlerResult operator()(const kafka::ConsumedRecord& record);

 private:
  std::shared_ptr<audit::AuditStore> store_;
  std::mutex mutex_;
};

}  // namespace pix::saga
