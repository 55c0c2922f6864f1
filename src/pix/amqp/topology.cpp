#include "pix/amqp/topology.hpp"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

#include <array>
#include <string>
#include <utility>

#include "pix/domain/topics.hpp"

namespace pix::amqp {

namespace detail {
namespace {

constexpr amqp_channel_t kChannel = 1;
constexpr int kFrameMax = 131072;

timeval to_timeval(std::chrono::milliseconds d) noexcept {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

amqp_bytes_t bytes_of(std::string_view s) noexcept {
  amqp_bytes_t b;
  b.len = s.size();
  // rabbitmq-c only reads through this pointer; its struct is just not const-correct.
  b.bytes = const_cast<char*>(s.data());
  return b;
}

std::string string_of(amqp_bytes_t b) {
  return {static_cast<const char*>(b.bytes), b.len};
}

amqp_table_entry_t string_entry(std::string_view key, std::string_view value) noexcept {
  amqp_table_entry_t e{};
  e.key = bytes_of(key);
  e.value.kind = AMQP_FIELD_KIND_UTF8;
  e.value.value.bytes = bytes_of(value);
  return e;
}

amqp_table_entry_t long_entry(std::string_view key, std::int64_t value) noexcept {
  amqp_table_entry_t e{};
  e.key = bytes_of(key);
  e.value.kind = AMQP_FIELD_KIND_I64;
  e.value.value.i64 = value;
  return e;
}

template <std::size_t N>
amqp_table_t table_of(std::array<amqp_table_entry_t, N>& entries) noexcept {
  amqp_table_t t;
  t.num_entries = static_cast<int>(N);
  t.entries = entries.data();
  return t;
}

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

OpenedConnection open_connection(const AmqpUrl& url, std::chrono::milliseconds timeout, int heartbeat_s,
                                 std::string_view connection_name) {
  OpenedConnection result;
  amqp_connection_state_t conn = amqp_new_connection();
  if (conn == nullptr) {
    result.error = "cannot allocate an AMQP connection";
    return result;
  }
  amqp_socket_t* socket = amqp_tcp_socket_new(conn);  // owned by conn
  if (socket == nullptr) {
    amqp_destroy_connection(conn);
    result.error = "cannot allocate an AMQP socket";
    return result;
  }
  const timeval tv = to_timeval(timeout);
  const int status = amqp_socket_open_noblock(socket, url.host.c_str(), url.port, &tv);
  if (status != AMQP_STATUS_OK) {
    amqp_destroy_connection(conn);
    result.error = "cannot connect to " + url.host + ":" + std::to_string(url.port) + ": " + amqp_error_string2(status);
    return result;
  }
  amqp_set_handshake_timeout(conn, &tv);
  amqp_set_rpc_timeout(conn, &tv);

  // Without this capability the broker never says why it stopped reading (resource alarm), and a
  // publisher would just see its writes stall.
  std::array<amqp_table_entry_t, 1> capabilities{};
  capabilities[0].key = amqp_cstring_bytes("connection.blocked");
  capabilities[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
  capabilities[0].value.value.boolean = 1;
  std::array<amqp_table_entry_t, 2> properties{};
  properties[0] = string_entry("connection_name", connection_name);
  properties[1].key = amqp_cstring_bytes("capabilities");
  properties[1].value.kind = AMQP_FIELD_KIND_TABLE;
  properties[1].value.value.table = table_of(capabilities);
  const amqp_table_t client_properties = table_of(properties);

  const amqp_rpc_reply_t reply =
      amqp_login_with_properties(conn, url.vhost.c_str(), 0, kFrameMax, heartbeat_s, &client_properties,
                                 AMQP_SASL_METHOD_PLAIN, url.user.c_str(), url.password.c_str());
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
    result.error = "login to " + url.redacted() + " failed: " + describe_rpc_reply(reply);
    amqp_destroy_connection(conn);
    return result;
  }
  result.conn = conn;
  return result;
}

void close_connection(amqp_connection_state_t conn) noexcept {
  if (conn == nullptr) return;
  // The reply does not matter: the connection is destroyed either way, and the RPC timeout set
  // in open_connection() bounds the wait for close-ok.
  amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn);
}

std::string describe_rpc_reply(const amqp_rpc_reply_t& reply) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "ok";
    case AMQP_RESPONSE_NONE:
      return "no RPC reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return amqp_error_string2(reply.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* m = static_cast<const amqp_connection_close_t*>(reply.reply.decoded);
        return "broker closed the connection: " + std::to_string(m->reply_code) + " " + string_of(m->reply_text);
      }
      if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* m = static_cast<const amqp_channel_close_t*>(reply.reply.decoded);
        return "broker closed the channel: " + std::to_string(m->reply_code) + " " + string_of(m->reply_text);
      }
      return std::string{"unexpected broker method "} + amqp_method_name(reply.reply.id);
  }
  return "unknown RPC reply type";
}

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
