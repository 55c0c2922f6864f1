#pragma once
/// @file RabbitMQ publisher that answers kAcked only after the broker's publisher confirm.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "pix/amqp/url.hpp"
#include "pix/broker/publisher.hpp"

namespace pix::amqp {

/// @brief Pipelined, confirmed AMQP 0-9-1 publisher over one connection owned by one thread.
///
/// kAcked means: the broker sent basic.ack for the message, it was published persistent
/// (delivery_mode 2) and mandatory, and no basic.return came back for it. Everything else is an
/// honest failure: kBrokerUnavailable while disconnected/blocked or on basic.nack, kQueueFull at
/// `max_in_flight`, kTimedOut when the confirm did not arrive in time or the connection dropped
/// after the message was sent (it may exist), kRejected when it was unroutable.
///
/// Threads: publish() and probe() may be called from any thread and never block on the network.
/// Broker verdicts are delivered on the publisher's own thread. Local refusals (disconnected,
/// blocked, queue full, shutting down) are delivered synchronously inside publish()/probe() on
/// the caller's thread, before it returns, so that a caller is never kept waiting while the
/// broker is down; callbacks must therefore not take a lock the caller holds around publish().
/// Callbacks must not block and must not call drain().
///
/// While the broker is away the thread reconnects by itself, with exponential backoff.
class ConfirmPublisher final : public broker::Publisher {
 public:
  struct Options {
    AmqpUrl url;
    std::string exchange = "pix";
    /// Queued plus sent-but-unconfirmed events beyond which publish() answers kQueueFull.
    std::size_t max_in_flight = 20'000;
    /// A sent event without a confirm after this long is answered kTimedOut.
    std::chrono::milliseconds confirm_timeout{5000};
    /// Bounds the TCP connect, the login and every setup round trip of one attempt.
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::seconds heartbeat{10};
    std::chrono::milliseconds reconnect_backoff_initial{100};
    std::chrono::milliseconds reconnect_backoff_max{2000};
    /// A readiness probe without an answer after this long reports not ready.
    std::chrono::milliseconds probe_timeout{2000};
    /// Shown in the management UI, so that operators can tell our connections apart.
    std::string connection_name = "pix-pubsub publisher";
  };

  /// Starts the publisher thread, which connects in the background: publish() answers
  /// kBrokerUnavailable until the first connection is up (see wait_connected()).
  explicit ConfirmPublisher(Options options);
  /// Drains with `confirm_timeout` as the deadline: may block for about
  /// confirm_timeout + connect_timeout.
  ~ConfirmPublisher() override;

  ConfirmPublisher(const ConfirmPublisher&) = delete;
  ConfirmPublisher& operator=(const ConfirmPublisher&) = delete;

  void publish(broker::OutboundEvent event, broker::PublishCallback done) override;
  /// Sends a passive exchange.declare for the configured exchange on a side channel: ready only
  /// if the broker answers and the exchange exists.
  void probe(broker::ProbeCallback done) override;
  std::size_t drain(std::chrono::milliseconds deadline) override;
  std::size_t in_flight() const noexcept override;

  /// True while a connection with confirms enabled is up and the broker is not blocking it.
  bool connected() const noexcept;
  /// Waits until connected() or `timeout`; returns connected(). For start-up and tests.
  bool wait_connected(std::chrono::milliseconds timeout) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pix::amqp
