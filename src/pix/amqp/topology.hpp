#pragma once
/// @file Declares (and, for tests, removes) the RabbitMQ exchanges and queues that PIX events go to.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pix/amqp/url.hpp"

namespace pix::amqp {

/// @brief What declare_topology() builds. The defaults are the production topology.
struct TopologyOptions {
  std::string exchange = "pix";
  /// One durable quorum queue per key, named `queue_prefix + key`, bound to `exchange` by the key.
  std::vector<std::string> routing_keys = default_routing_keys();
  /// Prepended to the per-key queue names, so that tests can build an isolated copy; empty in
  /// production, where the queues carry the routing keys' names.
  std::string queue_prefix;
  /// x-max-length of every bounded queue; beyond it publishes are nacked (x-overflow reject-publish).
  std::int64_t max_length = 1'000'000;
  /// Bounds the TCP connect, the login and each declare round trip.
  std::chrono::milliseconds timeout{5000};

  /// The five PIX routing keys of the seed's contract.
  static std::vector<std::string> default_routing_keys();
};

/// @brief The derived names, in one place so that producers, tests and dashboards agree.
struct TopologyNames {
  std::string exchange;              ///< durable topic exchange events are published to
  std::string unrouted;              ///< fanout alternate exchange, and the quorum queue behind it
  std::string dead_letter_exchange;  ///< `<exchange>.dlx`, topic
  std::string dead_letter_queue;     ///< `<exchange>.dead-letter`, bound `#`
  std::vector<std::string> queues;   ///< the per-routing-key queues, in routing_keys order
};

TopologyNames topology_names(const TopologyOptions& options);

/// @brief Outcome of a synchronous broker operation: empty `error` means success.
struct AmqpOpResult {
  std::string error;
  explicit operator bool() const noexcept { return error.empty(); }
};

/// @brief Declares the exchanges, queues and bindings of `options` on their own short-lived connection.
///
/// Idempotent: declaring again with the same options succeeds. Fails (with the broker's reason)
/// when something of the same name exists with other arguments. Blocks up to a few `timeout`s.
AmqpOpResult declare_topology(const AmqpUrl& url, const TopologyOptions& options);

/// @brief Deletes an exchange (absent is fine). For tests and tooling, not for production paths.
AmqpOpResult delete_exchange(const AmqpUrl& url, std::string_view name,
                             std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});

/// @brief Deletes a queue and its messages (absent is fine). For tests and tooling.
AmqpOpResult delete_queue(const AmqpUrl& url, std::string_view name,
                          std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});

/// @brief Deletes every exchange and queue declare_topology(options) creates. For tests.
AmqpOpResult delete_topology(const AmqpUrl& url, const TopologyOptions& options);

}  // namespace pix::amqp
