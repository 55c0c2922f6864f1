#include "pix/gateway/config.hpp"

#include "pix/util/cli.hpp"

#include "pix/amqp/client_flags.hpp"
#include "pix/kafka/client_flags.hpp"

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
  kafka::ClientFlags kafka;
  amqp::ClientFlags rabbit;
  std::string auth = "none";
  long leeway_s = c.auth.leeway.count();
  long refresh_s = c.auth.jwks_refresh.count();
  long reload_s = c.tls.reload_check.count();

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
  util::add_drain_timeout_option(app, drain_timeout_ms, ", wait this long for in-flight requests");
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
  app.add_option("--tls-cert", c.tls.cert_file, "serve HTTPS with this certificate chain (PEM)")
      ->envname("PIX_TLS_CERT");
  app.add_option("--tls-key", c.tls.key_file, "private key (PEM) of --tls-cert")->envname("PIX_TLS_KEY");
  app.add_option("--tls-client-ca", c.tls.client_ca_file,
                 "ask for client certificates and verify them against these CAs (mutual TLS)")
      ->envname("PIX_TLS_CLIENT_CA");
  app.add_option("--tls-reload-check-s", reload_s, "look for new certificate files this often (SIGHUP: now)")
      ->envname("PIX_TLS_RELOAD_CHECK_S")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_option("--auth", auth, "none, or jwt: every publish needs a bearer token (or a verified client certificate)")
      ->envname("PIX_AUTH")
      ->check(CLI::IsMember({"none", "jwt"}))
      ->capture_default_str();
  app.add_option("--jwks", c.auth.jwks, "the token issuer's JSON Web Key Set: a file or an https:// (http://) URL")
      ->envname("PIX_JWKS");
  app.add_option("--jwks-ca", c.auth.jwks_ca,
                 "CA certificates (PEM) an https JWKS server's certificate must chain to (default: the system's)")
      ->envname("PIX_JWKS_CA")
      ->check(CLI::ExistingFile);
  app.add_option("--jwt-issuer", c.auth.issuer, "required `iss` of tokens")->envname("PIX_JWT_ISSUER");
  app.add_option("--jwt-audience", c.auth.audiences, "accepted `aud` values (repeatable)")
      ->envname("PIX_JWT_AUDIENCE")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--jwt-leeway-s", leeway_s, "clock skew allowed on exp and nbf")
      ->envname("PIX_JWT_LEEWAY_S")
      ->check(CLI::Range(0, 600))
      ->capture_default_str();
  app.add_option("--jwks-refresh-s", refresh_s, "re-read the JWKS this often")
      ->envname("PIX_JWKS_REFRESH_S")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_option("--client-cert-scopes", c.auth.client_cert_scopes_file,
                 "JSON file {\"<certificate CN>\": [\"<topic>\", ...]}: what each client certificate may publish")
      ->envname("PIX_CLIENT_CERT_SCOPES");
  app.add_option("--rate-limit", c.limits.rate_per_principal, "requests/s per principal (429 beyond); 0: off")
      ->envname("PIX_RATE_LIMIT")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  app.add_option("--rate-burst", c.limits.rate_burst, "requests a principal may send at once (0: twice the rate)")
      ->envname("PIX_RATE_BURST")
      ->check(CLI::Range(0.0, 1e8))
      ->capture_default_str();
  app.add_option("--max-connections", c.limits.max_connections, "open connections; beyond, 503 and close")
      ->envname("PIX_MAX_CONNECTIONS")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--max-header-fields", c.limits.max_header_fields, "header fields per request; beyond, 431")
      ->envname("PIX_MAX_HEADER_FIELDS")
      ->check(CLI::Range(8, 10000))
      ->capture_default_str();
  kafka::add_client_flags(app, kafka);
  app.add_option("--kafka-linger-ms", c.kafka_linger_ms, "librdkafka linger.ms (batching delay)")
      ->envname("PIX_KAFKA_LINGER_MS")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  util::add_topic_prefix_option(app, c.topic_prefix);
  amqp::add_client_flags(app, rabbit);
  app.add_option("--exchange", c.exchange, "RabbitMQ exchange")->envname("PIX_EXCHANGE")->capture_default_str();
  util::add_log_options(app, c.log_level, c.log_format);
  app.add_flag("--access-log", c.access_log, "log one line per request")->envname("PIX_ACCESS_LOG");

  if (auto exit = util::parse_or_exit(app, argc, argv)) return *exit;

  c.broker = broker == "rabbit" ? BrokerKind::kRabbit : BrokerKind::kKafka;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): parsed at start-up, before any thread
  const bool port_given = app.count("--port") > 0 || std::getenv("PIX_PORT") != nullptr;
  c.port = static_cast<std::uint16_t>(port_given ? port : (c.broker == BrokerKind::kKafka ? 5000 : 5001));
  c.publish_timeout = std::chrono::milliseconds(publish_timeout_ms);
  c.drain_timeout = std::chrono::milliseconds(drain_timeout_ms);
  c.idle_timeout = std::chrono::seconds(idle_timeout_s);
  c.idempotency_window = std::chrono::seconds(window_s);
  if (c.source.empty()) c.source = "/pix-pubsub/" + c.service_name();
  c.tls.reload_check = std::chrono::seconds(reload_s);
  c.auth.required = auth == "jwt";
  c.auth.leeway = std::chrono::seconds(leeway_s);
  c.auth.jwks_refresh = std::chrono::seconds(refresh_s);
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) return ParseExit{2, "--tls-cert and --tls-key go together\n"};
  if (!c.tls.client_ca_file.empty() && !c.tls.enabled()) {
    return ParseExit{2, "--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is HTTPS)\n"};
  }
  if (c.auth.required && c.auth.jwks.empty() && c.tls.client_ca_file.empty()) {
    return ParseExit{2, "--auth jwt needs --jwks (PIX_JWKS), or --tls-client-ca for client certificates only\n"};
  }
  if (c.auth.required && !c.auth.jwks.empty() && c.auth.issuer.empty()) {
    return ParseExit{2, "--auth jwt needs --jwt-issuer (PIX_JWT_ISSUER): tokens of any issuer would pass\n"};
  }
  if (c.auth.audiences.empty()) return ParseExit{2, "--jwt-audience needs at least one value\n"};
  if (!c.auth.client_cert_scopes_file.empty() && c.tls.client_ca_file.empty()) {
    return ParseExit{2, "--client-cert-scopes needs --tls-client-ca\n"};
  }
  c.kafka_bootstrap = kafka.bootstrap;
  c.kafka_principal = kafka.username;
  std::string error;
  auto properties = kafka::client_properties(kafka, error);
  if (!properties) return ParseExit{2, error + "\n"};
  c.kafka_options = std::move(*properties);
  auto url = amqp::resolve_url(rabbit);
  if (!url) return ParseExit{2, url.error + "\n"};
  c.rabbit = std::move(*url.url);
  return c;
}

}  // namespace pix::gateway
