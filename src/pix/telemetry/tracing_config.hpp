#pragma once
/// @file Tracing configuration from the standard OpenTelemetry environment variables.

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pix/http/url.hpp"
#include "pix/telemetry/otlp.hpp"

namespace pix::telemetry {

/// @brief Where spans go, who sends them, how many are kept.
struct TracingConfig {
  /// Off unless an OTLP endpoint is configured (or OTEL_TRACES_EXPORTER=otlp), and never with
  /// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
  bool enabled = false;
  http::Url endpoint;         ///< the traces URL itself (…/v1/traces)
  std::string endpoint_text;  ///< as configured, for logs
  std::vector<std::pair<std::string, std::string>> headers;
  std::string ca_file;  ///< https endpoints: CA certificates ("" = the system's)
  std::chrono::milliseconds export_timeout{10'000};
  Resource resource;
  Sampler sampler{1.0, true};
  std::size_t max_queue = 2048;
  std::size_t max_batch = 512;
  std::chrono::milliseconds schedule_delay{5000};
};

/// Reads an environment variable; null when unset.
using Getenv = std::function<const char*(const char*)>;

/// Reads OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT,
/// OTEL_EXPORTER_OTLP_[TRACES_]HEADERS, OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL (http/json only),
/// OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT, OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE, OTEL_SERVICE_NAME,
/// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG] and OTEL_BSP_{MAX_QUEUE_SIZE,
/// MAX_EXPORT_BATCH_SIZE,SCHEDULE_DELAY}. `service` is service.name unless the environment sets
/// one; `instance` is service.instance.id. Nothing, and `error` naming the variable, for a value
/// that cannot be used: a process started with a bad tracing setting refuses to start.
std::optional<TracingConfig> tracing_config_from_env(std::string_view service, std::string_view instance,
                                                     const Getenv& getenv, std::string& error);

/// The same, from the process's environment.
std::optional<TracingConfig> tracing_config_from_env(std::string_view service, std::string_view instance,
                                                     std::string& error);

}  // namespace pix::telemetry
