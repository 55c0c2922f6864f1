#pragma once
/// @file Flags every program shares, declared once so names, environment variables and checks agree.

#include <CLI/CLI.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pix::util {

/// A parse that ends the program instead of running it: `--help` (code 0, text for stdout) or
/// invalid flags (non-zero, the message naming the flag, for stderr).
struct ParseExit {
  int code = 0;
  std::string message;
};

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

/// `--topic-prefix` (PIX_TOPIC_PREFIX).
inline CLI::Option* add_topic_prefix_option(CLI::App& app, std::string& prefix) {
  return app.add_option("--topic-prefix", prefix, "prefix of every Kafka topic read and written (e.g. staging.)")
      ->envname("PIX_TOPIC_PREFIX");
}

}  // namespace pix::util
