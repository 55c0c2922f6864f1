#include "pix/gateway/publish_request.hpp"

#include <gtest/gtest.h>

namespace pix::gateway {
namespace {

constexpr std::string_view kJson = "application/json";

// The seed's two curl examples, verbatim.
constexpr std::string_view kSeedKafka = R"({
  "topic": "pix.payment.requested",
  "value": {
    "transactionId": "12345",
    "amount": 100,
    "payer": "alice",
    "receiver": "bob"
  }
})";
constexpr std::string_view kSeedRabbit = R"({
  "topic": "pix.notification.sent",
  "value": {
    "transactionId": "12345",
    "status": "notified"
  }
})";

http::Problem problem_of(std::string_view content_type, std::string_view body) {
  auto r = parse_publish_request(content_type, body);
  EXPECT_TRUE(std::holds_alternative<http::Problem>(r)) << "expected a problem for " << body;
  return std::holds_alternative<http::Problem>(r) ? std::get<http::Problem>(r) : http::Problem{};
}

TEST(PublishRequest, SeedKafkaExampleIsAccepted) {
  auto r = parse_publish_request(kJson, kSeedKafka);
  ASSERT_TRUE(std::holds_alternative<PublishCommand>(r));
  const auto& cmd = std::get<PublishCommand>(r);
  EXPECT_EQ(cmd.topic, domain::Topic::kPaymentRequested);
  EXPECT_EQ(cmd.transaction_id, "12345");
  EXPECT_EQ(cmd.record_key, "alice") << "requests are keyed by payer: one partition holds a payer's payments";
  EXPECT_EQ(cmd.payload, R"({"transactionId":"12345","amount":100,"payer":"alice","receiver":"bob"})");
}

TEST(PublishRequest, SeedRabbitExampleIsAccepted) {
  auto r = parse_publish_request(kJson, kSeedRabbit);
  ASSERT_TRUE(std::holds_alternative<PublishCommand>(r));
  EXPECT_EQ(std::get<PublishCommand>(r).topic, domain::Topic::kNotificationSent);
}

TEST(PublishRequest, EverySeedSimulatorEventIsAccepted) {
  for (
      std::string_view body :
      {R"({"topic":"pix.payment.requested","value":{"transactionId":"tx123","amount":100,"payer":"Alice","receiver":"Bob"}})",
       R"({"topic":"pix.payment.validated","value":{"transactionId":"tx123","status":"validated"}})",
       R"({"topic":"pix.payment.settled","value":{"transactionId":"tx123","status":"settled"}})",
       R"({"topic":"pix.notification.sent","value":{"transactionId":"tx123","status":"notified"}})",
       R"({"topic":"pix.audit.log","value":{"transactionId":"tx123","action":"completed"}})"}) {
    EXPECT_TRUE(std::holds_alternative<PublishCommand>(parse_publish_request(kJson, body))) << body;
  }
}

TEST(PublishRequest, TopicDefaultsToPaymentRequested) {
  auto r =
      parse_publish_request(kJson, R"({"value":{"transactionId":"1","amount":"10.50","payer":"a","receiver":"b"}})");
  ASSERT_TRUE(std::holds_alternative<PublishCommand>(r));
  EXPECT_EQ(std::get<PublishCommand>(r).topic, domain::Topic::kPaymentRequested);
}

TEST(PublishRequest, NumericTransactionIdBecomesItsText) {
  auto r = parse_publish_request(kJson, R"({"topic":"pix.audit.log","value":{"transactionId":42,"action":"x"}})");
  ASSERT_TRUE(std::holds_alternative<PublishCommand>(r));
  EXPECT_EQ(std::get<PublishCommand>(r).transaction_id, "42");
  EXPECT_EQ(std::get<PublishCommand>(r).record_key, "42") << "other topics stay keyed by transactionId";
}

TEST(PublishRequest, AmountsTheRulesJudgePassTheGateway) {
  // Zero, negative and over-precise amounts are well-formed: the anti-fraud stage rejects them
  // with a reason code (AM01, ED05) instead of the gateway refusing them.
  for (std::string_view amount : {"0", "-5", "\"0.00\"", "10.505"}) {
    const std::string body = std::string(R"({"value":{"transactionId":"1","amount":)") + std::string(amount) +
                             R"(,"payer":"a","receiver":"b"}})";
    EXPECT_TRUE(std::holds_alternative<PublishCommand>(parse_publish_request(kJson, body))) << body;
  }
}

