// Jaeger query-API answers as pix-admin trace reads and draws them.
#include "pix/telemetry/trace_view.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

namespace pix::telemetry {
namespace {

// What Jaeger 1.75 answered for the OTLP spans of a request through api-kafka to antifraud
// (POST /kafka -> send, failed -> process, linked by FOLLOWS_FROM), with two spans added: an
// RabbitMQ publish under the root and an orphan whose parent never reached Jaeger.
constexpr std::string_view kTraceAnswer = R"({"data":[{"traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spans":[
{"traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spanID":"00f067aa0ba902b9","operationName":"process pix.payment.requested",
 "references":[{"refType":"FOLLOWS_FROM","traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spanID":"00f067aa0ba902b8"}],
 "startTime":1764347060140000,"duration":10000,
 "tags":[{"key":"messaging.destination.partition.id","type":"int64","value":"2"},
         {"key":"messaging.kafka.offset","type":"int64","value":9007199254740993},
         {"key":"otel.scope.name","type":"string","value":"pix-pubsub"},
         {"key":"span.kind","type":"string","value":"consumer"}],
 "logs":[],"processID":"p2","warnings":null},
{"traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spanID":"00f067aa0ba902b7","operationName":"POST /kafka","references":[],
 "startTime":1764347060123000,"duration":30000,
 "tags":[{"key":"http.response.status_code","type":"int64","value":200},
         {"key":"http.route","type":"string","value":"/kafka"},
         {"key":"otel.scope.name","type":"string","value":"pix-pubsub"},
         {"key":"pix.transaction_id","type":"string","value":"tx-1"},
         {"key":"span.kind","type":"string","value":"server"}],
 "logs":[],"processID":"p1","warnings":null},
{"traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spanID":"00f067aa0ba902b8","operationName":"send pix.payment.requested",
 "references":[{"refType":"CHILD_OF","traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spanID":"00f067aa0ba902b7"}],
 "startTime":1764347060124000,"duration":8000,
 "tags":[{"key":"error","type":"bool","value":true},
         {"key":"messaging.destination.name","type":"string","value":"pix.payment.requested"},
         {"key":"messaging.system","type":"string","value":"kafka"},
         {"key":"otel.status_code","type":"string","value":"ERROR"},
         {"key":"otel.status_description","type":"string","value":"broker-ack-timeout"},
         {"key":"span.kind","type":"string","value":"producer"}],
 "logs":[],"processID":"p1","warnings":null},
{"traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spanID":"00f067aa0ba902c1","operationName":"publish pix",
 "references":[{"refType":"CHILD_OF","traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spanID":"00f067aa0ba902b7"}],
 "startTime":1764347060133000,"duration":2000,
 "tags":[{"key":"messaging.rabbitmq.destination.routing_key","type":"string","value":"pix.payment.requested"},
         {"key":"span.kind","type":"string","value":"producer"}],
 "logs":[],"processID":"p1","warnings":null},
{"traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spanID":"00f067aa0ba902d1","operationName":"settle",
 "references":[{"refType":"CHILD_OF","traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spanID":"ffffffffffffffff"}],
 "startTime":1764347060145000,"duration":500,
 "tags":[{"key":"pix.amount_cents","type":"int64","value":1500}],
 "logs":[],"processID":"p3","warnings":null}],
"processes":{"p1":{"serviceName":"api-kafka","tags":[]},"p2":{"serviceName":"antifraud","tags":[]},
             "p3":{"serviceName":"settlement","tags":[]}},
"warnings":null}],"total":0,"limit":0,"offset":0,"errors":null})";

// A search answer (/api/traces?service=...&tags=...): two traces, the older one first.
constexpr std::string_view kSearchAnswer = R"({"data":[
{"traceID":"11111111111111111111111111111111","spans":[
 {"traceID":"11111111111111111111111111111111","spanID":"a1","operationName":"POST /kafka","references":[],
  "startTime":1764347000000000,"duration":5000,"tags":[],"processID":"p1"}],
 "processes":{"p1":{"serviceName":"api-kafka","tags":[]}}},
{"traceID":"22222222222222222222222222222222","spans":[
 {"traceID":"22222222222222222222222222222222","spanID":"b1","operationName":"POST /rabbit","references":[],
  "startTime":1764347060000000,"duration":7000,"tags":[],"processID":"p1"}],
 "processes":{"p1":{"serviceName":"api-rabbitmq","tags":[]}}}],
"total":0,"limit":0,"offset":0,"errors":null})";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

