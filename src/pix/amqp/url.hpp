#pragma once
/// @file AMQP 0-9-1 connection URLs (`amqp://user:pass@host:port/vhost`, `amqps://` for TLS).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pix::amqp {

inline constexpr std::uint16_t kDefaultAmqpPort = 5672;
inline constexpr std::uint16_t kDefaultAmqpsPort = 5671;

/// @brief Where and as whom to connect. Holds a password: log `redacted()`, never the fields.
struct AmqpUrl {
  std::string user = "guest";
  std::string password = "guest";
  std::string host = "localhost";
  std::uint16_t port = kDefaultAmqpPort;
  std::string vhost = "/";
  /// `amqps://`: TLS 1.2+, the broker's certificate checked against `ca_file` (or the system's
  /// CAs) and its name or IP against `host`. Client certificate and key are optional.
  bool tls = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;

  /// The URL with the password replaced by `***`, safe for logs and error messages.
  std::string redacted() const;
};

/// @brief Outcome of parse_amqp_url(): exactly one of `url` and `error` is set.
struct AmqpUrlParse {
  std::optional<AmqpUrl> url;
  std::string error;  ///< what is wrong with the input; never contains the password

  explicit operator bool() const noexcept { return url.has_value(); }
};

/// @brief Parses `amqp[s]://[user[:password]@]host[:port][/vhost]`.
///
/// Missing parts take the defaults of AmqpUrl. User, password and vhost are percent-decoded
/// (`%2F` is the vhost `/`); an empty path or a lone `/` both mean the vhost `/`, because no
/// one means the empty vhost that RFC-strict parsing would give. IPv6 hosts go in brackets.
/// `amqps` means TLS on port 5671 unless one is given. Query strings and fragments are refused
/// rather than silently ignored (TLS files come from flags, not from the URL).
AmqpUrlParse parse_amqp_url(std::string_view text);

}  // namespace pix::amqp
