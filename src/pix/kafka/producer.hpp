#pragma once
/// @file Idempotent, acknowledged Kafka publishing over librdkafka.

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "pix/broker/publisher.hpp"

namespace pix::kafka {

/// @brief Settings of the Kafka producer. `extra` passes any librdkafka property through
/// (SASL, TLS, compression...), applied last.
struct ProducerOptions {
  std::string bootstrap_servers = "127.0.0.1:9092";
  std::string client_id = "pix-api";
  int linger_ms = 5;
  std::chrono::milliseconds ack_timeout{5000};  ///< message.timeout.ms: after it the verdict is kTimedOut
  std::size_t max_in_flight = 20000;
  std::map<std::string, std::string> extra;
};

/// @brief Publisher whose kAcked means: acks=all, idempotent producer, delivery report in hand.
///
/// Broker reachability is tracked (librdkafka's all-brokers-down error, delivery reports and a
/// metadata round trip every second while down) so that a publish while the broker is away is
/// answered kBrokerUnavailable at once instead of waiting out the ack timeout. A fatal
/// idempotence error recreates the producer and re-sends what the old one had not delivered,
/// under the same event ids.
class KafkaPublisher final : public broker::Publisher {
 public:
  explicit KafkaPublisher(ProducerOptions options);
  /// Drains (bounded by the ack timeout): may block.
  ~KafkaPublisher() override;
  KafkaPublisher(const KafkaPublisher&) = delete;
  KafkaPublisher& operator=(const KafkaPublisher&) = delete;

  void publish(broker::OutboundEvent event, broker::PublishCallback done) override;
  void probe(broker::ProbeCallback done) override;
  std::size_t drain(std::chrono::milliseconds deadline) override;
  std::size_t in_flight() const noexcept override;

  /// True while the last evidence says a broker is reachable.
  bool broker_up() const noexcept;

  /// For tests: raises a fatal idempotent-producer error (librdkafka's rd_kafka_test_fatal_error),
  /// as a broker-side sequence error would, so that the recreate path runs.
  void inject_fatal_error(const char* reason);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pix::kafka
