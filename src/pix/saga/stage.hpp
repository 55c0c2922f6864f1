#pragma once
/// @file The at-least-once loop every saga stage runs: consume from Kafka, apply the stage's
/// effect, publish its outputs, and commit the offset only once every output is acknowledged.

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "pix/broker/publisher.hpp"
#include "pix/kafka/consumer.hpp"
#include "pix/telemetry/metrics.hpp"

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
  std::string name;                 ///< antifraud, settlement, notifier, auditor: a metrics label
  kafka::ConsumerOptions consumer;  ///< group = the stage's name by default
  std::string dead_letter_topic = "pix.dlq";
  std::size_t max_records_in_flight = 5000;
  std::chrono::milliseconds commit_interval{200};
  std::chrono::milliseconds retry_backoff{200};
  std::chrono::milliseconds retry_backoff_max{5000};
};

/// @brief Runs one stage until `stop` is set; then finishes in-flight outputs (bounded) and
/// commits. Outputs that fail retryably are re-sent with the same event id, with backoff,
/// forever: a record is never committed without its outputs, so nothing is lost.
class KafkaStage {
 public:
  /// `rabbit` may be null when the stage has no AMQP outputs.
  KafkaStage(StageOptions options, Handler handler, broker::Publisher& kafka, broker::Publisher* rabbit,
             telemetry::Registry& metrics);
  ~KafkaStage();
  KafkaStage(const KafkaStage&) = delete;
  KafkaStage& operator=(const KafkaStage&) = delete;

  void run(const std::atomic<bool>& stop);

  /// The consumer is in its group with partitions, and outputs are not stuck retrying.
  bool healthy() const noexcept;

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
