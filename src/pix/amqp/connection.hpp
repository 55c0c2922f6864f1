#pragma once
/// @file rabbitmq-c plumbing shared by the topology functions, the confirm publisher, the
/// consumer and the tests' consumer: logging in with bounded waits, closing, describing RPC
/// failures, and the small conversions rabbitmq-c's C structs need.

#include <amqp.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "pix/amqp/url.hpp"

typedef struct ssl_st SSL;

namespace pix::amqp::detail {

/// A view of `s` as rabbitmq-c bytes (no copy: `s` must outlive the use).
inline amqp_bytes_t bytes_of(std::string_view s) noexcept {
  amqp_bytes_t b;
  b.len = s.size();
  // rabbitmq-c only reads through this pointer; its struct is just not const-correct.
  b.bytes = const_cast<char*>(s.data());
  return b;
}

/// A copy of rabbitmq-c bytes (empty bytes may carry a null pointer).
inline std::string string_of(amqp_bytes_t b) {
  if (b.len == 0) return {};
  return {static_cast<const char*>(b.bytes), b.len};
}

/// A field-table entry holding a UTF-8 string; both views must outlive the table.
inline amqp_table_entry_t string_entry(std::string_view key, std::string_view value) noexcept {
  amqp_table_entry_t e{};
  e.key = bytes_of(key);
  e.value.kind = AMQP_FIELD_KIND_UTF8;
  e.value.value.bytes = bytes_of(value);
  return e;
}

/// A field-table entry holding a signed 64-bit integer.
inline amqp_table_entry_t long_entry(std::string_view key, std::int64_t value) noexcept {
  amqp_table_entry_t e{};
  e.key = bytes_of(key);
  e.value.kind = AMQP_FIELD_KIND_I64;
  e.value.value.i64 = value;
  return e;
}

/// A field table over `entries` (no copy).
template <std::size_t N>
amqp_table_t table_of(std::array<amqp_table_entry_t, N>& entries) noexcept {
  amqp_table_t t;
  t.num_entries = static_cast<int>(N);
  t.entries = entries.data();
  return t;
}

/// @brief A logged-in rabbitmq-c connection, or why there is none.
struct OpenedConnection {
  amqp_connection_state_t conn = nullptr;
  std::string error;
  SSL* ssl = nullptr;  ///< the TLS session of an amqps:// connection (owned by `conn`), else null
};

/// Connects and logs in, every step bounded by `timeout` (rabbitmq-c would otherwise wait for
/// the kernel's TCP timeout). Asks for `connection.blocked` notifications. For `amqps://`: TLS
/// 1.2 or 1.3, the peer's chain checked against the URL's CA file (else the system's CAs) and
/// its certificate's name or IP address against the URL's host, by OpenSSL itself.
OpenedConnection open_connection(const AmqpUrl& url, std::chrono::milliseconds timeout, int heartbeat_s,
                                 std::string_view connection_name);

/// @brief Non-blocking byte I/O on an opened connection's socket, through its TLS session when
/// it has one: what the confirm publisher uses once it owns the socket.
class Transport {
 public:
  Transport() = default;
  Transport(int fd, SSL* ssl) noexcept;

  /// Bytes written (> 0), 0 when the socket would block, -1 on failure (`error()` says why).
  long send_some(const void* data, std::size_t size);
  /// Bytes read (> 0), 0 when nothing is there now, -1 on failure or when the peer closed.
  long recv_some(void* data, std::size_t size);
  /// Decrypted bytes held inside TLS that poll() on the socket would not report.
  bool buffered() const noexcept;
  /// TLS may need to write before it can read again (or the reverse): poll for both then.
  bool wants_both_directions() const noexcept { return wants_both_; }
  int fd() const noexcept { return fd_; }
  const std::string& error() const noexcept { return error_; }

 private:
  long tls_result(int n, bool reading);
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  bool wants_both_ = false;
  std::string error_;
};

/// Closes politely (bounded by the connection's RPC timeout) and frees the connection.
void close_connection(amqp_connection_state_t conn) noexcept;

/// A one-line description of a failed rabbitmq-c RPC, including the broker's reply code and text.
std::string describe_rpc_reply(const amqp_rpc_reply_t& reply);

}  // namespace pix::amqp::detail