/// The waterfall line of the span named `name` (its "service: name" label).
std::string line_of(const std::vector<std::string>& lines, const std::string& label) {
  for (const auto& line : lines) {
    if (line.find(label) != std::string::npos && line.find('|') != std::string::npos) return line;
  }
  return {};
}

/// The bar's cells, between the two '|'.
std::string bar_of(const std::string& line) {
  const auto open = line.find('|');
  const auto close = line.find('|', open + 1);
  return line.substr(open + 1, close - open - 1);
}

std::size_t filled(const std::string& line) {
  const auto bar = bar_of(line);
  return static_cast<std::size_t>(std::count(bar.begin(), bar.end(), '#'));
}

/// Spaces between the bar's closing '|' and the service name, minus the column gap: 2 x depth.
std::size_t indent_of(const std::string& line, const std::string& label) {
  const auto close = line.find('|', line.find('|') + 1);
  return line.find(label) - close - 3;
}

Trace the_trace() {
  auto answer = parse_jaeger_traces(kTraceAnswer);
  EXPECT_EQ(answer.error, "");
  EXPECT_EQ(answer.traces.size(), 1u);
  return answer.traces.at(0);
}

TEST(TraceViewParse, ResolvesServicesParentsKindsAndStatus) {
  const Trace trace = the_trace();
  EXPECT_EQ(trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_EQ(trace.spans.size(), 5u);
  const auto& consumer = trace.spans[0];
  EXPECT_EQ(consumer.service, "antifraud");
  EXPECT_EQ(consumer.parent_span_id, "00f067aa0ba902b8");  // FOLLOWS_FROM, there being no CHILD_OF
  EXPECT_EQ(consumer.kind, "consumer");
  EXPECT_EQ(consumer.tag("messaging.kafka.offset"), "9007199254740993");  // all 64 bits
  const auto& send = trace.spans[2];
  EXPECT_TRUE(send.error);
  EXPECT_EQ(send.status_message, "broker-ack-timeout");
  EXPECT_EQ(send.start_us, 1764347060124000);
  EXPECT_EQ(send.duration_us, 8000);
  EXPECT_FALSE(trace.spans[1].error);
  EXPECT_EQ(trace.start_us(), 1764347060123000);
  EXPECT_EQ(trace.end_us(), 1764347060153000);
}

TEST(TraceViewParse, ChildOfWinsOverFollowsFrom) {
  const auto answer = parse_jaeger_traces(R"({"data":[{"traceID":"t","spans":[{"spanID":"c","references":[
      {"refType":"FOLLOWS_FROM","spanID":"link"},{"refType":"CHILD_OF","spanID":"parent"}]}],"processes":{}}]})");
  ASSERT_EQ(answer.traces.size(), 1u);
  EXPECT_EQ(answer.traces[0].spans.at(0).parent_span_id, "parent");
}

TEST(TraceViewParse, ReportsJaegerErrorsAndMalformedAnswers) {
  const auto missing =
      parse_jaeger_traces(R"({"data":null,"total":0,"errors":[{"code":404,"msg":"trace not found"}]})");
  EXPECT_TRUE(missing.traces.empty());
  EXPECT_EQ(missing.error, "404 trace not found");
  EXPECT_NE(parse_jaeger_traces("<html>bad gateway</html>").error, "");
  EXPECT_NE(parse_jaeger_traces(R"({"total":0})").error, "");
  const auto empty = parse_jaeger_traces(R"({"data":[],"errors":null})");
  EXPECT_TRUE(empty.traces.empty());
  EXPECT_EQ(empty.error, "");
}

TEST(TraceViewParse, ServicesList) {
  std::string error;
  const auto services = parse_jaeger_services(R"({"data":["api-kafka","antifraud","jaeger"],"total":3})", error);
  ASSERT_TRUE(services);
  EXPECT_EQ(*services, (std::vector<std::string>{"api-kafka", "antifraud", "jaeger"}));
  EXPECT_FALSE(parse_jaeger_services("not json", error));
  EXPECT_NE(error, "");
}

TEST(TraceViewWaterfall, HeaderNamesTraceSpansServicesAndTotal) {
  const auto lines = lines_of(render_waterfall(the_trace()));
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0].rfind("trace 4bf92f3577b34da6a3ce929d0e0e4736  5 spans  services: api-kafka, antifraud, "
                           "settlement  total 30.0 ms  started 2025-11-28 16:24:20.123 UTC",
                           0),
            0u)
      << lines[0];
}

