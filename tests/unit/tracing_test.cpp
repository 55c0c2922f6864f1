// The tracer, the batch exporter and the OTEL_* configuration, with a fake transport standing in
// for the backend (the integration tests export to a real Jaeger).
#include <gtest/gtest.h>

#include <spdlog/spdlog.h>
#include <boost/json/parse.hpp>

#include <atomic>
#include <limits>
#include <map>
#include <mutex>

#include "pix/http/url.hpp"
#include "pix/telemetry/logging.hpp"
#include "pix/telemetry/tracer.hpp"

namespace pix::telemetry {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

std::optional<TracingConfig> config_of(const std::map<std::string, std::string>& env, std::string& error) {
  return tracing_config_from_env(
      "antifraud", "host-1",
      [&env](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      error);
}

std::string resource_value(const TracingConfig& c, std::string_view key) {
  for (const auto& a : c.resource.attributes) {
    if (a.key == key) return std::get<std::string>(a.value);
  }
  return "<unset>";
}

TEST(TracingConfig, IsOffUntilAnEndpointIsGiven) {
  std::string error;
  auto c = config_of({}, error);
  ASSERT_TRUE(c) << error;
  EXPECT_FALSE(c->enabled);
  c = config_of({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/"}}, error);
  ASSERT_TRUE(c) << error;
  EXPECT_TRUE(c->enabled);
  EXPECT_EQ(c->endpoint_text, "http://127.0.0.1:4318/v1/traces");
  EXPECT_EQ(c->endpoint.port, 4318);
  EXPECT_EQ(c->endpoint.target, "/v1/traces");
  c = config_of({{"OTEL_TRACES_EXPORTER", "otlp"}}, error);
  ASSERT_TRUE(c) << error;
  EXPECT_TRUE(c->enabled) << "an explicit exporter uses the specification's default endpoint";
  EXPECT_EQ(c->endpoint_text, "http://localhost:4318/v1/traces");
}

TEST(TracingConfig, TheTracesEndpointIsUsedAsGivenAndWins) {
  std::string error;
  auto c = config_of({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"},
                      {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces.example:443/custom/path"}},
                     error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->endpoint.host, "traces.example");
  EXPECT_TRUE(c->endpoint.tls);
  EXPECT_EQ(c->endpoint.target, "/custom/path");
}

TEST(TracingConfig, DisabledWinsOverAnEndpoint) {
  std::string error;
  for (const auto& off : std::vector<std::map<std::string, std::string>>{
           {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"}, {"OTEL_SDK_DISABLED", "true"}},
           {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"}, {"OTEL_SDK_DISABLED", "TRUE"}},
           {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"}, {"OTEL_TRACES_EXPORTER", "none"}}}) {
    auto c = config_of(off, error);
    ASSERT_TRUE(c) << error;
    EXPECT_FALSE(c->enabled);
  }
}

TEST(TracingConfig, ResourceAttributesServiceNameAndHeaders) {
  std::string error;
  auto c = config_of({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"},
                      {"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging, team=pix%20core,service.name=x"},
                      {"OTEL_SERVICE_NAME", "antifraud-eu"},
                      {"OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20abc,X-Tenant=pix"}},
                     error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(resource_value(*c, "service.name"), "antifraud-eu") << "OTEL_SERVICE_NAME wins";
  EXPECT_EQ(resource_value(*c, "deployment.environment"), "staging");
  EXPECT_EQ(resource_value(*c, "team"), "pix core");
  EXPECT_EQ(resource_value(*c, "service.instance.id"), "host-1");
  EXPECT_EQ(resource_value(*c, "service.version"), PIX_VERSION);
  ASSERT_EQ(c->headers.size(), 2u);
  EXPECT_EQ(c->headers[0].first, "Authorization");
  EXPECT_EQ(c->headers[0].second, "Bearer abc");
  c = config_of({}, error);
  ASSERT_TRUE(c);
  EXPECT_EQ(resource_value(*c, "service.name"), "antifraud");
  EXPECT_EQ(resource_value(*c, "deployment.environment"), "development");
}

TEST(TracingConfig, BadValuesNameTheirVariable) {
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>> cases = {
      {{{"OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://127.0.0.1:4317"}}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
      {{{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://:4318"}}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
      {{{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
      {{{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"}}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
      {{{"OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"}}, "OTEL_EXPORTER_OTLP_HEADERS"},
      {{{"OTEL_EXPORTER_OTLP_HEADERS", "X-Split=a%0D%0AInjected: b"}}, "OTEL_EXPORTER_OTLP_HEADERS"},
      {{{"OTEL_EXPORTER_OTLP_TIMEOUT", "10s"}}, "OTEL_EXPORTER_OTLP_TIMEOUT"},
      {{{"OTEL_TRACES_SAMPLER", "sometimes"}}, "OTEL_TRACES_SAMPLER"},
      {{{"OTEL_TRACES_SAMPLER", "traceidratio"}, {"OTEL_TRACES_SAMPLER_ARG", "half"}}, "OTEL_TRACES_SAMPLER_ARG"},
      {{{"OTEL_BSP_MAX_QUEUE_SIZE", "0"}}, "OTEL_BSP_MAX_QUEUE_SIZE"},
      {{{"OTEL_BSP_SCHEDULE_DELAY", "-5"}}, "OTEL_BSP_SCHEDULE_DELAY"},
      {{{"OTEL_SDK_DISABLED", "yes"}}, "OTEL_SDK_DISABLED"},
      {{{"OTEL_TRACES_EXPORTER", "zipkin"}}, "OTEL_TRACES_EXPORTER"},
      {{{"OTEL_RESOURCE_ATTRIBUTES", "=x"}}, "OTEL_RESOURCE_ATTRIBUTES"},
  };
  for (const auto& [env, variable] : cases) {
    std::string error;
    EXPECT_FALSE(config_of(env, error)) << variable;
    EXPECT_NE(error.find(variable), std::string::npos) << error;
  }
}

TEST(TracingConfig, SamplerAndBatchLimits) {
  std::string error;
  auto c = config_of({{"OTEL_TRACES_SAMPLER", "parentbased_traceidratio"},
                      {"OTEL_TRACES_SAMPLER_ARG", "0.01"},
                      {"OTEL_BSP_MAX_QUEUE_SIZE", "100"},
                      {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512"},
                      {"OTEL_BSP_SCHEDULE_DELAY", "250"}},
                     error);
  ASSERT_TRUE(c) << error;
  EXPECT_DOUBLE_EQ(c->sampler.ratio(), 0.01);
  EXPECT_TRUE(c->sampler.parent_based());
  EXPECT_EQ(c->max_queue, 100u);
  EXPECT_EQ(c->max_batch, 100u) << "a batch is never larger than the queue";
  EXPECT_EQ(c->schedule_delay, 250ms);
}

// ---- the exporter, against a fake backend ------------------------------------------------------

/// Answers each export with the next scripted status (200 once the script runs out) and keeps
/// the span names it was sent.
class FakeBackend {
 public:
  explicit FakeBackend(std::vector<ExportAttempt> script = {}) : script_(std::move(script)) {}
  ExportTransport transport() {
    return [this](const std::string& body) {
      std::lock_guard lock(mutex_);
      ++requests_;
      const auto v = json::parse(body);
      for (const auto& rs : v.at("resourceSpans").as_array()) {
        for (const auto& ss : rs.at("scopeSpans").as_array()) {
          for (const auto& s : ss.at("spans").as_array()) names_.emplace_back(s.at("name").as_string());
        }
      }
      if (script_.empty()) return ExportAttempt{200, "", "{}", ""};
      auto next = script_.front();
      script_.erase(script_.begin());
      return next;
    };
  }
  int requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::vector<std::string> names() const {
    std::lock_guard lock(mutex_);
    return names_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<ExportAttempt> script_;
  std::vector<std::string> names_;
  int requests_ = 0;
};

SpanData span_named(std::string name) {
  SpanData s;
  s.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  s.span_id = "00f067aa0ba902b7";
  s.name = std::move(name);
  return s;
}

BatchExporter::Options fast_options() {
  BatchExporter::Options o;
  o.max_queue = 8;
  o.max_batch = 4;
  o.schedule_delay = 10min;  // only full batches and flushes send, so the tests decide when
  o.initial_backoff = 1ms;
  o.max_backoff = 4ms;
  return o;
}

std::uint64_t counter_value(const Registry& metrics, std::string_view line_start) {
  const std::string text = metrics.render();
  const auto at = text.find(std::string("\n") + std::string(line_start) + " ");
  if (at == std::string::npos) return 0;
  return std::stoull(text.substr(at + line_start.size() + 2));
}

TEST(BatchExporter, SendsQueuedSpansInBatchesOnFlush) {
  FakeBackend backend;
  Registry metrics;
  BatchExporter e(fast_options(), {}, backend.transport(), &metrics);
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(e.enqueue(span_named("s" + std::to_string(i))));
  ASSERT_TRUE(e.flush(5s));
  EXPECT_EQ(backend.names(), (std::vector<std::string>{"s0", "s1", "s2", "s3", "s4", "s5"}));
  EXPECT_EQ(backend.requests(), 2) << "6 spans in batches of at most 4";
  EXPECT_EQ(e.exported(), 6u);
  EXPECT_EQ(counter_value(metrics, "pix_trace_spans_exported_total"), 6u);
}

TEST(BatchExporter, AFullQueueDropsAndCountsInsteadOfWaiting) {
  // The backend hangs on to the first batch until released: the queue fills behind it.
  std::mutex gate;
  gate.lock();
  std::atomic<int> calls{0};
  Registry metrics;
  auto o = fast_options();
  {
    BatchExporter e(
        o, {},
        [&](const std::string&) {
          if (calls++ == 0) {
            std::lock_guard wait(gate);
          }
          return ExportAttempt{200, "", "{}", ""};
        },
        &metrics);
    for (int i = 0; i < 4; ++i) e.enqueue(span_named("first"));  // a full batch: the worker takes it
    while (calls.load() == 0) std::this_thread::sleep_for(1ms);
    int accepted = 0;
    for (int i = 0; i < 20; ++i) accepted += e.enqueue(span_named("later")) ? 1 : 0;
    EXPECT_EQ(accepted, 8) << "the queue holds max_queue spans, no more";
    EXPECT_EQ(e.queued(), 8u);
    EXPECT_EQ(counter_value(metrics, R"(pix_trace_spans_dropped_total{reason="queue_full"})"), 12u);
    gate.unlock();
    EXPECT_TRUE(e.flush(5s));
    EXPECT_EQ(e.exported(), 12u);
  }
}

TEST(BatchExporter, RetriesTheRetryableStatusesThenDelivers) {
  FakeBackend backend({{503, "", "", ""}, {429, "0", "", ""}, {0, "", "", "connect: refused"}, {502, "", "", ""}});
  BatchExporter e(fast_options(), {}, backend.transport(), nullptr);
  e.enqueue(span_named("a"));
  ASSERT_TRUE(e.flush(5s));
  EXPECT_EQ(backend.requests(), 5);
  EXPECT_EQ(e.exported(), 1u);
  EXPECT_EQ(e.dropped(), 0u);
}

TEST(BatchExporter, NeverRetriesABadRequest) {
  FakeBackend backend({{400, "", R"({"message":"bad span"})", ""}});
  Registry metrics;
  BatchExporter e(fast_options(), {}, backend.transport(), &metrics);
  e.enqueue(span_named("a"));
  e.enqueue(span_named("b"));
  ASSERT_TRUE(e.flush(5s));
  EXPECT_EQ(backend.requests(), 1);
  EXPECT_EQ(e.exported(), 0u);
  EXPECT_EQ(counter_value(metrics, R"(pix_trace_spans_dropped_total{reason="rejected"})"), 2u);
}

TEST(BatchExporter, GivesUpAfterItsAttemptsAndCountsTheLoss) {
  FakeBackend backend(std::vector<ExportAttempt>(10, ExportAttempt{503, "", "", ""}));
  Registry metrics;
  auto o = fast_options();
  o.max_attempts = 3;
  BatchExporter e(o, {}, backend.transport(), &metrics);
  e.enqueue(span_named("a"));
  ASSERT_TRUE(e.flush(5s));
  EXPECT_EQ(backend.requests(), 3);
  EXPECT_EQ(counter_value(metrics, R"(pix_trace_spans_dropped_total{reason="export_failed"})"), 1u);
  EXPECT_EQ(counter_value(metrics, "pix_trace_export_failures_total"), 3u);
}

TEST(BatchExporter, CountsWhatAPartialSuccessRejected) {
  FakeBackend backend({{200, "", R"({"partialSuccess":{"rejectedSpans":"1","errorMessage":"too old"}})", ""}});
  BatchExporter e(fast_options(), {}, backend.transport(), nullptr);
  for (int i = 0; i < 3; ++i) e.enqueue(span_named("x"));
  ASSERT_TRUE(e.flush(5s));
  EXPECT_EQ(e.exported(), 2u);
  EXPECT_EQ(e.dropped(), 1u);
}

TEST(BatchExporter, ExportsWhatIsLeftWhenDestroyed) {
  FakeBackend backend;
  {
    BatchExporter e(fast_options(), {}, backend.transport(), nullptr);
    e.enqueue(span_named("last words"));
  }
  EXPECT_EQ(backend.names(), std::vector<std::string>{"last words"});
}

// ---- spans and the tracer ----------------------------------------------------------------------

TracingConfig enabled_config(double ratio = 1.0) {
  TracingConfig c;
  c.enabled = true;
  c.sampler = Sampler(ratio, true);
  c.schedule_delay = 10min;
  return c;
}

TEST(OtlpJsonWriter, EscapesWhatJsonMustAndKeepsEveryType) {
  SpanData s = span_named("say \"oi\"\n\x01 ação \\ fim");
  s.attributes = {{"pix.ratio", 0.125}, {"pix.big", std::int64_t{-9'007'199'254'740'993}}};
  append_attribute_json(s.encoded_attributes, "pix.key\"q", std::string_view("v\tw"));
  append_attribute_json(s.encoded_attributes, "pix.ok", true);
  append_attribute_json(s.encoded_attributes, "pix.nan", std::numeric_limits<double>::quiet_NaN());
  const auto v = json::parse(encode_otlp_json({}, {s}, "1.0"));
  const auto& span = v.at("resourceSpans").at(0).at("scopeSpans").at(0).at("spans").at(0);
  EXPECT_EQ(span.at("name").as_string(), "say \"oi\"\n\x01 ação \\ fim");
  const auto& attrs = span.at("attributes").as_array();
  ASSERT_EQ(attrs.size(), 5u);
  EXPECT_EQ(attrs[0].at("value").at("doubleValue").as_double(), 0.125);
  EXPECT_EQ(attrs[1].at("value").at("intValue").as_string(), "-9007199254740993");
  EXPECT_EQ(attrs[2].at("key").as_string(), "pix.key\"q");
  EXPECT_EQ(attrs[2].at("value").at("stringValue").as_string(), "v\tw");
  EXPECT_EQ(attrs[3].at("value").at("boolValue").as_bool(), true);
  EXPECT_EQ(attrs[4].at("value").at("doubleValue").as_string(), "NaN") << "the protobuf JSON mapping's spelling";
}

TEST(Tracer, ADisabledTracerPropagatesContextAndRecordsNothing) {
  Tracer off;
  const TraceContext parent{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true};
  Span s = off.start("POST /kafka", SpanKind::kServer, parent);
  EXPECT_TRUE(s.valid());
  EXPECT_FALSE(s.recording());
  EXPECT_EQ(s.context().trace_id, parent.trace_id);
  EXPECT_NE(s.context().span_id, parent.span_id);
  Span child = s.child("send", SpanKind::kProducer);
  EXPECT_EQ(child.context().trace_id, parent.trace_id);
}

TEST(Tracer, RecordsParentKindAttributesAndStatus) {
  FakeBackend backend;
  std::vector<SpanData> seen;
  std::mutex m;
  Tracer t(enabled_config(), nullptr, [&](const std::string& body) {
    std::lock_guard lock(m);
    const auto v = json::parse(body);
    for (const auto& s : v.at("resourceSpans").at(0).at("scopeSpans").at(0).at("spans").as_array()) {
      SpanData d;
      d.name = s.at("name").as_string();
      d.span_id = s.at("spanId").as_string();
      d.trace_id = s.at("traceId").as_string();
      if (const auto* p = s.as_object().if_contains("parentSpanId")) d.parent_span_id = p->as_string();
      d.kind = static_cast<SpanKind>(s.at("kind").as_int64());
      if (const auto* st = s.as_object().if_contains("status")) {
        d.status = static_cast<SpanStatus>(st->at("code").as_int64());
        d.status_message = st->at("message").as_string();
      }
      const auto* attributes = s.as_object().if_contains("attributes");
      d.attributes.push_back({"count", static_cast<std::int64_t>(attributes ? attributes->as_array().size() : 0)});
      seen.push_back(std::move(d));
    }
    return ExportAttempt{200, "", "{}", ""};
  });
  std::string server_id, producer_id;
  {
    Span server = t.start("POST /kafka", SpanKind::kServer, std::nullopt);
    server.set("http.response.status_code", std::int64_t{504}).set("pix.transaction_id", "tx-1");
    server_id = server.context().span_id;
    Span producer = server.child("send pix.payment.requested", SpanKind::kProducer);
    producer_id = producer.context().span_id;
    producer.set_error("timed_out: no ack in 5 s");
  }  // both end here, the producer first
  ASSERT_TRUE(t.flush(5s));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].name, "send pix.payment.requested");
  EXPECT_EQ(seen[0].kind, SpanKind::kProducer);
  EXPECT_EQ(seen[0].parent_span_id, server_id);
  EXPECT_EQ(seen[0].status, SpanStatus::kError);
  EXPECT_EQ(seen[0].status_message, "timed_out: no ack in 5 s");
  EXPECT_EQ(seen[1].name, "POST /kafka");
  EXPECT_EQ(seen[1].parent_span_id, "") << "a request without traceparent starts a trace";
  EXPECT_EQ(seen[1].span_id, server_id);
  EXPECT_EQ(std::get<std::int64_t>(seen[1].attributes[0].value), 2);
  EXPECT_EQ(seen[0].trace_id, seen[1].trace_id);
}

TEST(Tracer, AnUnsampledTraceRecordsNothingAndSaysSoDownstream) {
  FakeBackend backend;
  Tracer t(enabled_config(0.0), nullptr, backend.transport());
  Span root = t.start("POST /kafka", SpanKind::kServer, std::nullopt);
  EXPECT_FALSE(root.recording());
  EXPECT_TRUE(root.valid());
  EXPECT_FALSE(root.context().sampled);
  EXPECT_TRUE(root.context().to_traceparent().ends_with("-00"));
  // Parent-based: a sampled caller's trace is recorded whatever the ratio.
  Span followed = t.start("process", SpanKind::kConsumer,
                          TraceContext{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true});
  EXPECT_TRUE(followed.recording());
  followed.end();
  root.end();
  ASSERT_TRUE(t.flush(5s));
  EXPECT_EQ(backend.names(), std::vector<std::string>{"process"});
}

TEST(Tracer, ChildSpanParentsOnTheActiveSpanOnly) {
  FakeBackend backend;
  Tracer t(enabled_config(), nullptr, backend.transport());
  EXPECT_FALSE(child_span("orphan").valid()) << "no active span: a no-op";
  Span record = t.start("process pix.payment.validated", SpanKind::kConsumer, std::nullopt);
  {
    const ActiveSpan active(record);
    Span effect = child_span("ledger transaction");
    EXPECT_TRUE(effect.recording());
    EXPECT_EQ(effect.context().trace_id, record.context().trace_id);
    EXPECT_EQ(active_span(), &record);
  }
  EXPECT_EQ(active_span(), nullptr);
  record.end();
  record.end();  // ending twice sends it once
  ASSERT_TRUE(t.flush(5s));
  EXPECT_EQ(backend.names(), (std::vector<std::string>{"ledger transaction", "process pix.payment.validated"}));
}

TEST(Logging, JsonLinesWrittenInASpanCarryItsIds) {
  Tracer off;
  Span s = off.start("process", SpanKind::kConsumer, std::nullopt);
  const auto previous = spdlog::default_logger();
  setup_logging("tracing-test", "info", "json");
  testing::internal::CaptureStderr();
  spdlog::info("outside");
  {
    const ActiveSpan active(s);
    spdlog::info("inside");
  }
  const std::string out = testing::internal::GetCapturedStderr();
  const auto newline = out.find('\n');
  ASSERT_NE(newline, std::string::npos);
  const auto outside = json::parse(out.substr(0, newline)).as_object();
  const auto inside = json::parse(out.substr(newline + 1)).as_object();
  EXPECT_FALSE(outside.contains("trace_id"));
  EXPECT_EQ(inside.at("trace_id").as_string(), s.context().trace_id);
  EXPECT_EQ(inside.at("span_id").as_string(), s.context().span_id);
  EXPECT_EQ(inside.at("msg").as_string(), "inside");
  spdlog::set_default_logger(previous);
}

TEST(HttpUrl, OneParserForEveryClient) {
  std::string error;
  auto u = http::parse_url("HTTP://Collector.example:4318/v1/traces?x=1#frag", error);
  ASSERT_TRUE(u) << error;
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "Collector.example");
  EXPECT_EQ(u->authority, "Collector.example:4318");
  EXPECT_EQ(u->target, "/v1/traces?x=1");
  u = http::parse_url("https://[::1]?q", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/?q");
  error.clear();
  EXPECT_FALSE(http::parse_url("http://user:secret@collector:4318/", error));
  EXPECT_NE(error.find("credentials"), std::string::npos) << error;
}

}  // namespace
}  // namespace pix::telemetry
