// The RFC 3986 split (and its syntax check: characters that must be percent-encoded, IPv4 and
// IPv6 literals, the port's digits) is Boost.URL's; what http and https add is checked here.
#include "pix/http/url.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <charconv>

namespace pix::http {
namespace {

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    const char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
    if (c != prefix[i]) return false;
  }
  return true;
}

std::optional<Url> fail(std::string& error, std::string why) {
  error = std::move(why);
  return std::nullopt;
}

}  // namespace

std::optional<Url> parse_url(std::string_view url, std::string& error) {
  // The scheme first: to RFC 3986, "localhost:5000/kafka" is a URI with the scheme "localhost".
  const bool tls = starts_with_nocase(url, "https://");
  if (!tls && !starts_with_nocase(url, "http://")) {
    return fail(error, "the URL must start with http:// or https://: " + std::string(url));
  }
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return fail(error, "not a valid URL (RFC 3986): " + std::string(url));
  const boost::urls::url_view& u = *parsed;
  // Boost.URL 1.81 takes "h:12ab/" for the port 12 and the path "ab/" (boostorg/url#636); after an
  // authority the path is empty or starts with '/'.
  if (const auto path = u.encoded_path(); !path.empty() && path.front() != '/') {
    return fail(error, "the host and port must be followed by '/', '?' or '#' in " + std::string(url));
  }
  if (u.has_userinfo()) return fail(error, "credentials in a URL are not supported: " + std::string(url));
  if (u.host_type() == boost::urls::host_type::ipvfuture) {
    return fail(error, "IPvFuture addresses are not supported: " + std::string(url));
  }
  Url out;
  out.tls = tls;
  // As written (IPv6 without its brackets): a name goes to the resolver and the certificate check.
  out.host = std::string(u.encoded_host_address());
  if (out.host.empty()) return fail(error, "no host in " + std::string(url));
  out.authority = std::string(u.encoded_host_and_port());
  out.port = tls ? 443 : 80;
  if (const std::string_view port = u.port(); !port.empty()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return fail(error, "bad port '" + std::string(port) + "' in " + std::string(url));
    }
    out.port = static_cast<std::uint16_t>(value);
  }
  const std::string_view target = u.encoded_target();
  out.target = target.empty() || target.front() == '?' ? "/" + std::string(target) : std::string(target);
  return out;
}

}  // namespace pix::http
