// Why this parser is not Boost.URL's (pix::http::parse_url is): an AMQP URL's errors must say
// which part is wrong (user, password, port, IPv6 host, vhost) and never repeat the password,
// while Boost.URL answers a bad URL with one error code for the whole text and no position
// ("invalid" for a bad escape in the password and in the vhost alike), so a split by hand would
// still be needed to word the message. And the AMQP rules are not RFC 3986's: the last '@' ends
// the userinfo, an empty path and "/" are both the vhost "/", the vhost is one decoded segment.
// Boost.URL 1.81 also takes "h:abc/" for an empty port and the path "abc/" (boostorg/url#636).
#include "pix/amqp/url.hpp"

#include <charconv>
#include <string>
#include <system_error>

#include "pix/util/text.hpp"

namespace pix::amqp {

namespace detail {
namespace {

constexpr std::string_view kScheme = "amqp://";
constexpr std::string_view kTlsScheme = "amqps://";

// Keeps redacted() output re-parseable: the characters that would end a component are escaped.
std::string percent_encode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (const char c : in) {
    const auto u = static_cast<unsigned char>(c);
    const bool plain = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' ||
                       c == '.' || c == '_' || c == '~';
    if (plain) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4U]);
      out.push_back(kHex[u & 0x0FU]);
    }
  }
  return out;
}

AmqpUrlParse fail(std::string message) {
  AmqpUrlParse result;
  result.error = std::move(message);
  return result;
}

}  // namespace
}  // namespace detail

std::string AmqpUrl::redacted() const {
  std::string out{tls ? detail::kTlsScheme : detail::kScheme};
  out += detail::percent_encode(user);
  out += ":***@";
  if (host.find(':') != std::string::npos) {
    out += '[';
    out += host;
    out += ']';
  } else {
    out += host;
  }
  out += ':';
  out += std::to_string(port);
  out += '/';
  out += detail::percent_encode(vhost);
  return out;
}

AmqpUrlParse parse_amqp_url(std::string_view text) {
  using detail::fail;
  const bool tls = text.starts_with(detail::kTlsScheme);
  if (!tls && !text.starts_with(detail::kScheme)) return fail("AMQP URL must start with amqp:// or amqps://");
  std::string_view rest = text.substr(tls ? detail::kTlsScheme.size() : detail::kScheme.size());
  if (const auto q = rest.find_first_of("?#"); q != std::string_view::npos) {
    return fail("AMQP URL query strings and fragments are not supported");
  }

  const auto slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);

  AmqpUrl url;
  url.tls = tls;
  if (tls) url.port = kDefaultAmqpsPort;
  std::string_view host_port = authority;
  // The password may itself contain '@' only percent-encoded, so the last '@' ends the userinfo.
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    host_port = authority.substr(at + 1);
    const auto colon = userinfo.find(':');
    auto user = util::percent_decode(userinfo.substr(0, colon));
    if (!user) return fail("AMQP URL user contains an invalid percent escape");
    if (user->empty()) return fail("AMQP URL has an empty user name before '@'");
    url.user = std::move(*user);
    if (colon != std::string_view::npos) {
      auto password = util::percent_decode(userinfo.substr(colon + 1));
      if (!password) return fail("AMQP URL password contains an invalid percent escape");
      url.password = std::move(*password);
    }
  }

  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (host_port.starts_with('[')) {
    const auto close = host_port.find(']');
    if (close == std::string_view::npos) return fail("AMQP URL has an unterminated IPv6 host '['");
    host = host_port.substr(1, close - 1);
    const std::string_view after = host_port.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("AMQP URL has text after the IPv6 host that is not a port");
      has_port = true;
      port_text = after.substr(1);
    }
    if (host.empty()) return fail("AMQP URL has an empty IPv6 host");
  } else {
    const auto colon = host_port.find(':');
    host = host_port.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = host_port.substr(colon + 1);
    }
  }
  if (!host.empty()) url.host = std::string{host};

  if (has_port) {
    if (port_text.empty()) return fail("AMQP URL has an empty port after ':'");
    unsigned int port = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size()) {
      return fail("AMQP URL port '" + std::string{port_text} + "' is not a number");
    }
    if (port == 0 || port > 65535) {
      return fail("AMQP URL port " + std::string{port_text} + " is out of range 1-65535");
    }
    url.port = static_cast<std::uint16_t>(port);
  }

  if (!path.empty()) {
    if (path.find('/') != std::string_view::npos) {
      return fail("AMQP URL vhost must be one path segment; write '/' inside it as %2F");
    }
    auto vhost = util::percent_decode(path);
    if (!vhost) return fail("AMQP URL vhost contains an invalid percent escape");
    url.vhost = std::move(*vhost);
  }

  AmqpUrlParse result;
  result.url = std::move(url);
  return result;
}

}  // namespace pix::amqp
