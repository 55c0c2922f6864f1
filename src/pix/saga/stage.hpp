#pragma once
/// @file The at-least-once loop every saga stage runs: consume from Kafka, apply the stage's
/// effect, publish its outputs, and commit the offset only once every output is acknowledged.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pix/broker/publisher.hpp"
#include "pix/kafka/consumer.hpp"
#include "pix/saga/record_source.hpp"
#include "pix/telemetry/metrics.hpp"
#include "pix/telemetry/tracer.hpp"

namespace pix::service {
class StopSource;  // service/lifecycle.hpp: whoever runs a stage makes one
}  // namespace pix::service

namespace pix::saga {

/// @brief Where an output goes: the stage's Kafka producer or its AMQP publisher.
enum class Sink { kKafka, kRabbit };

struct Output {
  Sink sink = Sink::kKafka;
  broker::OutboundEvent event;
};

/// @brief A handler's verdict on one record. Its durable effect (ledger, audit store) must be done
/// before it returns; `outputs` are then published and acknowledged before the offset commits.
struct HandlerResult {
  std::vector<Output> outputs;
  /// Non-empty: the record is poison (unparseable, invalid): it goes to the dead-letter topic
  /// with this reason, and the stage goes on.
  std::string poison_reason;
};

using Handler = std::function<HandlerResult(const kafka::ConsumedRecord&)>;

struct StageOptions {
  std::string name;  ///< antifraud, settlement, notifier, auditor: a metrics label
  /// The Kafka input (group = the stage's name by default); its before_revoke is the stage's.
  /// Unused by a stage given its own RecordSource, but for the group name on spans.
  kafka::ConsumerOptions consumer;
  std::string dead_letter_topic = "pix.dlq";
  std::size_t max_records_in_flight = 5000;
  std::chrono::milliseconds commit_interval{200};
  std::chrono::milliseconds retry_backoff{200};
  std::chrono::milliseconds retry_backoff_max{5000};
  /// How long the outputs in flight may take to be acknowledged when the stage lets go of
  /// records: at the stop, and before giving partitions away at a rebalance. What is still
  /// unacknowledged then is not committed, and is consumed again (by the next owner).
  std::chrono::milliseconds drain_timeout{10000};
  /// An output the broker refuses permanently (not authorized, record too large, unknown topic)
  /// is tried this many times (a just-granted ACL or a topic being created gets that long), then
  /// dead-lettered with the reason, so that the partition moves on.
  int max_refusals = 3;
  /// Called (on the stage's thread) for each partition given to another member, after the
  /// outputs of its records in flight were acknowledged (bounded wait) and before the commit.
  std::function<void(const std::string& topic, std::int32_t partition)> on_revoked;
  /// Spans: a CONSUMER span per record (the handler's effect spans under it, active while it
  /// runs) and a PRODUCER span per output, whose context the output carries in `traceparent`.
  /// Null: contexts propagate, nothing is recorded.
  telemetry::Tracer* tracer = nullptr;
  /// The exchange AMQP outputs go to (a span attribute).
  std::string rabbit_exchange = "pix";
};

/// @brief Runs one stage until `stop` is asked; then finishes in-flight outputs (bounded by
/// StageOptions::drain_timeout) and commits. Outputs that fail retryably are re-sent with the same
/// event id, with backoff, forever: a record is never committed without its outputs, so nothing
/// is lost. An output refused permanently StageOptions::max_refusals times goes to the
/// dead-letter topic instead (the refused output itself, with `pix_dlq_reason`, `pix_dlq_stage`
/// and the input's position in `pix_dlq_source`), and the record completes; a dead-letter copy
/// that is itself refused is retried forever (there is nowhere else to put it) and keeps the
/// stage not ready.
class KafkaStage {
 public:
  /// `rabbit` may be null when the stage has no AMQP outputs. The publishers' callbacks hold the
  /// stage's verdict queue, not the stage: a verdict that comes after the stage is destroyed (a
  /// publisher drained later) is dropped, never delivered into freed memory.
  ///
  /// This one consumes through a kafka::KafkaConsumer made from StageOptions::consumer.
  KafkaStage(StageOptions options, Handler handler, broker::Publisher& kafka, broker::Publisher* rabbit,
             telemetry::Registry& metrics);
  /// Consumes from `records` (not null), whose revocation hook the stage installs.
  KafkaStage(StageOptions options, Handler handler, std::unique_ptr<RecordSource> records, broker::Publisher& kafka,
             broker::Publisher* rabbit, telemetry::Registry& metrics);
  ~KafkaStage();
  KafkaStage(const KafkaStage&) = delete;
  KafkaStage& operator=(const KafkaStage&) = delete;

  /// The loop, on the calling thread, until `stop` is asked (noticed within a poll, 50 ms, or at
  /// once while waiting for acknowledgements). Throws what the handler throws (a storage failure).
  void run(service::StopSource& stop);

  /// The input has partitions assigned, and no output is stuck retrying. Any thread.
  bool healthy() const noexcept;
  /// Why not healthy: "" when healthy, else e.g. "outputs to pix.payment.settled retrying". Any thread.
  std::string health_detail() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The record's event id: its CloudEvents `ce_id`, or `topic/partition@offset` when it has none
/// (stable across redeliveries either way).
std::string event_id_of(const kafka::ConsumedRecord& record);

/// The dead-letter copy of a record: same key, value and headers, plus `pix_dlq_reason`,
/// `pix_dlq_stage` and `pix_dlq_source` (topic/partition@offset).
broker::OutboundEvent dead_letter_event(const kafka::ConsumedRecord& record, const std::string& stage,
                                        const std::string& reason, const std::string& topic);

}  // namespace pix::saga
