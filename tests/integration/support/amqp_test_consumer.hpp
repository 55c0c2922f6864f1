#pragma once
/// @file Test-side RabbitMQ helpers: the broker's address, a consumer on a throw-away queue,
/// and small synchronous admin calls.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pix/amqp/topology.hpp"
#include "pix/amqp/url.hpp"

struct amqp_connection_state_t_;  // rabbitmq-c's handle, so that <amqp.h> stays out of the tests

namespace pix::test {

/// @brief The RabbitMQ the integration tests run against.
struct TestRabbit {
  /// `PIX_RABBIT_URL`, or amqp://guest:guest@127.0.0.1:5672/ when unset.
  static std::string url_text();
  /// url_text() parsed; aborts the test run on a malformed variable.
  static amqp::AmqpUrl url();
  /// `prefix` plus a random suffix, so that runs and tests never share exchanges or queues.
  static std::string unique_name(std::string_view prefix);
};

/// @brief One delivery as the consumer saw it.
struct ReceivedMessage {
  std::string routing_key;
  std::string body;
  std::uint8_t delivery_mode = 0;
  std::string content_type;
  std::string message_id;
  std::uint64_t timestamp = 0;
  std::string app_id;
  std::map<std::string, std::string> headers;  ///< string-valued headers only
};

/// @brief Consumes, without acks, from an exclusive auto-delete queue bound to an exchange.
/// The queue disappears with the consumer's connection.
class AmqpTestConsumer {
 public:
  AmqpTestConsumer(const amqp::AmqpUrl& url, std::string_view exchange, std::string_view binding_key);
  ~AmqpTestConsumer();
  AmqpTestConsumer(const AmqpTestConsumer&) = delete;
  AmqpTestConsumer& operator=(const AmqpTestConsumer&) = delete;

  /// Empty when the consumer is ready; otherwise why not.
  const std::string& error() const noexcept { return error_; }
  const std::string& queue() const noexcept { return queue_; }

  /// Returns once `n` messages arrived or `timeout` passed, with what arrived so far.
  std::vector<ReceivedMessage> receive(std::size_t n, std::chrono::milliseconds timeout);

 private:
  amqp_connection_state_t_* conn_ = nullptr;
  std::string queue_;
  std::string error_;
};

/// @brief Declares a non-durable topic exchange WITHOUT an alternate exchange (so that
/// unroutable publishes are returned). Delete it with amqp::delete_exchange().
amqp::AmqpOpResult declare_plain_exchange(const amqp::AmqpUrl& url, std::string_view name);

/// @brief The number of ready messages in `queue` (passive queue.declare), or nullopt with the
/// reason in `error` when the queue cannot be inspected.
std::optional<std::uint32_t> queue_message_count(const amqp::AmqpUrl& url, std::string_view queue,
                                                 std::string* error = nullptr);

/// @brief Waits until every quorum queue of a topology answers a dequeue (its leader elected and
/// applying commands), then a moment for its dead-letter worker. Call it before deleting queues
/// right after the broker restarted: RabbitMQ 3.10 loses its dead-letter supervisor (and every
/// later at-least-once queue.declare fails with 541 INTERNAL_ERROR) when a quorum queue is
/// deleted while its dead-letter worker is still starting. Consumes what the queues hold.
/// Empty on success, else why.
std::string settle_quorum_queues(const amqp::AmqpUrl& url, const amqp::TopologyOptions& options);

}  // namespace pix::test
