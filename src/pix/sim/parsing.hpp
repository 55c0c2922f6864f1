#pragma once
/// @file What a command line tells the load engine, as text: where to send (`http[s]://` URLs),
/// extra headers (`Name: value`) and durations (`10s`, `500ms`). pix-sim and the bench tools parse
/// their flags with these.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace pix::sim {

/// @brief An HTTP server to send to (the host is resolved once at the start).
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  /// https: TLS on every connection, the server's certificate verified against
  /// LoadOptions::ca_file for `host` (a name or an IP address, matched against its SANs).
  bool tls = false;
};

/// @brief An `http[s]://host[:port][/path]` URL taken apart.
struct HttpUrl {
  Endpoint endpoint;
  std::string target;  ///< path and query, "/" when the URL has none
};

/// Parses `http://host[:port][/path]` or `https://...` (port 80 or 443 by default; IPv6 hosts in
/// brackets). On failure returns nothing and says why in `error`.
std::optional<HttpUrl> parse_http_url(std::string_view url, std::string& error);

/// @brief A request header, name and value.
using Header = std::pair<std::string, std::string>;

/// Parses a `Name: value` header line as given on a command line (blanks around the value
/// dropped; the value may be empty). Nothing, and why in `error`, for a line without ':', a name
/// that is not an HTTP token, or a CR, LF or NUL anywhere (they would split the request).
std::optional<Header> parse_header_line(std::string_view line, std::string& error);

/// Parses a duration such as `10s`, `500ms`, `2m`, `1.5s`, `250us` or a bare number of seconds.
/// Nothing for anything else, or a negative value.
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text);

}  // namespace pix::sim
