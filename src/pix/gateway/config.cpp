#include "pix/gateway/config.hpp"

#include "pix/util/cli.hpp"

#include <sstream>

namespace pix::gateway {

std::variant<GatewayConfig, ParseExit> parse_gateway_config(int argc, const char* const* argv) {
  GatewayConfig c;
  CLI::App app{
      "pix-api: publishes PIX events to Kafka (POST /kafka) or RabbitMQ (POST /rabbit), "
      "answering 200 only once the broker holds them."};
  std::string broker = "kafka";
  int port = 0;
  long publish_timeout_ms = c.publish_timeout.count();
  long drain_timeout_ms = c.drain_timeout.count();
  long idle_timeout_s = c.idle_timeout.count();
  long window_s = c.idempotency_window.count();
  std::vector<std::string> kafka_options;

  app.add_option("--broker", broker, "kafka or rabbit")
      ->envname("PIX_BROKER")
      ->check(CLI::IsMember({"kafka", "rabbit"}))
      ->capture_default_str();
  app.add_option("--listen", c.listen_address, "address to listen on")->envname("PIX_LISTEN")->capture_default_str();
  app.add_option("--port", port, "port (default 5000 for kafka, 5001 for rabbit; 0 picks a free one)")
      ->envname("PIX_PORT")
      ->check(CLI::Range(0, 65535));
  app.add_option("--io-threads", c.io_threads, "HTTP threads")
      ->envname("PIX_IO_THREADS")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--max-body-bytes", c.max_body_bytes, "largest accepted body; more is 413")
      ->envname("PIX_MAX_BODY_BYTES")
      ->check(CLI::Range(64, 16 * 1024 * 1024))
      ->capture_default_str();
  app.add_option("--publish-timeout-ms", publish_timeout_ms, "wait this long for the broker's ack, then 504")
      ->envname("PIX_PUBLISH_TIMEOUT_MS")
      ->check(CLI::Range(100, 300000))
      ->capture_default_str();
  app.add_option("--drain-timeout-ms", drain_timeout_ms, "on SIGTERM, wait this long for in-flight requests")
      ->envname("PIX_DRAIN_TIMEOUT_MS")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  app.add_option("--idle-timeout-s", idle_timeout_s, "close keep-alive connections idle this long")
      ->envname("PIX_IDLE_TIMEOUT_S")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--max-in-flight", c.max_in_flight, "events waiting for an ack before 503")
      ->envname("PIX_MAX_IN_FLIGHT")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--idempotency-window-s", window_s, "how long an Idempotency-Key is remembered")
      ->envname("PIX_IDEMPOTENCY_WINDOW_S")
      ->check(CLI::Range(1, 7 * 24 * 3600))
      ->capture_default_str();
  app.add_option("--idempotency-max-keys", c.idempotency_max_keys, "most keys remembered (oldest dropped first)")
      ->envname("PIX_IDEMPOTENCY_MAX_KEYS")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  app.add_option("--retry-after-s", c.retry_after_s, "Retry-After sent with 503")
      ->envname("PIX_RETRY_AFTER_S")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--source", c.source, "CloudEvents source (default /pix-pubsub/<service>)")->envname("PIX_SOURCE");
  util::add_kafka_bootstrap_option(app, c.kafka_bootstrap);
  app.add_option("--kafka-linger-ms", c.kafka_linger_ms, "librdkafka linger.ms (batching delay)")
      ->envname("PIX_KAFKA_LINGER_MS")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  util::add_topic_prefix_option(app, c.topic_prefix);
  util::add_kafka_options_option(app, kafka_options);
  util::add_rabbit_url_option(app, c.rabbit_url);
  app.add_option("--exchange", c.exchange, "RabbitMQ exchange")->envname("PIX_EXCHANGE")->capture_default_str();
  util::add_log_options(app, c.log_level, c.log_format);
  app.add_flag("--access-log", c.access_log, "log one line per request")->envname("PIX_ACCESS_LOG");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::ostringstream out, err;
    const int code = app.exit(e, out, err);
    return ParseExit{code, out.str() + err.str()};
  }

  c.broker = broker == "rabbit" ? BrokerKind::kRabbit : BrokerKind::kKafka;
  const bool port_given = app.count("--port") > 0 || std::getenv("PIX_PORT") != nullptr;
  c.port = static_cast<std::uint16_t>(port_given ? port : (c.broker == BrokerKind::kKafka ? 5000 : 5001));
  c.publish_timeout = std::chrono::milliseconds(publish_timeout_ms);
  c.drain_timeout = std::chrono::milliseconds(drain_timeout_ms);
  c.idle_timeout = std::chrono::seconds(idle_timeout_s);
  c.idempotency_window = std::chrono::seconds(window_s);
  if (c.source.empty()) c.source = "/pix-pubsub/" + c.service_name();
  std::string error;
  auto properties = util::parse_kafka_options(kafka_options, error);
  if (!properties) return ParseExit{2, error + "\n"};
  c.kafka_options = std::move(*properties);
  return c;
}

}  // namespace pix::gateway
