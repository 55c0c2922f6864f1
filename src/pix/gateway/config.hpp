#pragma once
/// @file Configuration of the publishing gateway: flags, each with an environment variable.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "pix/amqp/url.hpp"
#include "pix/util/cli.hpp"

namespace pix::gateway {

enum class BrokerKind { kKafka, kRabbit };

/// @brief HTTPS at the edge: certificate and key files, re-read when they change.
struct TlsConfig {
  std::string cert_file;                  ///< PEM chain; empty: plaintext HTTP
  std::string key_file;                   ///< PEM private key
  std::string client_ca_file;             ///< when set, client certificates are asked for and verified against it
  std::chrono::seconds reload_check{10};  ///< how often the files' mtimes are looked at (SIGHUP: now)
  bool enabled() const { return !cert_file.empty(); }
};

/// @brief Who may publish: bearer JWTs verified against a JWKS, and/or verified client certificates.
struct AuthConfig {
  bool required = false;  ///< `--auth jwt`: every publish needs a verified principal
  std::string jwks;       ///< file path or https:// (http://) URL of the issuer's JSON Web Key Set
  std::string jwks_ca;    ///< https JWKS: CA certificates (PEM) its server's must chain to; empty: the system's
  std::string issuer;
  std::vector<std::string> audiences{"pix-api"};
  std::chrono::seconds leeway{60};
  std::chrono::seconds jwks_refresh{300};
  /// Client-certificate principals (CN) and the topics each may publish; a verified CN not
  /// listed may publish `pix.payment.requested` only.
  std::string client_cert_scopes_file;
};

/// @brief Abuse limits: per-principal request rate and the number of open connections.
struct LimitsConfig {
  double rate_per_principal = 0;  ///< requests/s per principal (or client address without auth); 0: off
  double rate_burst = 0;          ///< bucket size; 0: twice the rate
  std::size_t max_connections = 10000;
  std::size_t max_header_fields = 100;
};

/// @brief Everything `pix-api` can be told. Defaults match the README's configuration table.
struct GatewayConfig {
  BrokerKind broker = BrokerKind::kKafka;
  std::string listen_address = "127.0.0.1";
  std::uint16_t port = 5000;  ///< 5000 for kafka, 5001 for rabbit unless given
  int io_threads = 1;
  std::size_t max_body_bytes = std::size_t{64} * 1024;
  std::chrono::milliseconds publish_timeout{5000};
  std::chrono::milliseconds drain_timeout{10000};
  std::chrono::seconds idle_timeout{60};
  std::size_t max_in_flight = 20000;
  std::chrono::seconds idempotency_window{3600};
  std::size_t idempotency_max_keys = 200000;
  int retry_after_s = 1;
  std::string source = "";  ///< CloudEvents source; default /pix-pubsub/api-kafka or api-rabbitmq
  TlsConfig tls;
  AuthConfig auth;
  LimitsConfig limits;
  // Kafka
  std::string kafka_bootstrap = "127.0.0.1:9092";
  int kafka_linger_ms = 5;
  std::string topic_prefix;  ///< prepended to the Kafka topic written (environments sharing a cluster)
  /// librdkafka properties: TLS/SASL from the --kafka-* flags, then --kafka-option key=value
  std::map<std::string, std::string> kafka_options;
  std::string kafka_principal;  ///< SASL username, for the log line
  // RabbitMQ
  amqp::AmqpUrl rabbit;  ///< --rabbit-url with the password and TLS files folded in
  std::string exchange = "pix";
  // Logs
  std::string log_level = "info";
  std::string log_format = "json";
  bool access_log = false;

  std::string route() const { return broker == BrokerKind::kKafka ? "/kafka" : "/rabbit"; }
  std::string scheme() const { return tls.enabled() ? "https" : "http"; }
  std::string service_name() const { return broker == BrokerKind::kKafka ? "api-kafka" : "api-rabbitmq"; }
};

/// What to print and the exit code when the flags ask for no run (--help) or are invalid.
using ParseExit = util::ParseExit;

/// Parse flags (argv) with environment fallbacks (PIX_*). Never exits the process itself.
std::variant<GatewayConfig, ParseExit> parse_gateway_config(int argc, const char* const* argv);

}  // namespace pix::gateway