TEST(PublishRequest, MediaTypes) {
  EXPECT_TRUE(is_json_media_type("application/json"));
  EXPECT_TRUE(is_json_media_type("application/json; charset=utf-8"));
  EXPECT_TRUE(is_json_media_type("Application/JSON;charset=UTF-8"));
  EXPECT_TRUE(is_json_media_type("application/cloudevents+json"));
  EXPECT_FALSE(is_json_media_type(""));
  EXPECT_FALSE(is_json_media_type("text/plain"));
  EXPECT_FALSE(is_json_media_type("application/x-www-form-urlencoded"));
  EXPECT_FALSE(is_json_media_type("application/jsonx"));
}

TEST(PublishRequest, NotJsonIs415NamingTheHeader) {
  auto p = problem_of("text/plain", kSeedKafka);
  EXPECT_EQ(p.status, 415);
  EXPECT_EQ(p.field, "Content-Type");
  EXPECT_EQ(problem_of("", kSeedKafka).status, 415);
}

TEST(PublishRequest, MalformedJsonIs400) {
  for (std::string_view body : {"{", "", "{\"topic\":", "nope", "{\"value\":{}}}"}) {
    EXPECT_EQ(problem_of(kJson, body).status, 400) << body;
  }
}

TEST(PublishRequest, UnknownTopicIs422ListingTheAllowedOnes) {
  auto p = problem_of(kJson, R"({"topic":"pix.payment.refunded","value":{"transactionId":"1"}})");
  EXPECT_EQ(p.status, 422);
  EXPECT_EQ(p.type, "unknown-topic");
  EXPECT_EQ(p.field, "topic");
  ASSERT_EQ(p.allowed.size(), 5u);
  EXPECT_EQ(p.allowed[0], "pix.payment.requested");
  EXPECT_EQ(p.allowed[4], "pix.audit.log");
}

struct FieldCase {
  std::string_view body;
  std::string_view field;
};

// Names the case by its field in test listings, instead of raw bytes.
void PrintTo(const FieldCase& c, std::ostream* os) {
  *os << c.field;
}

class InvalidField : public ::testing::TestWithParam<FieldCase> {};

TEST_P(InvalidField, Is422NamingTheField) {
  auto p = problem_of(kJson, GetParam().body);
  EXPECT_EQ(p.status, 422);
  EXPECT_EQ(p.type, "invalid-field");
  EXPECT_EQ(p.field, GetParam().field);
}

INSTANTIATE_TEST_SUITE_P(
    PublishRequest, InvalidField,
    ::testing::Values(
        FieldCase{R"([1,2])", "(body)"}, FieldCase{R"({"topic":7,"value":{}})", "topic"},
        FieldCase{R"({"topic":"pix.audit.log"})", "value"},
        FieldCase{R"({"topic":"pix.audit.log","value":"x"})", "value"},
        FieldCase{R"({"value":{"amount":1,"payer":"a","receiver":"b"}})", "value.transactionId"},
        FieldCase{R"({"value":{"transactionId":"","amount":1,"payer":"a","receiver":"b"}})", "value.transactionId"},
        FieldCase{R"({"value":{"transactionId":true,"amount":1,"payer":"a","receiver":"b"}})", "value.transactionId"},
        FieldCase{R"({"value":{"transactionId":"1","payer":"a","receiver":"b"}})", "value.amount"},
        FieldCase{R"({"value":{"transactionId":"1","amount":"abc","payer":"a","receiver":"b"}})", "value.amount"},
        FieldCase{R"({"value":{"transactionId":"1","amount":"1.5","payer":"a","receiver":"b"}})", "value.amount"},
        FieldCase{R"({"value":{"transactionId":"1","amount":1,"receiver":"b"}})", "value.payer"},
        FieldCase{R"({"value":{"transactionId":"1","amount":1,"payer":3,"receiver":"b"}})", "value.payer"},
        FieldCase{R"({"value":{"transactionId":"1","amount":1,"payer":"a","receiver":null}})", "value.receiver"},
        FieldCase{R"({"topic":"pix.payment.validated","value":{"transactionId":"1"}})", "value.status"},
        FieldCase{R"({"topic":"pix.payment.settled","value":{"transactionId":"1","status":5}})", "value.status"},
        FieldCase{R"({"topic":"pix.notification.sent","value":{"status":"notified"}})", "value.transactionId"},
        FieldCase{R"({"topic":"pix.audit.log","value":{"transactionId":"1","status":"x"}})", "value.action"}));

}  // namespace
}  // namespace pix::gateway
