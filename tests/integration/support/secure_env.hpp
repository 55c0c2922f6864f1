#pragma once
// The secure broker profile the security tests run against: its state directory (CA, passwords,
// one env file per component, as scripts/local/credentials.sh writes them) and what a test needs
// from it to act as one component or another.

#include <map>
#include <optional>
#include <string>

#include "pix/amqp/url.hpp"

namespace pix::test {

/// @brief One component's credentials, read from `$PIX_SECURE_STATE/credentials/env/<name>.env`.
class SecureEnv {
 public:
  /// The profile in PIX_SECURE_STATE; nullopt when the variable is unset (tests then skip).
  static std::optional<SecureEnv> from_environment();

  const std::string& state() const { return state_; }
  std::string ca_file() const { return state_ + "/tls/ca.crt"; }
  std::string server_cert() const { return state_ + "/tls/server.crt"; }
  std::string server_key() const { return state_ + "/tls/server.key"; }

  /// The variables of `component`'s env file (PIX_KAFKA_*, PIX_RABBIT_*), as a child process gets them.
  std::map<std::string, std::string> env(const std::string& component) const;
  /// librdkafka properties for acting as `component` (bootstrap not included).
  std::map<std::string, std::string> kafka_properties(const std::string& component) const;
  /// Its AMQPS URL with password and CA folded in.
  amqp::AmqpUrl rabbit_url(const std::string& component) const;
  /// The secure profile's Kafka bootstrap.
  std::string kafka_bootstrap() const;

 private:
  explicit SecureEnv(std::string state) : state_(std::move(state)) {}
  std::string state_;
};

}  // namespace pix::test
