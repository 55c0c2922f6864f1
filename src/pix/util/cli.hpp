#pragma once
/// @file Flags every program shares, declared once so names, environment variables and checks agree.

#include <CLI/CLI.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace pix::util {

/// A parse that ends the program instead of running it: `--help` (code 0, text for stdout) or
/// invalid flags (non-zero, the message naming the flag, for stderr).
struct ParseExit {
  int code = 0;
  std::string message;
};

/// Parses `argv` into the options bound to `app`; nullopt when the program should run, or the
/// ParseExit (`--help` text with code 0, or CLI11's message naming the bad flag) when it should not.
inline std::optional<ParseExit> parse_or_exit(CLI::App& app, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::ostringstream out, err;
    const int code = app.exit(e, out, err);
    return ParseExit{code, out.str() + err.str()};
  }
  return std::nullopt;
}

/// `--drain-timeout-ms` (PIX_DRAIN_TIMEOUT_MS, 0..600000): how long a stop waits for the work in
/// flight; `what` says what that work is, in the program's words. Read `ms` after the parse.
inline CLI::Option* add_drain_timeout_option(CLI::App& app, long& ms, const std::string& what) {
  return app.add_option("--drain-timeout-ms", ms, "on SIGTERM" + what)
      ->envname("PIX_DRAIN_TIMEOUT_MS")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
}

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
