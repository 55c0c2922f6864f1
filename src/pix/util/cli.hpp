#pragma once
/// @file Flags every program shares, declared once so names, environment variables and checks agree.

#include <CLI/CLI.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pix::util {

/// `--log-level` (PIX_LOG_LEVEL) and `--log-format` (PIX_LOG_FORMAT).
inline void add_log_options(CLI::App& app, std::string& level, std::string& format) {
  app.add_option("--log-level", level, "trace, debug, info, warn, error")
      ->envname("PIX_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--log-format", format, "json (one object per line) or text")
      ->envname("PIX_LOG_FORMAT")
      ->check(CLI::IsMember({"json", "text"}))
      ->capture_default_str();
}

/// `--kafka-bootstrap` (PIX_KAFKA_BOOTSTRAP).
inline CLI::Option* add_kafka_bootstrap_option(CLI::App& app, std::string& bootstrap) {
  return app.add_option("--kafka-bootstrap", bootstrap, "Kafka bootstrap servers")
      ->envname("PIX_KAFKA_BOOTSTRAP")
      ->capture_default_str();
}

/// `--kafka-option key=value`, repeatable (PIX_KAFKA_OPTIONS, comma-separated): any librdkafka
/// property, for SASL and TLS (e.g. security.protocol=SASL_SSL sasl.mechanism=SCRAM-SHA-512).
inline CLI::Option* add_kafka_options_option(CLI::App& app, std::vector<std::string>& options) {
  return app.add_option("--kafka-option", options, "extra librdkafka property key=value (repeatable; SASL, TLS...)")
      ->envname("PIX_KAFKA_OPTIONS")
      ->delimiter(',');
}

/// The `--kafka-option` values as a property map; nullopt (and `error` set) for one without '='.
inline std::optional<std::map<std::string, std::string>> parse_kafka_options(const std::vector<std::string>& options,
                                                                             std::string& error) {
  std::map<std::string, std::string> out;
  for (const auto& kv : options) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      error = "--kafka-option expects key=value, got '" + kv + "'";
      return std::nullopt;
    }
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

/// `--rabbit-url` (PIX_RABBIT_URL).
inline CLI::Option* add_rabbit_url_option(CLI::App& app, std::string& url) {
  return app.add_option("--rabbit-url", url, "RabbitMQ URL amqp://user:pass@host:port/vhost (password never logged)")
      ->envname("PIX_RABBIT_URL")
      ->capture_default_str();
}

/// `--topic-prefix` (PIX_TOPIC_PREFIX).
inline CLI::Option* add_topic_prefix_option(CLI::App& app, std::string& prefix) {
  return app.add_option("--topic-prefix", prefix, "prefix of every Kafka topic read and written (e.g. staging.)")
      ->envname("PIX_TOPIC_PREFIX");
}

}  // namespace pix::util
