#pragma once
/// @file How every Kafka client of the project is told where the cluster is and who it is: the
/// `--kafka-*` flags (each with a PIX_KAFKA_* environment variable), turned into librdkafka
/// properties in one place so that the gateway, the stages, pix-tail, pix-admin and the
/// benchmark tools agree on names, defaults and refusals.

#include <CLI/CLI.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pix::kafka {

/// @brief The flags as given. Passwords are never taken from the command line (`ps` shows it):
/// from `--kafka-password-file` or the PIX_KAFKA_PASSWORD variable only.
struct ClientFlags {
  std::string bootstrap = "127.0.0.1:9092";
  std::vector<std::string> options;  ///< --kafka-option key=value, repeatable
  std::string security_protocol;     ///< plaintext, ssl, sasl_plaintext, sasl_ssl; empty: librdkafka's default
  std::string sasl_mechanism = "SCRAM-SHA-512";
  std::string username;
  std::string password_file;
  std::string ca_file;    ///< CA bundle the broker's certificate must chain to
  std::string cert_file;  ///< client certificate (mutual TLS), PEM
  std::string key_file;   ///< its private key, PEM
};

/// Registers `--kafka-bootstrap`, `--kafka-option`, `--kafka-security-protocol`,
/// `--kafka-sasl-mechanism`, `--kafka-username`, `--kafka-password-file`, `--kafka-ca`,
/// `--kafka-cert` and `--kafka-key` on `app`.
void add_client_flags(CLI::App& app, ClientFlags& flags);

/// True for the properties that carry the project's delivery contract (acks, idempotence,
/// offset commits, isolation, timeouts, certificate checks...): `--kafka-option` may not set them.
bool is_contract_property(std::string_view key);

/// The librdkafka properties the flags ask for (security first, then `--kafka-option`), or
/// nullopt with `error` naming the flag at fault: a malformed option, a contract property, a
/// username without a password, an unreadable file, SASL settings without a SASL protocol.
std::optional<std::map<std::string, std::string>> client_properties(const ClientFlags& flags, std::string& error);

/// A one-line description for logs: bootstrap, protocol and principal, never the password.
std::string describe(const ClientFlags& flags);

}  // namespace pix::kafka
