#include "pix/amqp/url.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pix::amqp {
namespace {

AmqpUrl parse_ok(std::string_view text) {
  const AmqpUrlParse parsed = parse_amqp_url(text);
  EXPECT_TRUE(parsed) << text << ": " << parsed.error;
  EXPECT_TRUE(parsed.error.empty());
  return parsed.url.value_or(AmqpUrl{});
}

std::string parse_error(std::string_view text) {
  const AmqpUrlParse parsed = parse_amqp_url(text);
  EXPECT_FALSE(parsed) << text << " parsed, but should not have";
  EXPECT_FALSE(parsed.url.has_value());
  return parsed.error;
}

TEST(AmqpUrl, FullUrl) {
  const AmqpUrl url = parse_ok("amqp://alice:s3cret@broker.example:5673/payments");
  EXPECT_EQ(url.user, "alice");
  EXPECT_EQ(url.password, "s3cret");
  EXPECT_EQ(url.host, "broker.example");
  EXPECT_EQ(url.port, 5673);
  EXPECT_EQ(url.vhost, "payments");
}

TEST(AmqpUrl, DefaultsForMissingParts) {
  const AmqpUrl url = parse_ok("amqp://rabbit");
  EXPECT_EQ(url.user, "guest");
  EXPECT_EQ(url.password, "guest");
  EXPECT_EQ(url.host, "rabbit");
  EXPECT_EQ(url.port, 5672);
  EXPECT_EQ(url.vhost, "/");

  const AmqpUrl bare = parse_ok("amqp://");
  EXPECT_EQ(bare.host, "localhost");
  EXPECT_EQ(bare.port, 5672);
}

TEST(AmqpUrl, TrailingSlashAndEncodedSlashMeanTheDefaultVhost) {
  EXPECT_EQ(parse_ok("amqp://guest:guest@127.0.0.1:5672/").vhost, "/");
  EXPECT_EQ(parse_ok("amqp://guest:guest@127.0.0.1:5672/%2f").vhost, "/");
  EXPECT_EQ(parse_ok("amqp://guest:guest@127.0.0.1:5672/%2F").vhost, "/");
  EXPECT_EQ(parse_ok("amqp://h/%2Fpix%2Fprod").vhost, "/pix/prod");
}

TEST(AmqpUrl, UserWithoutPasswordKeepsDefaultPassword) {
  const AmqpUrl url = parse_ok("amqp://bob@h");
  EXPECT_EQ(url.user, "bob");
  EXPECT_EQ(url.password, "guest");
}

TEST(AmqpUrl, EmptyPasswordIsKept) {
  EXPECT_EQ(parse_ok("amqp://bob:@h").password, "");
}

TEST(AmqpUrl, CredentialsArePercentDecoded) {
  const AmqpUrl url = parse_ok("amqp://us%40er:p%40ss%3Aw%2Fd@h:1234/v");
  EXPECT_EQ(url.user, "us@er");
  EXPECT_EQ(url.password, "p@ss:w/d");
  EXPECT_EQ(url.port, 1234);
}

TEST(AmqpUrl, Ipv6HostInBrackets) {
  const AmqpUrl url = parse_ok("amqp://[::1]:5673/");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.port, 5673);
  EXPECT_EQ(parse_ok("amqp://[fe80::1]").port, 5672);
}

TEST(AmqpUrl, AmqpsMeansTlsOnPort5671) {
  const AmqpUrl url = parse_ok("amqps://notifier@127.0.0.1/");
  EXPECT_TRUE(url.tls);
  EXPECT_EQ(url.port, 5671);
  EXPECT_EQ(url.user, "notifier");
  EXPECT_EQ(parse_ok("amqps://u:p@h:6671/v").port, 6671);
  EXPECT_FALSE(parse_ok("amqp://h/").tls);
  EXPECT_EQ(parse_ok("amqps://u:secret@h/").redacted(), "amqps://u:***@h:5671/%2F");
}

TEST(AmqpUrl, RejectsOtherSchemes) {
  EXPECT_NE(parse_error("http://h:5672/").find("amqp://"), std::string::npos);
  EXPECT_NE(parse_error("amqps://h:5671/?cacertfile=x").find("query"), std::string::npos);
  parse_error("");
  parse_error("h:5672");
}

TEST(AmqpUrl, RejectsBadPorts) {
  EXPECT_NE(parse_error("amqp://h:abc/").find("'abc' is not a number"), std::string::npos);
  EXPECT_NE(parse_error("amqp://h:0/").find("out of range"), std::string::npos);
  EXPECT_NE(parse_error("amqp://h:65536/").find("out of range"), std::string::npos);
  EXPECT_NE(parse_error("amqp://h:/").find("empty port"), std::string::npos);
  parse_error("amqp://h:-1/");
  parse_error("amqp://h:56 72/");
  parse_error("amqp://[::1]x/");
}

TEST(AmqpUrl, RejectsMalformedParts) {
  EXPECT_NE(parse_error("amqp://h/a/b").find("%2F"), std::string::npos);
  EXPECT_NE(parse_error("amqp://h/%zz").find("vhost"), std::string::npos);
  EXPECT_NE(parse_error("amqp://h/%2").find("vhost"), std::string::npos);
  EXPECT_NE(parse_error("amqp://:pw@h/").find("empty user"), std::string::npos);
  EXPECT_NE(parse_error("amqp://u%g1:pw@h/").find("user"), std::string::npos);
  EXPECT_NE(parse_error("amqp://[::1/").find("IPv6"), std::string::npos);
  EXPECT_NE(parse_error("amqp://h/?heartbeat=10").find("query"), std::string::npos);
  parse_error("amqp://h/#frag");
}

TEST(AmqpUrl, ErrorsNeverContainThePassword) {
  const std::string error = parse_error("amqp://u:hunter2%zz@h/");
  EXPECT_NE(error.find("password"), std::string::npos);
  EXPECT_EQ(error.find("hunter2"), std::string::npos);
  EXPECT_EQ(parse_error("amqp://u:hunter2@h:99999/").find("hunter2"), std::string::npos);
}

TEST(AmqpUrl, RedactedHidesThePasswordAndRoundTrips) {
  const AmqpUrl url = parse_ok("amqp://alice:hunter2@broker:5673/%2F");
  const std::string shown = url.redacted();
  EXPECT_EQ(shown, "amqp://alice:***@broker:5673/%2F");
  EXPECT_EQ(shown.find("hunter2"), std::string::npos);

  const AmqpUrl again = parse_ok(shown);
  EXPECT_EQ(again.user, url.user);
  EXPECT_EQ(again.host, url.host);
  EXPECT_EQ(again.port, url.port);
  EXPECT_EQ(again.vhost, url.vhost);
}

TEST(AmqpUrl, RedactedEscapesAwkwardCharactersAndBracketsIpv6) {
  AmqpUrl url;
  url.user = "us@er";
  url.host = "::1";
  url.vhost = "a/b";
  EXPECT_EQ(url.redacted(), "amqp://us%40er:***@[::1]:5672/a%2Fb");
}

}  // namespace
}  // namespace pix::amqp
