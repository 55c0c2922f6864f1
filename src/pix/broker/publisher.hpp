#pragma once
/// @file Broker-neutral publishing contract shared by the Kafka and AMQP publishers.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pix::broker {

/// @brief Outcome class of one publish. Only kAcked may ever become an HTTP 200.
enum class PublishStatus {
  kAcked,              ///< the broker holds the event (Kafka delivery report / AMQP confirm)
  kBrokerUnavailable,  ///< not connected, or the broker refused before taking it: retryable (503)
  kQueueFull,          ///< local in-flight limit reached: retryable (503)
  kTimedOut,           ///< no ack within the deadline: the event may exist (504)
  kRejected,           ///< nack, basic.return (unroutable), or a permanent broker error (502)
  kShuttingDown,       ///< the publisher is draining and takes no new work (503)
  /// AMQP basic.nack: a queue refused it (full, or its process failed), but another queue it
  /// routes to may hold a copy, so the event may exist (504, retryable with the same id)
  kNacked,
};

std::string_view to_string(PublishStatus s) noexcept;

/// @brief True when the client may retry the same request (with the same event id).
constexpr bool is_retryable(PublishStatus s) noexcept {
  return s == PublishStatus::kBrokerUnavailable || s == PublishStatus::kQueueFull || s == PublishStatus::kTimedOut ||
         s == PublishStatus::kShuttingDown || s == PublishStatus::kNacked;
}

struct PublishResult {
  PublishStatus status = PublishStatus::kBrokerUnavailable;
  std::string detail;           ///< human-readable reason when not acked
  std::int32_t partition = -1;  ///< Kafka only
  std::int64_t offset = -1;     ///< Kafka only
};

struct Header {
  std::string name;
  std::string value;
};

/// @brief One event as it goes on the wire. For AMQP `topic` is the routing key.
struct OutboundEvent {
  std::string topic;
  std::string key;  ///< Kafka record key (the payer on requested events); unused by AMQP
  /// Kafka partition to write to; -1 (the default) lets the key choose. Unused by AMQP.
  std::int32_t partition = -1;
  std::string payload;  ///< the `value` JSON, serialized
  std::string id;       ///< event id: AMQP message_id, CloudEvents ce_id
  std::string content_type = "application/json";
  std::int64_t timestamp_ms = 0;  ///< event time, ms since the Unix epoch
  std::vector<Header> headers;    ///< already prefixed (ce_* / cloudEvents_*) plus traceparent

  /// Replaces the header's value (the first of that name), or adds it.
  void set_header(std::string_view name, std::string value);
};

/// @brief Called exactly once per publish, on a broker thread; must not block.
using PublishCallback = std::function<void(PublishResult)>;
/// @brief Called exactly once per readiness probe, on a broker thread; must not block.
using ProbeCallback = std::function<void(bool ready, std::string detail)>;

/// @brief A pipelined, acknowledged publisher. Thread-safe.
class Publisher {
 public:
  virtual ~Publisher() = default;
  /// Queue an event; `done` fires once with the broker's verdict or a local failure.
  /// Many publishes are in flight at once; ordering per key is kept.
  virtual void publish(OutboundEvent event, PublishCallback done) = 0;
  /// Check, by a real round trip to the broker, that publishing can succeed now.
  virtual void probe(ProbeCallback done) = 0;
  /// Stop taking new events and wait (bounded) until every queued event has its verdict.
  /// Returns the number of events still without a verdict at the deadline. May block.
  virtual std::size_t drain(std::chrono::milliseconds deadline) = 0;
  /// Events handed over and not yet answered.
  virtual std::size_t in_flight() const noexcept = 0;
};

}  // namespace pix::broker
