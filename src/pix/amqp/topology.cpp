#include "pix/amqp/topology.hpp"

#include <amqp.h>

#include <array>
#include <string>
#include <utility>

#include "pix/amqp/connection.hpp"
#include "pix/domain/topics.hpp"

namespace pix::amqp {

namespace detail {
namespace {

constexpr amqp_channel_t kChannel = 1;
/// One connection with one channel, for a handful of synchronous declare/delete round trips.
class Session {
 public:
  Session(const AmqpUrl& url, std::chrono::milliseconds timeout, std::string_view name) {
    OpenedConnection opened = open_connection(url, timeout, 0, name);
    if (opened.conn == nullptr) {
      error_ = std::move(opened.error);
      return;
    }
    conn_ = opened.conn;
    amqp_channel_open(conn_, kChannel);
    check("channel.open");
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() {
    if (conn_ == nullptr) return;
    if (server_closed_connection_) {
      amqp_connection_close_ok_t ok{};
      amqp_send_method(conn_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
      amqp_destroy_connection(conn_);
    } else {
      close_connection(conn_);
    }
  }

  bool ok() const noexcept { return error_.empty(); }
  const std::string& error() const noexcept { return error_; }
  amqp_connection_state_t conn() const noexcept { return conn_; }

  /// Records the failure of the RPC just made; later calls are skipped once one failed, since
  /// the broker closes the channel on the first error.
  bool check(std::string_view what) {
    if (!ok()) return false;
    const amqp_rpc_reply_t reply = amqp_get_rpc_reply(conn_);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) return true;
    if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
      server_closed_connection_ = true;
    }
    error_ = std::string{what} + " failed: " + describe_rpc_reply(reply);
    return false;
  }

  bool declare_exchange(std::string_view name, std::string_view type, amqp_table_t args) {
    if (!ok()) return false;
    amqp_exchange_declare(conn_, kChannel, bytes_of(name), bytes_of(type), 0, 1, 0, 0, args);
    return check("exchange.declare '" + std::string{name} + "'");
  }

  bool declare_queue(std::string_view name, amqp_table_t args) {
    if (!ok()) return false;
    amqp_queue_declare(conn_, kChannel, bytes_of(name), 0, 1, 0, 0, args);
    return check("queue.declare '" + std::string{name} + "'");
  }

  bool bind(std::string_view queue, std::string_view exchange, std::string_view key) {
    if (!ok()) return false;
    amqp_queue_bind(conn_, kChannel, bytes_of(queue), bytes_of(exchange), bytes_of(key), amqp_empty_table);
    return check("queue.bind '" + std::string{queue} + "' to '" + std::string{exchange} + "' by '" + std::string{key} +
                 "'");
  }

  bool delete_exchange(std::string_view name) {
    if (!ok()) return false;
    amqp_exchange_delete(conn_, kChannel, bytes_of(name), 0);
    return check("exchange.delete '" + std::string{name} + "'");
  }

  bool delete_queue(std::string_view name) {
    if (!ok()) return false;
    amqp_queue_delete(conn_, kChannel, bytes_of(name), 0, 0);
    return check("queue.delete '" + std::string{name} + "'");
  }

 private:
  amqp_connection_state_t conn_ = nullptr;
  std::string error_;
  bool server_closed_connection_ = false;
};

}  // namespace

}  // namespace detail

std::vector<std::string> TopologyOptions::default_routing_keys() {
  return {domain::kTopicNames.begin(), domain::kTopicNames.end()};
}

TopologyNames topology_names(const TopologyOptions& options) {
  TopologyNames names;
  names.exchange = options.exchange;
  names.unrouted = options.exchange + ".unrouted";
  names.dead_letter_exchange = options.exchange + ".dlx";
  names.dead_letter_queue = options.exchange + ".dead-letter";
  names.queues.reserve(options.routing_keys.size());
  for (const auto& key : options.routing_keys) names.queues.push_back(options.queue_prefix + key);
  return names;
}

AmqpOpResult declare_topology(const AmqpUrl& url, const TopologyOptions& options) {
  using detail::long_entry;
  using detail::string_entry;
  using detail::table_of;
  const TopologyNames names = topology_names(options);
  detail::Session session(url, options.timeout, "pix-pubsub topology");

  // The alternate exchange catches whatever no binding takes, so a publish to the main exchange
  // is never returned as unroutable and never silently dropped.
  std::array<amqp_table_entry_t, 3> unrouted_args = {
      string_entry("x-queue-type", "quorum"),
      long_entry("x-max-length", options.max_length),
      string_entry("x-overflow", "reject-publish"),
  };
  session.declare_exchange(names.unrouted, "fanout", amqp_empty_table);
  session.declare_queue(names.unrouted, table_of(unrouted_args));
  session.bind(names.unrouted, names.unrouted, "");

  // Unbounded on purpose: with at-least-once dead-lettering a full target would stall the
  // source queues instead of dropping.
  std::array<amqp_table_entry_t, 1> dead_letter_args = {string_entry("x-queue-type", "quorum")};
  session.declare_exchange(names.dead_letter_exchange, "topic", amqp_empty_table);
  session.declare_queue(names.dead_letter_queue, table_of(dead_letter_args));
  session.bind(names.dead_letter_queue, names.dead_letter_exchange, "#");

  std::array<amqp_table_entry_t, 1> exchange_args = {string_entry("alternate-exchange", names.unrouted)};
  session.declare_exchange(names.exchange, "topic", table_of(exchange_args));

  // at-least-once dead-lettering is only accepted together with reject-publish overflow.
  std::array<amqp_table_entry_t, 5> queue_args = {
      string_entry("x-queue-type", "quorum"),
      string_entry("x-dead-letter-exchange", names.dead_letter_exchange),
      string_entry("x-dead-letter-strategy", "at-least-once"),
      string_entry("x-overflow", "reject-publish"),
      long_entry("x-max-length", options.max_length),
  };
  for (std::size_t i = 0; i < names.queues.size(); ++i) {
    session.declare_queue(names.queues[i], table_of(queue_args));
    session.bind(names.queues[i], names.exchange, options.routing_keys[i]);
  }
  return AmqpOpResult{session.error()};
}

AmqpOpResult delete_exchange(const AmqpUrl& url, std::string_view name, std::chrono::milliseconds timeout) {
  detail::Session session(url, timeout, "pix-pubsub topology");
  session.delete_exchange(name);
  return AmqpOpResult{session.error()};
}

AmqpOpResult delete_queue(const AmqpUrl& url, std::string_view name, std::chrono::milliseconds timeout) {
  detail::Session session(url, timeout, "pix-pubsub topology");
  session.delete_queue(name);
  return AmqpOpResult{session.error()};
}

AmqpOpResult delete_topology(const AmqpUrl& url, const TopologyOptions& options) {
  const TopologyNames names = topology_names(options);
  detail::Session session(url, options.timeout, "pix-pubsub topology");
  for (const auto& queue : names.queues) session.delete_queue(queue);
  session.delete_queue(names.unrouted);
  session.delete_queue(names.dead_letter_queue);
  session.delete_exchange(names.exchange);
  session.delete_exchange(names.unrouted);
  session.delete_exchange(names.dead_letter_exchange);
  return AmqpOpResult{session.error()};
}

}  // namespace pix::amqp
