#include "pix/amqp/connection.hpp"
#include "pix/util/text.hpp"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pix::amqp::detail {
namespace {

constexpr int kFrameMax = 131072;

timeval to_timeval(std::chrono::milliseconds d) noexcept {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

bool is_ip_literal(const std::string& host) noexcept {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "no detail from OpenSSL";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// rabbitmq-c keeps its SSL object to itself; the context's info callback, called with it during
// the handshake, is the public way to learn it (the confirm publisher reads and writes through it).
void remember_ssl(const SSL* ssl, int where, int /*ret*/) {
  if ((where & SSL_CB_HANDSHAKE_START) == 0) return;
  auto** slot = static_cast<SSL**>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  if (slot != nullptr) *slot = const_cast<SSL*>(ssl);
}

// A TLS socket whose peer checks are OpenSSL's own: chain, then host name or IP address
// (rabbitmq-c 0.11's own host check knows no IP SANs, so it stays off).
amqp_socket_t* tls_socket(amqp_connection_state_t conn, const AmqpUrl& url, SSL** ssl_slot, std::string& error) {
  amqp_socket_t* socket = amqp_ssl_socket_new(conn);
  if (socket == nullptr) {
    error = "cannot allocate an AMQP TLS socket";
    return nullptr;
  }
  auto* ctx = static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(socket));
  if (amqp_ssl_socket_set_ssl_versions(socket, AMQP_TLSv1_2, AMQP_TLSvLATEST) != AMQP_STATUS_OK) {
    error = "TLS 1.2+ is not available";
    return nullptr;
  }
  if (!url.ca_file.empty()) {
    if (amqp_ssl_socket_set_cacert(socket, url.ca_file.c_str()) != AMQP_STATUS_OK) {
      error = "cannot load the CA file " + url.ca_file + ": " + openssl_error();
      return nullptr;
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    error = "cannot load the system's CA certificates: " + openssl_error();
    return nullptr;
  }
  if (!url.cert_file.empty() &&
      amqp_ssl_socket_set_key(socket, url.cert_file.c_str(), url.key_file.c_str()) != AMQP_STATUS_OK) {
    error = "cannot load the client certificate " + url.cert_file + " / key " + url.key_file + ": " + openssl_error();
    return nullptr;
  }
  amqp_ssl_socket_set_verify_peer(socket, 1);
  amqp_ssl_socket_set_verify_hostname(socket, 0);
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const int named = is_ip_literal(url.host) ? X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str())
                                            : X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0);
  if (named != 1) {
    error = "cannot check the broker's certificate against host " + url.host;
    return nullptr;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_app_data(ctx, ssl_slot);
  SSL_CTX_set_info_callback(ctx, remember_ssl);
  return socket;
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
  SSL* ssl = nullptr;
  std::string tls_error;
  amqp_socket_t* socket =
      url.tls ? tls_socket(conn, url, &ssl, tls_error) : amqp_tcp_socket_new(conn);  // owned by conn
  if (socket == nullptr) {
    amqp_destroy_connection(conn);
    result.error = tls_error.empty() ? "cannot allocate an AMQP socket" : tls_error;
    return result;
  }
  const timeval tv = to_timeval(timeout);
  const int status = amqp_socket_open_noblock(socket, url.host.c_str(), url.port, &tv);
  if (url.tls) {
    auto* ctx = static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(socket));
    SSL_CTX_set_info_callback(ctx, nullptr);
    SSL_CTX_set_app_data(ctx, nullptr);
  }
  if (status != AMQP_STATUS_OK) {
    std::string why = amqp_error_string2(status);
    if (url.tls && (status == AMQP_STATUS_SSL_ERROR || status == AMQP_STATUS_SSL_PEER_VERIFY_FAILED ||
                    status == AMQP_STATUS_SSL_CONNECTION_FAILED)) {
      const long verify = ssl != nullptr ? SSL_get_verify_result(ssl) : X509_V_OK;
      why += verify != X509_V_OK ? std::string(" (") + X509_verify_cert_error_string(verify) + ")"
                                 : " (" + openssl_error() + ")";
    }
    amqp_destroy_connection(conn);
    result.error =
        "cannot connect to " + url.host + ":" + std::to_string(url.port) + (url.tls ? " (TLS)" : "") + ": " + why;
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
  result.ssl = ssl;
  return result;
}

Transport::Transport(int fd, SSL* ssl) noexcept : fd_(fd), ssl_(ssl) {
  // Our writes resume from a buffer that moves and may stop part way; TLS must allow both.
  if (ssl_ == nullptr) return;
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // SSL_read/SSL_write have no MSG_DONTWAIT: the socket itself must not block (rabbitmq-c's own
  // TLS calls already cope with WANT_READ/WANT_WRITE).
  const int flags = ::fcntl(fd_, F_GETFL, 0);
  if (flags >= 0 && (flags & O_NONBLOCK) == 0) ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
}

long Transport::tls_result(int n, bool reading) {
  if (n > 0) {
    wants_both_ = false;
    return n;
  }
  const int e = SSL_get_error(ssl_, n);
  switch (e) {
    case SSL_ERROR_WANT_READ:
      wants_both_ = !reading;
      return 0;
    case SSL_ERROR_WANT_WRITE:
      wants_both_ = reading;
      return 0;
    case SSL_ERROR_ZERO_RETURN:
      error_ = "the broker closed the TLS session";
      return -1;
    case SSL_ERROR_SYSCALL:
      error_ = errno != 0 ? std::string("TLS ") + (reading ? "read" : "write") + " failed: " + util::errno_text(errno)
                          : "the broker closed the TCP connection";
      return -1;
    default:
      error_ = std::string("TLS ") + (reading ? "read" : "write") + " failed: " + openssl_error();
      return -1;
  }
}

long Transport::send_some(const void* data, std::size_t size) {
  if (ssl_ != nullptr) {
    ERR_clear_error();
    errno = 0;
    return tls_result(SSL_write(ssl_, data, static_cast<int>(std::min<std::size_t>(size, 1U << 30U))), false);
  }
  for (;;) {
    const ssize_t n = ::send(fd_, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    error_ = std::string{"write failed: "} + util::errno_text(errno);
    return -1;
  }
}

long Transport::recv_some(void* data, std::size_t size) {
  if (ssl_ != nullptr) {
    ERR_clear_error();
    errno = 0;
    return tls_result(SSL_read(ssl_, data, static_cast<int>(std::min<std::size_t>(size, 1U << 30U))), true);
  }
  for (;;) {
    const ssize_t n = ::recv(fd_, data, size, MSG_DONTWAIT);
    if (n > 0) return n;
    if (n == 0) {
      error_ = "the broker closed the TCP connection";
      return -1;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    error_ = std::string{"read failed: "} + util::errno_text(errno);
    return -1;
  }
}

bool Transport::buffered() const noexcept {
  return ssl_ != nullptr && SSL_pending(ssl_) > 0;
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
