#pragma once
/// @file A RabbitMQ consumer with manual acks and automatic reconnection (rabbitmq-c, one thread).

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pix/amqp/url.hpp"

struct amqp_connection_state_t_;

namespace pix::amqp {

/// @brief One delivered message, copied out of rabbitmq-c.
struct Delivery {
  std::uint64_t tag = 0;
  std::uint64_t connection = 0;  ///< which connection delivered it: acks only count on that one
  bool redelivered = false;
  std::string exchange;
  std::string routing_key;
  std::string body;
  std::string message_id;
  std::string content_type;
  std::uint64_t timestamp = 0;
  std::map<std::string, std::string> headers;  ///< string and integer headers, as text

  const std::string& header(const std::string& name) const;
};

struct ConsumerOptions {
  AmqpUrl url;
  /// A queue to consume (declared elsewhere, e.g. by the topology). Empty: a server-named,
  /// exclusive, auto-delete queue bound to `exchange` with `bindings`.
  std::string queue;
  std::string exchange = "pix";
  std::vector<std::string> bindings;
  std::uint16_t prefetch = 256;
  std::string connection_name = "pix-pubsub consumer";
  std::chrono::milliseconds connect_timeout{2000};
};

/// @brief Consumes with manual acknowledgement. Not thread-safe: one thread calls everything.
///
/// next() (re)connects as needed, with backoff, and logs state changes; deliveries from a lost
/// connection cannot be acked any more (the broker redelivers them), so ack() ignores them.
class AmqpConsumer {
 public:
  explicit AmqpConsumer(ConsumerOptions options);
  ~AmqpConsumer();
  AmqpConsumer(const AmqpConsumer&) = delete;
  AmqpConsumer& operator=(const AmqpConsumer&) = delete;

  /// The next delivery, or nullopt after `timeout` or while the broker is unreachable.
  std::optional<Delivery> next(std::chrono::milliseconds timeout);
  /// Acknowledge (the effect is durable) or reject (requeue or dead-letter) a delivery.
  void ack(const Delivery& d);
  void reject(const Delivery& d, bool requeue);
  bool connected() const noexcept { return conn_ != nullptr; }
  /// The queue being consumed (the server-generated name for an exclusive one).
  const std::string& queue() const noexcept { return queue_; }

 private:
  bool connect();
  void disconnect(const std::string& why);

  ConsumerOptions options_;
  amqp_connection_state_t_* conn_ = nullptr;
  std::uint64_t generation_ = 0;
  std::string queue_;
  std::chrono::steady_clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_{100};
};

}  // namespace pix::amqp
