#pragma once
/// @file Process-wide structured logging (JSON lines on stderr by default).

#include <string>
#include <string_view>

namespace pix::telemetry {

/// Install the default logger. `format` is "json" (one JSON object per line) or "text".
void setup_logging(const std::string& service, const std::string& level, const std::string& format);

/// `s` escaped for use inside a JSON string literal.
std::string json_escape(std::string_view s);
/// The same, appended to `out` (quote, backslash and control characters escaped; UTF-8 as is).
void append_json_escaped(std::string& out, std::string_view s);

}  // namespace pix::telemetry
