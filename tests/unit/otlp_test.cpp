// OTLP/JSON as the specification writes it, and the sampling decisions.
#include "pix/telemetry/otlp.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace pix::telemetry {
namespace {

namespace json = boost::json;

SpanData producer_span() {
  SpanData s;
  s.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  s.span_id = "00f067aa0ba902b7";
  s.parent_span_id = "1111111111111111";
  s.name = "pix.payment.requested publish";
  s.kind = SpanKind::kProducer;
  s.start_unix_nano = 1'764'347'060'123'000'000;
  s.end_unix_nano = 1'764'347'060'125'500'000;
  s.attributes = {{"messaging.system", std::string("kafka")},
                  {"messaging.kafka.offset", std::int64_t{9'007'199'254'740'993}},  // beyond a double's 53 bits
                  {"messaging.batch", false},
                  {"pix.ratio", 0.25}};
  s.links = {TraceContext{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", true}};
  s.status = SpanStatus::kError;
  s.status_message = "broker-ack-timeout";
  return s;
}

TEST(OtlpJson, ASpanIsWrittenWithHexIdsIntegerEnumsAndStringInt64s) {
  Resource r{{{"service.name", std::string("api-kafka")}, {"service.version", std::string("0.1.0")}}};
  const auto doc = json::parse(encode_otlp_json(r, {producer_span()}, "0.1.0")).as_object();
  const auto& rs = doc.at("resourceSpans").as_array().at(0).as_object();
  EXPECT_EQ(rs.at("resource").at("attributes").at(0).at("key"), "service.name");
  EXPECT_EQ(rs.at("resource").at("attributes").at(0).at("value").at("stringValue"), "api-kafka");
  const auto& ss = rs.at("scopeSpans").as_array().at(0).as_object();
  EXPECT_EQ(ss.at("scope").at("name"), "pix-pubsub");
  const auto& span = ss.at("spans").as_array().at(0).as_object();
  EXPECT_EQ(span.at("traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");  // hex, not base64
  EXPECT_EQ(span.at("spanId"), "00f067aa0ba902b7");
  EXPECT_EQ(span.at("parentSpanId"), "1111111111111111");
  EXPECT_EQ(span.at("kind"), 4);                                   // SPAN_KIND_PRODUCER, as an integer
  EXPECT_EQ(span.at("startTimeUnixNano"), "1764347060123000000");  // 64-bit: a decimal string
  EXPECT_EQ(span.at("endTimeUnixNano"), "1764347060125500000");
  const auto& attrs = span.at("attributes").as_array();
  EXPECT_EQ(attrs.at(0).at("value").at("stringValue"), "kafka");
  EXPECT_EQ(attrs.at(1).at("value").at("intValue"), "9007199254740993") << "an int64 lost precision";
  EXPECT_EQ(attrs.at(2).at("value").at("boolValue"), false);
  EXPECT_EQ(attrs.at(3).at("value").at("doubleValue"), 0.25);
  EXPECT_EQ(span.at("links").at(0).at("spanId"), "bbbbbbbbbbbbbbbb");
  EXPECT_EQ(span.at("status").at("code"), 2);  // STATUS_CODE_ERROR
  EXPECT_EQ(span.at("status").at("message"), "broker-ack-timeout");
}

TEST(OtlpJson, EmptyFieldsAreLeftOut) {
  SpanData root;
  root.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  root.span_id = "00f067aa0ba902b7";
  root.name = "POST /kafka";
  root.kind = SpanKind::kServer;
  const auto doc = json::parse(encode_otlp_json({}, {root}, "0.1.0"));
  const auto& span = doc.at("resourceSpans").at(0).at("scopeSpans").at(0).at("spans").at(0).as_object();
  EXPECT_FALSE(span.contains("parentSpanId")) << "a root span has no parent id, not an empty one";
  EXPECT_FALSE(span.contains("attributes"));
  EXPECT_FALSE(span.contains("links"));
  EXPECT_FALSE(span.contains("status")) << "UNSET is the default: left out";
  EXPECT_EQ(span.at("kind"), 2);
}

TEST(OtlpSampler, ParentBasedFollowsTheParentAndRootsFollowTheTraceId) {
  const Sampler none(0.0), all(1.0), half(0.5);
  const TraceContext sampled{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true};
  const TraceContext unsampled{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", false};
  EXPECT_TRUE(none.sample(sampled, sampled.trace_id)) << "a parent's decision is followed";
  EXPECT_FALSE(all.sample(unsampled, unsampled.trace_id));
  EXPECT_FALSE(none.sample(std::nullopt, sampled.trace_id));
  EXPECT_TRUE(all.sample(std::nullopt, sampled.trace_id));
  // The ratio compares the id's last 8 bytes with ratio x 2^64: below half, above half.
  EXPECT_TRUE(half.sample(std::nullopt, "ffffffffffffffff7fffffffffffffff"));
  EXPECT_FALSE(half.sample(std::nullopt, "00000000000000008000000000000000"));
  // Over many ids the share is the ratio, and the same id always gets the same answer.
  const Sampler tenth(0.1);
  int taken = 0;
  for (std::uint64_t i = 0; i < 10000; ++i) {
    char id[33];
    std::snprintf(id, sizeof id, "%016llx%016llx", 0x1234ULL,
                  static_cast<unsigned long long>(i * 0x9E3779B97F4A7C15ULL));
    const bool first = tenth.sample(std::nullopt, id);
    EXPECT_EQ(first, tenth.sample(std::nullopt, id));
    taken += first ? 1 : 0;
  }
  EXPECT_NEAR(taken, 1000, 150);
  // Not parent-based: the ratio decides even under a sampled parent.
  EXPECT_FALSE(Sampler(0.0, false).sample(sampled, sampled.trace_id));
}

TEST(OtlpSampler, TheStandardVariablesAreReadAndBadValuesNamed) {
  std::string error;
  EXPECT_DOUBLE_EQ(sampler_from("", "", error)->ratio(), 1.0);
  EXPECT_DOUBLE_EQ(sampler_from("parentbased_traceidratio", "0.01", error)->ratio(), 0.01);
  EXPECT_FALSE(sampler_from("traceidratio", "0.5", error)->parent_based());
  EXPECT_DOUBLE_EQ(sampler_from("always_off", "", error)->ratio(), 0.0);
  EXPECT_FALSE(sampler_from("parentbased_traceidratio", "1.5", error));
  EXPECT_NE(error.find("OTEL_TRACES_SAMPLER_ARG"), std::string::npos);
  EXPECT_FALSE(sampler_from("jaeger_remote", "", error));
  EXPECT_NE(error.find("OTEL_TRACES_SAMPLER"), std::string::npos);
}

}  // namespace
}  // namespace pix::telemetry
