#pragma once
/// @file Configuration of the publishing gateway: flags, each with an environment variable.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace pix::gateway {

enum class BrokerKind { kKafka, kRabbit };

/// @brief Everything `pix-api` can be told. Defaults match the README's configuration table.
struct GatewayConfig {
  BrokerKind broker = BrokerKind::kKafka;
  std::string listen_address = "127.0.0.1";
  std::uint16_t port = 5000;  ///< 5000 for kafka, 5001 for rabbit unless given
  int io_threads = 1;
  std::size_t max_body_bytes = 64 * 1024;
  std::chrono::milliseconds publish_timeout{5000};
  std::chrono::milliseconds drain_timeout{10000};
  std::chrono::seconds idle_timeout{60};
  std::size_t max_in_flight = 20000;
  std::chrono::seconds idempotency_window{3600};
  std::size_t idempotency_max_keys = 200000;
  int retry_after_s = 1;
  std::string source = "";  ///< CloudEvents source; default /pix-pubsub/api-kafka or api-rabbitmq
  // Kafka
  std::string kafka_bootstrap = "127.0.0.1:9092";
  int kafka_linger_ms = 5;
  std::string topic_prefix;  ///< prepended to the Kafka topic written (environments sharing a cluster)
  std::map<std::string, std::string> kafka_options;  ///< --kafka-option key=value, repeatable
  // RabbitMQ
  std::string rabbit_url = "amqp://guest:guest@127.0.0.1:5672/";
  std::string exchange = "pix";
  // Logs
  std::string log_level = "info";
  std::string log_format = "json";
  bool access_log = false;

  std::string route() const { return broker == BrokerKind::kKafka ? "/kafka" : "/rabbit"; }
  std::string service_name() const { return broker == BrokerKind::kKafka ? "api-kafka" : "api-rabbitmq"; }
};

/// @brief The outcome of parsing: a config, or what to print and the exit code (help, errors).
struct ParseExit {
  int code = 0;
  std::string message;
};

/// Parse flags (argv) with environment fallbacks (PIX_*). Never exits the process itself.
std::variant<GatewayConfig, ParseExit> parse_gateway_config(int argc, const char* const* argv);

}  // namespace pix::gateway