TEST(TraceViewWaterfall, ChildrenFollowTheirParentInStartOrderIndentedByDepth) {
  const auto lines = lines_of(render_waterfall(the_trace()));
  // Header, column header, then the spans in tree order.
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_NE(lines[2].find("api-kafka: POST /kafka"), std::string::npos);
  EXPECT_NE(lines[3].find("api-kafka: send pix.payment.requested"), std::string::npos);
  EXPECT_NE(lines[4].find("antifraud: process pix.payment.requested"), std::string::npos);  // follows its producer
  EXPECT_NE(lines[5].find("api-kafka: publish pix"), std::string::npos);  // started after send, before process
  EXPECT_NE(lines[6].find("settlement: settle"), std::string::npos);
  EXPECT_EQ(indent_of(lines[2], "api-kafka: POST"), 0u);
  EXPECT_EQ(indent_of(lines[3], "api-kafka: send"), 2u);
  EXPECT_EQ(indent_of(lines[4], "antifraud: process"), 4u);
  EXPECT_EQ(indent_of(lines[5], "api-kafka: publish"), 2u);
}

TEST(TraceViewWaterfall, OrphanIsPrintedAtDepthZeroAndMarked) {
  const auto lines = lines_of(render_waterfall(the_trace()));
  const auto orphan = line_of(lines, "settlement: settle");
  ASSERT_NE(orphan, "");
  EXPECT_EQ(indent_of(orphan, "settlement: settle"), 0u);
  EXPECT_NE(orphan.find("(parent ffffffffffffffff is not in this trace)"), std::string::npos);
}

TEST(TraceViewWaterfall, StatusKindAndOffsets) {
  const auto lines = lines_of(render_waterfall(the_trace()));
  const auto root = line_of(lines, "POST /kafka");
  const auto send = line_of(lines, "send pix.payment.requested");
  const auto process = line_of(lines, "process pix.payment.requested");
  const auto orphan = line_of(lines, "settle");
  EXPECT_NE(send.find("producer  ERROR: broker-ack-timeout"), std::string::npos) << send;
  EXPECT_NE(root.find("server    OK"), std::string::npos) << root;
  EXPECT_NE(orphan.find("-         OK"), std::string::npos) << orphan;  // no span.kind tag
  // Start offset from the trace's start, then duration, both in ms.
  EXPECT_EQ(root.rfind("      0.0       30.0  |", 0), 0u) << root;
  EXPECT_EQ(send.rfind("      1.0        8.0  |", 0), 0u) << send;
  EXPECT_EQ(process.rfind("     17.0       10.0  |", 0), 0u) << process;
  EXPECT_EQ(orphan.rfind("     22.0      0.500  |", 0), 0u) << orphan;  // sub-millisecond keeps its digits
}

TEST(TraceViewWaterfall, KeyAttributesOnlyWhenPresent) {
  const auto lines = lines_of(render_waterfall(the_trace()));
  const auto root = line_of(lines, "POST /kafka");
  EXPECT_NE(root.find("http.response.status_code=200  http.route=/kafka  pix.transaction_id=tx-1"), std::string::npos)
      << root;
  EXPECT_EQ(root.find("otel.scope.name"), std::string::npos);
  EXPECT_NE(line_of(lines, "send pix").find("messaging.destination.name=pix.payment.requested"), std::string::npos);
  EXPECT_EQ(line_of(lines, "send pix").find("messaging.system"), std::string::npos);
  const auto process = line_of(lines, "process pix");
  EXPECT_NE(process.find("messaging.destination.partition.id=2  messaging.kafka.offset=9007199254740993"),
            std::string::npos)
      << process;
  EXPECT_NE(line_of(lines, "publish pix").find("messaging.rabbitmq.destination.routing_key=pix.payment.requested"),
            std::string::npos);
  EXPECT_NE(line_of(lines, "settle").find("pix.amount_cents=1500"), std::string::npos);
}

TEST(TraceViewWaterfall, BarsScaleToTheTraceAndNeverVanish) {
  const auto lines = lines_of(render_waterfall(the_trace(), WaterfallOptions{30}));
  const auto root = line_of(lines, "POST /kafka");
  const auto send = line_of(lines, "send pix");
  const auto process = line_of(lines, "process pix");
  const auto orphan = line_of(lines, "settle");
  EXPECT_EQ(bar_of(root).size(), 30u);
  EXPECT_EQ(filled(root), 30u);  // the root spans the whole trace
  EXPECT_EQ(filled(send), 8u);   // 8 of 30 ms
  EXPECT_EQ(filled(process), 10u);
  EXPECT_EQ(filled(orphan), 1u);  // 0.5 ms: half a cell, still drawn
  // Bars start where their span starts: the consumer after the producer has ended.
  EXPECT_GT(bar_of(process).find('#'), bar_of(send).find('#') + filled(send) - 1);
  EXPECT_EQ(bar_of(process).find('#'), 17u);
  EXPECT_EQ(bar_of(process).rfind('#'), 26u);
  const auto wide = lines_of(render_waterfall(the_trace(), WaterfallOptions{60}));
  EXPECT_EQ(filled(line_of(wide, "send pix")), 16u);
}

