#include "pix/gateway/config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

namespace pix::gateway {
namespace {

std::variant<GatewayConfig, ParseExit> parse(std::vector<const char*> args) {
  args.insert(args.begin(), "pix-api");
  return parse_gateway_config(static_cast<int>(args.size()), args.data());
}

TEST(GatewayConfig, DefaultsServeKafkaOnTheSeedPort) {
  auto r = parse({});
  ASSERT_TRUE(std::holds_alternative<GatewayConfig>(r));
  const auto& c = std::get<GatewayConfig>(r);
  EXPECT_EQ(c.broker, BrokerKind::kKafka);
  EXPECT_EQ(c.port, 5000);
  EXPECT_EQ(c.route(), "/kafka");
  EXPECT_EQ(c.listen_address, "127.0.0.1");
  EXPECT_EQ(c.source, "/pix-pubsub/api-kafka");
}

TEST(GatewayConfig, RabbitDefaultsToPort5001) {
  auto r = parse({"--broker", "rabbit"});
  ASSERT_TRUE(std::holds_alternative<GatewayConfig>(r));
  EXPECT_EQ(std::get<GatewayConfig>(r).port, 5001);
  EXPECT_EQ(std::get<GatewayConfig>(r).route(), "/rabbit");
}

TEST(GatewayConfig, FlagsOverrideDefaults) {
  auto r = parse({"--port", "0", "--publish-timeout-ms", "250", "--max-body-bytes", "1024", "--kafka-option",
                  "compression.type=lz4", "--kafka-option", "socket.timeout.ms=20000"});
  ASSERT_TRUE(std::holds_alternative<GatewayConfig>(r));
  const auto& c = std::get<GatewayConfig>(r);
  EXPECT_EQ(c.port, 0);
  EXPECT_EQ(c.publish_timeout.count(), 250);
  EXPECT_EQ(c.max_body_bytes, 1024u);
  EXPECT_EQ(c.kafka_options.at("compression.type"), "lz4");
}

TEST(GatewayConfig, EnvironmentIsAFallback) {
  ::setenv("PIX_KAFKA_BOOTSTRAP", "10.0.0.1:9092", 1);
  auto r = parse({});
  ::unsetenv("PIX_KAFKA_BOOTSTRAP");
  ASSERT_TRUE(std::holds_alternative<GatewayConfig>(r));
  EXPECT_EQ(std::get<GatewayConfig>(r).kafka_bootstrap, "10.0.0.1:9092");
}

TEST(GatewayConfig, BadValuesAreRejectedWithAMessage) {
  for (auto args : std::vector<std::vector<const char*>>{{"--broker", "mqtt"},
                                                         {"--port", "70000"},
                                                         {"--publish-timeout-ms", "x"},
                                                         {"--kafka-option", "novalue"},
                                                         {"--no-such-flag"}}) {
    auto r = parse(args);
    ASSERT_TRUE(std::holds_alternative<ParseExit>(r)) << args[0];
    EXPECT_NE(std::get<ParseExit>(r).code, 0);
    EXPECT_FALSE(std::get<ParseExit>(r).message.empty());
  }
}

TEST(GatewayConfig, HelpExitsZeroAndDocumentsTheEnvironment) {
  auto r = parse({"--help"});
  ASSERT_TRUE(std::holds_alternative<ParseExit>(r));
  EXPECT_EQ(std::get<ParseExit>(r).code, 0);
  EXPECT_NE(std::get<ParseExit>(r).message.find("PIX_KAFKA_BOOTSTRAP"), std::string::npos);
}

}  // namespace
}  // namespace pix::gateway
