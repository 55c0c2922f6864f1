#include "pix/http/url.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pix::http {
namespace {

Url parse_ok(std::string_view text) {
  std::string error;
  auto url = parse_url(text, error);
  EXPECT_TRUE(url) << text << ": " << error;
  return url.value_or(Url{});
}

std::string parse_error(std::string_view text) {
  std::string error;
  EXPECT_FALSE(parse_url(text, error)) << text << " parsed, but should not have";
  EXPECT_FALSE(error.empty()) << text;
  return error;
}

TEST(HttpUrlParse, PartsOfAPlainAndATlsUrl) {
  const Url plain = parse_ok("http://127.0.0.1:5000/kafka");
  EXPECT_FALSE(plain.tls);
  EXPECT_EQ(plain.host, "127.0.0.1");
  EXPECT_EQ(plain.port, 5000);
  EXPECT_EQ(plain.authority, "127.0.0.1:5000");
  EXPECT_EQ(plain.target, "/kafka");
  const Url tls = parse_ok("HTTPS://Issuer.example/.well-known/jwks.json");
  EXPECT_TRUE(tls.tls);
  EXPECT_EQ(tls.host, "Issuer.example");
  EXPECT_EQ(tls.port, 443);
  EXPECT_EQ(tls.authority, "Issuer.example");
  EXPECT_EQ(tls.target, "/.well-known/jwks.json");
}

TEST(HttpUrlParse, TargetIsPathAndQueryWithoutTheFragment) {
  EXPECT_EQ(parse_ok("http://h").target, "/");
  EXPECT_EQ(parse_ok("http://h#top").target, "/");
  EXPECT_EQ(parse_ok("http://h?a=1&b=%20").target, "/?a=1&b=%20");
  EXPECT_EQ(parse_ok("http://h/api/traces/abc?limit=1#x").target, "/api/traces/abc?limit=1");
}

TEST(HttpUrlParse, Ipv6HostsWithoutTheirBrackets) {
  const Url url = parse_ok("http://[fe80::1]:8080/x");
  EXPECT_EQ(url.host, "fe80::1");
  EXPECT_EQ(url.port, 8080);
  EXPECT_EQ(url.authority, "[fe80::1]:8080");
  EXPECT_EQ(parse_ok("https://[::1]").port, 443);
}

TEST(HttpUrlParse, AnEmptyPortIsTheSchemesDefault) {
  EXPECT_EQ(parse_ok("http://h:/").port, 80);
  EXPECT_EQ(parse_ok("https://h:/").port, 443);
}

TEST(HttpUrlParse, RefusesWhatIsNotAnHttpUrl) {
  EXPECT_NE(parse_error("ftp://h/").find("http://"), std::string::npos);
  EXPECT_NE(parse_error("localhost:5000/kafka").find("http://"), std::string::npos);
  EXPECT_NE(parse_error("http://:5000/").find("no host"), std::string::npos);
  EXPECT_NE(parse_error("http://h:0/").find("bad port '0'"), std::string::npos);
  EXPECT_NE(parse_error("http://h:65536/").find("bad port"), std::string::npos);
  EXPECT_NE(parse_error("http://u:secret@h/").find("credentials"), std::string::npos);
  parse_error("http://[::1/");
  parse_error("http://[v1.fe80::1]/");  // IPvFuture: nothing can resolve it
}

// Text after the host or port that is not a path: "h:12ab" is not the port 12 and the path "ab"
// (as Boost.URL 1.81 would have it, boostorg/url#636).
TEST(HttpUrlParse, RefusesTextBetweenTheAuthorityAndThePath) {
  parse_error("http://h:12ab/");
  parse_error("http://[::1]x/");
  parse_error("http://h:ab");
}

// RFC 3986 syntax: what would break the request line or the Host header must be percent-encoded.
TEST(HttpUrlParse, RefusesCharactersThatMustBeEncoded) {
  parse_error("http://h/a b");
  parse_error("http://h/a\r\nX-Injected: 1");
  parse_error("http://h/%zz");
  parse_error("http://h\x01/");
  parse_error("http://[::g]/");
  EXPECT_EQ(parse_ok("http://h/a%20b").target, "/a%20b");
}

}  // namespace
}  // namespace pix::http