TEST(TraceViewWaterfall, ReferenceCycleStillPrintsEverySpanOnce) {
  const auto answer = parse_jaeger_traces(R"({"data":[{"traceID":"t","spans":[
      {"spanID":"a","operationName":"first","startTime":10,"duration":5,"references":[{"refType":"CHILD_OF","spanID":"b"}]},
      {"spanID":"b","operationName":"second","startTime":11,"duration":5,"references":[{"refType":"CHILD_OF","spanID":"a"}]}],
      "processes":{}}]})");
  ASSERT_EQ(answer.traces.size(), 1u);
  const auto lines = lines_of(render_waterfall(answer.traces[0]));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_NE(lines[2].find(": first"), std::string::npos);
  EXPECT_NE(lines[3].find(": second"), std::string::npos);
}

TEST(TraceViewSearch, SeveralTracesDistinctMostRecentFirst) {
  auto first = parse_jaeger_traces(kSearchAnswer);
  ASSERT_EQ(first.error, "");
  ASSERT_EQ(first.traces.size(), 2u);
  // The same trace found again through another service's search counts once.
  auto second = parse_jaeger_traces(kSearchAnswer);
  auto all = first.traces;
  all.insert(all.end(), second.traces.begin(), second.traces.end());
  const auto traces = distinct_most_recent_first(std::move(all));
  ASSERT_EQ(traces.size(), 2u);
  EXPECT_EQ(traces[0].trace_id, "22222222222222222222222222222222");
  EXPECT_EQ(traces[1].trace_id, "11111111111111111111111111111111");
  EXPECT_NE(render_waterfall(traces[0]).find("api-rabbitmq: POST /rabbit"), std::string::npos);
  // --json prints them back as one query-API answer, readable by the same parser.
  const auto again = parse_jaeger_traces(jaeger_answer_json(traces));
  EXPECT_EQ(again.error, "");
  ASSERT_EQ(again.traces.size(), 2u);
  EXPECT_EQ(again.traces[0].trace_id, traces[0].trace_id);
  EXPECT_EQ(again.traces[0].spans.at(0).service, "api-rabbitmq");
}

TEST(TraceViewQuery, TraceIdsAreThirtyTwoLowercaseHex) {
  EXPECT_TRUE(is_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"));
  EXPECT_FALSE(is_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736"));
  EXPECT_FALSE(is_trace_id("4bf92f3577b34da6"));
  EXPECT_FALSE(is_trace_id("e2e-4bf92f3577b34da6a3ce929d0e0e47"));
  EXPECT_FALSE(is_trace_id("0b8a6f1e-5c3d-4e2a-9f7b-1c2d3e4f5a6b"));  // a UUID transaction id
}

TEST(TraceViewQuery, LookbackAsTheJaegerUiWritesIt) {
  EXPECT_EQ(parse_lookback("30m"), 30LL * 60 * 1'000'000);
  EXPECT_EQ(parse_lookback("24h"), 24LL * 3600 * 1'000'000);
  EXPECT_EQ(parse_lookback("2d"), 2LL * 86400 * 1'000'000);
  EXPECT_EQ(parse_lookback("1w"), 7LL * 86400 * 1'000'000);
  for (const char* bad : {"", "h", "24", "0h", "-1h", "1.5h", "1h30m", "24H", "99999999999999999999d", "53w"}) {
    EXPECT_FALSE(parse_lookback(bad)) << bad;
  }
}

TEST(TraceViewQuery, SearchTargetSendsTheWindowAsStartAndEnd) {
  const std::int64_t now = 1764347060123456;
  EXPECT_EQ(transaction_search_target("api-kafka", "tx \"1\"&", "1h", now),
            "/api/traces?service=api-kafka&tags=%7B%22pix.transaction_id%22%3A%22tx%20%5C%221%5C%22%26%22%7D"
            "&start=1764343460123456&end=1764347060123456&lookback=1h&limit=20");
  EXPECT_THROW(transaction_search_target("api-kafka", "tx", "1 hour", now), std::invalid_argument);
  EXPECT_EQ(percent_encode("a b/c~d_e.f-g"), "a%20b%2Fc~d_e.f-g");
}

}  // namespace
}  // namespace pix::telemetry
