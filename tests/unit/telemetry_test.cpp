#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "pix/gateway/outbound.hpp"
#include "pix/http/problem.hpp"
#include "pix/telemetry/logging.hpp"
#include "pix/telemetry/metrics.hpp"
#include "pix/telemetry/trace_context.hpp"
#include "pix/util/random_id.hpp"

namespace pix {
namespace {

TEST(TraceContext, ParsesTheW3CExample) {
  auto c = telemetry::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(c->span_id, "00f067aa0ba902b7");
  EXPECT_TRUE(c->sampled);
}

TEST(TraceContext, RejectsMalformedHeaders) {
  for (std::string_view h : {"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                             "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                             "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                             "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                             "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                             "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"}) {
    EXPECT_FALSE(telemetry::parse_traceparent(h)) << h;
  }
}

TEST(TraceContext, ChildKeepsTheTraceAndMakesANewSpan) {
  auto parent = telemetry::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  auto child = telemetry::TraceContext::child_of(parent);
  EXPECT_EQ(child.trace_id, parent->trace_id);
  EXPECT_NE(child.span_id, parent->span_id);
  EXPECT_TRUE(telemetry::parse_traceparent(child.to_traceparent()));
  auto root = telemetry::TraceContext::child_of(std::nullopt);
  EXPECT_TRUE(telemetry::parse_traceparent(root.to_traceparent()));
}

TEST(RandomId, UuidV4Shape) {
  const auto a = util::uuid_v4(), b = util::uuid_v4();
  ASSERT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '4');
  EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos);
  EXPECT_NE(a, b);
}

TEST(Metrics, RendersCountersHistogramsAndGauges) {
  telemetry::Registry r;
  r.counter("pix_x_total", "x", {{"route", "/kafka"}, {"code", "200"}}).inc(3);
  auto& h = r.histogram("pix_lat_seconds", "lat", {{"route", "/kafka"}}, {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  r.gauge("pix_g", "g", {}, [] { return 7.0; });
  const std::string text = r.render();
  EXPECT_NE(text.find("# TYPE pix_x_total counter\npix_x_total{route=\"/kafka\",code=\"200\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("pix_lat_seconds_bucket{route=\"/kafka\",le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("pix_lat_seconds_bucket{route=\"/kafka\",le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("pix_lat_seconds_bucket{route=\"/kafka\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("pix_lat_seconds_count{route=\"/kafka\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("pix_g 7\n"), std::string::npos);
}

TEST(Metrics, SameSeriesIsSharedAndTypeClashesThrow) {
  telemetry::Registry r;
  r.counter("pix_c_total", "c", {{"a", "1"}}).inc();
  r.counter("pix_c_total", "c", {{"a", "1"}}).inc();
  EXPECT_EQ(r.counter("pix_c_total", "c", {{"a", "1"}}).value(), 2u);
  EXPECT_THROW(r.histogram("pix_c_total", "c"), std::logic_error);
}

TEST(Problem, SerializesAsRfc9457) {
  http::Problem p;
  p.status = 422;
  p.type = "unknown-topic";
  p.title = "t";
  p.field = "topic";
  p.allowed = {"a", "b"};
  const auto v = boost::json::parse(http::to_json(p, "/kafka")).as_object();
  EXPECT_EQ(v.at("status").as_int64(), 422);
  EXPECT_EQ(v.at("type").as_string(), "urn:pix-pubsub:problem:unknown-topic");
  EXPECT_EQ(v.at("instance").as_string(), "/kafka");
  EXPECT_EQ(v.at("field").as_string(), "topic");
  EXPECT_EQ(v.at("allowed").as_array().size(), 2u);
}

TEST(Logging, JsonEscapeKeepsLinesValid) {
  EXPECT_EQ(telemetry::json_escape("a\"b\\c\nd\x01"), "a\\\"b\\\\c\\nd\\u0001");
}

TEST(Outbound, KafkaGetsCloudEventsHeadersAndTraceparent) {
  gateway::PublishCommand cmd{domain::Topic::kPaymentRequested, R"({"transactionId":"12345"})", "12345", "alice"};
  auto trace = telemetry::TraceContext::child_of(std::nullopt);
  auto ev =
      gateway::make_outbound_event(std::move(cmd), gateway::BrokerKind::kKafka, "id-1", "/src", trace, 1764347060123);
  EXPECT_EQ(ev.key, "alice") << "the record key is the command's record_key";
  EXPECT_EQ(ev.topic, "pix.payment.requested");
  auto header = [&](std::string_view name) {
    for (const auto& h : ev.headers) {
      if (h.name == name) return h.value;
    }
    return std::string("<missing>");
  };
  EXPECT_EQ(header("ce_specversion"), "1.0");
  EXPECT_EQ(header("ce_id"), "id-1");
  EXPECT_EQ(header("ce_type"), "pix.payment.requested");
  EXPECT_EQ(header("ce_source"), "/src");
  EXPECT_EQ(header("ce_time"), "2025-11-28T16:24:20.123Z");
  EXPECT_EQ(header("content-type"), "application/json");
  EXPECT_EQ(header("traceparent"), trace.to_traceparent());
}

TEST(Outbound, AmqpUsesTheCloudEventsPrefix) {
  gateway::PublishCommand cmd{domain::Topic::kNotificationSent, "{}", "1", "1"};
  auto ev = gateway::make_outbound_event(std::move(cmd), gateway::BrokerKind::kRabbit, "id", "/s",
                                         telemetry::TraceContext::child_of(std::nullopt), 0);
  for (const auto& h : ev.headers) {
    EXPECT_TRUE(h.name.rfind("cloudEvents_", 0) == 0 || h.name == "traceparent") << h.name;
  }
}

}  // namespace
}  // namespace pix
