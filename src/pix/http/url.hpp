#pragma once
/// @file `http[s]://host[:port][/path][?query]` URLs taken apart: the one parser every HTTP
/// client here uses (the JWKS fetch, the trace exporter, pix-sim, pix-admin).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pix::http {

/// @brief An http or https URL's parts.
struct Url {
  bool tls = false;          ///< https: the server's certificate is verified for `host`
  std::string host;          ///< a name or an IP address (IPv6 without its brackets)
  std::uint16_t port = 0;    ///< 80 or 443 unless the URL says
  std::string authority;     ///< host[:port] as written: the Host header
  std::string target = "/";  ///< path and query, "/" when the URL has none; no fragment
};

/// Parses an http:// or https:// URL (scheme case-insensitive; IPv6 hosts in brackets) with RFC
/// 3986's syntax: a space, a control character or non-ASCII text must be percent-encoded. On
/// failure returns nothing and says why in `error`. Credentials (`user@`) are refused: they would
/// travel in the clear in logs and command lines.
std::optional<Url> parse_url(std::string_view url, std::string& error);

}  // namespace pix::http
