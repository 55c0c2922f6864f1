#include "pix/sim/parsing.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "pix/http/url.hpp"
#include "pix/sim/header_check.hpp"
#include "pix/util/text.hpp"

namespace pix::sim {

namespace detail {
namespace {

// RFC 9110 token characters: what a header name may be made of.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  return std::all_of(s.begin(), s.end(), [&](char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
           kSpecials.find(ch) != std::string_view::npos;
  });
}

}  // namespace

std::string header_problem(std::string_view name, std::string_view value) {
  if (!is_token(name)) return "'" + std::string(name) + "' is not a header name (letters, digits, -, _ ...)";
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    return "the value of " + std::string(name) + " has a line break or NUL in it";
  }
  return {};
}

}  // namespace detail

std::optional<HttpUrl> parse_http_url(std::string_view url, std::string& error) {
  auto parsed = http::parse_url(url, error);
  if (!parsed) return std::nullopt;
  HttpUrl out;
  out.endpoint.host = std::move(parsed->host);
  out.endpoint.port = parsed->port;
  out.endpoint.tls = parsed->tls;
  out.target = std::move(parsed->target);
  return out;
}

std::optional<Header> parse_header_line(std::string_view line, std::string& error) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) {
    error = "a header is 'Name: value', and '" + std::string(line) + "' has no ':'";
    return std::nullopt;
  }
  const std::string_view name = line.substr(0, colon);
  const std::string_view value = util::trim_blanks(line.substr(colon + 1));
  if (auto problem = detail::header_problem(name, value); !problem.empty()) {
    error = problem;
    return std::nullopt;
  }
  return Header{std::string(name), std::string(value)};
}

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || !std::isfinite(value) || value < 0) return std::nullopt;
  const std::string_view unit = text.substr(static_cast<std::size_t>(end - text.data()));
  double ns_per_unit = 0;
  if (unit.empty() || unit == "s") {
    ns_per_unit = 1e9;
  } else if (unit == "ms") {
    ns_per_unit = 1e6;
  } else if (unit == "us" || unit == "\xC2\xB5s") {
    ns_per_unit = 1e3;
  } else if (unit == "ns") {
    ns_per_unit = 1;
  } else if (unit == "m" || unit == "min") {
    ns_per_unit = 60e9;
  } else if (unit == "h") {
    ns_per_unit = 3600e9;
  } else {
    return std::nullopt;
  }
  const double ns = value * ns_per_unit;
  if (ns > 9e18) return std::nullopt;
  return std::chrono::nanoseconds(std::llround(ns));
}

}  // namespace pix::sim
