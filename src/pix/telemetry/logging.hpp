#pragma once
/// @file Process-wide structured logging (JSON lines on stderr by default).

#include <string>

namespace pix::telemetry {

/// Install the default logger. `format` is "json" (one JSON object per line) or "text".
void setup_logging(const std::string& service, const std::string& level, const std::string& format);

/// `s` escaped for use inside a JSON string literal.
std::string json_escape(std::string_view s);

}  // namespace pix::telemetry
