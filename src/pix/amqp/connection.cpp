#include "pix/amqp/connection.hpp"

#include <amqp_tcp_socket.h>
#include <sys/time.h>

namespace pix::amqp::detail {
namespace {

constexpr int kFrameMax = 131072;

timeval to_timeval(std::chrono::milliseconds d) noexcept {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

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

}  // namespace pix::amqp::detail
