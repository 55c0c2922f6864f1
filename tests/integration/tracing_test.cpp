// Traces of real payments in a real trace backend: the real pix-api and the four real stages
// export OTLP to the Jaeger the test scripts start (scripts/local/jaeger.sh), and the test reads
// each trace back through Jaeger's query API, as `pix-admin trace` does.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "pix/http/client.hpp"
#include "pix/util/random_id.hpp"
#include "support/http_client.hpp"
#include "support/saga_world.hpp"
#include "support/service_process.hpp"

namespace pix::test {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
namespace asio = boost::asio;

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}
std::string jaeger_query_url() {
  return env_or("PIX_JAEGER_URL", "http://127.0.0.1:16686");
}
std::string otlp_endpoint() {
  return env_or("PIX_OTLP_ENDPOINT", "http://127.0.0.1:4318");
}

/// What every traced process of a test gets: export to the test backend, in small, quick batches.
std::map<std::string, std::string> tracing_env(const std::string& endpoint = otlp_endpoint()) {
  return {{"OTEL_EXPORTER_OTLP_ENDPOINT", endpoint}, {"OTEL_BSP_SCHEDULE_DELAY", "200"}};
}

/// One span as Jaeger's query API answers it.
struct JaegerSpan {
  std::string id;
  std::string name;
  std::string service;
  std::string parent;  ///< CHILD_OF reference, "" for none
  std::map<std::string, std::string> tags;
  std::string tag(const std::string& key) const {
    auto it = tags.find(key);
    return it == tags.end() ? "<none>" : it->second;
  }
};

std::string text_of(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_bool()) return v.as_bool() ? "true" : "false";
  return json::serialize(v);
}

/// The trace's spans, or none when Jaeger does not know it (yet).
std::vector<JaegerSpan> fetch_trace(const std::string& trace_id) {
  std::string error;
  auto url = http::parse_url(jaeger_query_url() + "/api/traces/" + trace_id, error);
  if (!url) throw std::runtime_error(error);
  http::ClientRequest req;
  req.url = *url;
  req.timeout = 5s;
  req.max_response_bytes = 16 << 20;
  const auto res = http::send_request(req);
  if (res.status == 404) return {};
  if (res.status != 200) {
    throw std::runtime_error("Jaeger at " + jaeger_query_url() + ": " +
                             (res.error.empty() ? "HTTP " + std::to_string(res.status) : res.error) +
                             " (scripts/local/jaeger.sh start runs it)");
  }
  std::vector<JaegerSpan> out;
  const auto doc = json::parse(res.body);
  for (const auto& trace : doc.at("data").as_array()) {
    std::map<std::string, std::string> services;
    for (const auto& [pid, process] : trace.at("processes").as_object()) {
      services[std::string(pid)] = text_of(process.at("serviceName"));
    }
    for (const auto& s : trace.at("spans").as_array()) {
      JaegerSpan span;
      span.id = text_of(s.at("spanID"));
      span.name = text_of(s.at("operationName"));
      span.service = services[text_of(s.at("processID"))];
      for (const auto& r : s.at("references").as_array()) {
        if (text_of(r.at("refType")) == "CHILD_OF") span.parent = text_of(r.at("spanID"));
      }
      for (const auto& t : s.at("tags").as_array()) span.tags[text_of(t.at("key"))] = text_of(t.at("value"));
      out.push_back(std::move(span));
    }
  }
  return out;
}

/// Polls Jaeger until the trace holds `expected` spans named as listed (spans arrive in batches
/// from several processes); returns what it has then.
std::vector<JaegerSpan> wait_for_trace(const std::string& trace_id, const std::multiset<std::string>& expected,
                                       std::chrono::seconds timeout = 60s) {
  std::vector<JaegerSpan> spans;
  eventually(
      [&] {
        spans = fetch_trace(trace_id);
        std::multiset<std::string> names;
        for (const auto& s : spans) names.insert(s.service + " " + s.name);
        return std::includes(names.begin(), names.end(), expected.begin(), expected.end());
      },
      timeout, 500ms);
  return spans;
}

/// The one span of `service` named `name`; fails the test when there is not exactly one.
const JaegerSpan& the_span(const std::vector<JaegerSpan>& spans, const std::string& service, const std::string& name) {
  const JaegerSpan* found = nullptr;
  int n = 0;
  for (const auto& s : spans) {
    if (s.service == service && s.name == name) {
      found = &s;
      ++n;
    }
  }
  static const JaegerSpan none;
  EXPECT_EQ(n, 1) << service << " " << name;
  return found ? *found : none;
}

std::string names_of(const std::vector<JaegerSpan>& spans) {
  std::string out;
  for (const auto& s : spans) out += "\n  " + s.service + " " + s.name + " (" + s.tag("span.kind") + ")";
  return out;
}

TEST(Tracing, AKafkaPaymentIsOneTraceThroughEveryStage) {
  SagaWorld world;
  world.add_env(tracing_env());
  ASSERT_NO_FATAL_FAILURE(world.start_all());
  auto api = world.api_client();
  const std::string trace_id = util::random_hex(16), caller_span = util::random_hex(8);
  const auto reply = world.post(*api, saga_payment("traced-1", "\"12.34\"", 1, 2),
                                {{"traceparent", "00-" + trace_id + "-" + caller_span + "-01"}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.header("traceparent").substr(3, 32), trace_id) << "the answer names the caller's trace";
  const auto body = json::parse(reply.body).as_object();
  world.wait_for([](const saga::SagaReport& r) { return r.notified >= 1 && r.audited >= 4; }, 60s);

  const std::string p = world.prefix();
  const std::string queue = world.rabbit_topology().queue_prefix + "pix.notification.sent";
  const auto spans = wait_for_trace(
      trace_id, {"api-kafka POST /kafka", "api-kafka send pix.payment.requested",
                 "antifraud process " + p + "pix.payment.requested", "antifraud antifraud decide",
                 "antifraud send " + p + "pix.payment.validated", "settlement process " + p + "pix.payment.validated",
                 "settlement ledger transaction", "settlement send " + p + "pix.payment.settled",
                 "notifier process " + p + "pix.payment.settled", "notifier send pix.notification.sent",
                 "auditor process " + p + "pix.payment.requested", "auditor process " + p + "pix.payment.validated",
                 "auditor process " + p + "pix.payment.settled", "auditor process " + queue});
  SCOPED_TRACE("spans:" + names_of(spans));

  // The gateway: SERVER under the caller's span, PRODUCER under it, acked at the answer's offset.
  const auto& server = the_span(spans, "api-kafka", "POST /kafka");
  EXPECT_EQ(server.parent, caller_span);
  EXPECT_EQ(server.tag("span.kind"), "server");
  EXPECT_EQ(server.tag("http.request.method"), "POST");
  EXPECT_EQ(server.tag("http.route"), "/kafka");
  EXPECT_EQ(server.tag("http.response.status_code"), "200");
  EXPECT_EQ(server.tag("url.scheme"), "http");
  EXPECT_EQ(server.tag("client.address"), "127.0.0.1");
  EXPECT_EQ(server.tag("pix.transaction_id"), "traced-1");
  const auto& send = the_span(spans, "api-kafka", "send pix.payment.requested");
  EXPECT_EQ(send.parent, server.id);
  EXPECT_EQ(send.tag("span.kind"), "producer");
  EXPECT_EQ(send.tag("messaging.system"), "kafka");
  EXPECT_EQ(send.tag("messaging.operation.type"), "send");
  EXPECT_EQ(send.tag("messaging.destination.name"), p + "pix.payment.requested");
  EXPECT_EQ(send.tag("messaging.kafka.message.key"), "pix-0001");
  EXPECT_EQ(send.tag("messaging.message.id"), text_of(body.at("eventId")));
  EXPECT_EQ(send.tag("messaging.destination.partition.id"), text_of(body.at("partition")));
  EXPECT_EQ(send.tag("messaging.kafka.offset"), text_of(body.at("offset")));

  // Each stage: CONSUMER under the PRODUCER of the record it read, its effect and its own
  // PRODUCER under that.
  const auto& af = the_span(spans, "antifraud", "process " + p + "pix.payment.requested");
  EXPECT_EQ(af.parent, send.id);
  EXPECT_EQ(af.tag("span.kind"), "consumer");
  EXPECT_EQ(af.tag("messaging.consumer.group.name"), "antifraud." + p);
  EXPECT_EQ(af.tag("messaging.destination.partition.id"), text_of(body.at("partition")));
  EXPECT_EQ(af.tag("messaging.kafka.offset"), text_of(body.at("offset")));
  const auto& decide = the_span(spans, "antifraud", "antifraud decide");
  EXPECT_EQ(decide.parent, af.id);
  EXPECT_EQ(decide.tag("pix.antifraud.status"), "validated");
  const auto& af_send = the_span(spans, "antifraud", "send " + p + "pix.payment.validated");
  EXPECT_EQ(af_send.parent, af.id);
  EXPECT_EQ(af_send.tag("span.kind"), "producer");

  const auto& st = the_span(spans, "settlement", "process " + p + "pix.payment.validated");
  EXPECT_EQ(st.parent, af_send.id);
  const auto& ledger_tx = the_span(spans, "settlement", "ledger transaction");
  EXPECT_EQ(ledger_tx.parent, st.id);
  EXPECT_EQ(ledger_tx.tag("pix.ledger.outcome"), "settled");
  EXPECT_EQ(ledger_tx.tag("db.system"), "sqlite");
  const auto& st_send = the_span(spans, "settlement", "send " + p + "pix.payment.settled");
  EXPECT_EQ(st_send.parent, st.id);

  const auto& nt = the_span(spans, "notifier", "process " + p + "pix.payment.settled");
  EXPECT_EQ(nt.parent, st_send.id);
  const auto& nt_send = the_span(spans, "notifier", "send pix.notification.sent");
  EXPECT_EQ(nt_send.parent, nt.id);
  EXPECT_EQ(nt_send.tag("messaging.system"), "rabbitmq");
  EXPECT_EQ(nt_send.tag("messaging.destination.name"), world.rabbit_topology().exchange);
  EXPECT_EQ(nt_send.tag("messaging.rabbitmq.destination.routing_key"), "pix.notification.sent");

  // The auditor reads every hop: each under the PRODUCER that wrote what it audited.
  EXPECT_EQ(the_span(spans, "auditor", "process " + p + "pix.payment.requested").parent, send.id);
  EXPECT_EQ(the_span(spans, "auditor", "process " + p + "pix.payment.validated").parent, af_send.id);
  EXPECT_EQ(the_span(spans, "auditor", "process " + p + "pix.payment.settled").parent, st_send.id);
  const auto& audit_amqp = the_span(spans, "auditor", "process " + queue);
  EXPECT_EQ(audit_amqp.parent, nt_send.id);
  EXPECT_EQ(audit_amqp.tag("messaging.system"), "rabbitmq");
  int appends = 0, audit_sends = 0;
  for (const auto& s : spans) {
    appends += s.service == "auditor" && s.name == "audit append";
    audit_sends += s.service == "auditor" && s.name == "send " + p + "pix.audit.log";
    EXPECT_NE(s.tag("otel.status_code"), "ERROR") << s.service << " " << s.name;
  }
  EXPECT_EQ(appends, 4);
  EXPECT_EQ(audit_sends, 4);
}

TEST(Tracing, ARejectionIsAnAttributeNotAnError) {
  SagaWorld world;
  world.add_env(tracing_env());
  ASSERT_NO_FATAL_FAILURE(world.start_all());
  auto api = world.api_client();
  const std::string trace_id = util::random_hex(16);
  // A zero amount: anti-fraud rejects it (AM01), and nothing is settled.
  const auto reply = world.post(*api, saga_payment("traced-zero", "0", 3, 4),
                                {{"traceparent", "00-" + trace_id + "-" + util::random_hex(8) + "-01"}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  const auto spans = wait_for_trace(trace_id, {"antifraud antifraud decide", "settlement ledger transaction"});
  SCOPED_TRACE("spans:" + names_of(spans));
  const auto& decide = the_span(spans, "antifraud", "antifraud decide");
  EXPECT_EQ(decide.tag("pix.antifraud.status"), "rejected");
  EXPECT_EQ(decide.tag("pix.antifraud.code"), "AM01");
  EXPECT_NE(decide.tag("pix.antifraud.rule"), "<none>");
  EXPECT_EQ(the_span(spans, "settlement", "ledger transaction").tag("pix.ledger.outcome"), "rejection recorded");
  for (const auto& s : spans) EXPECT_NE(s.tag("otel.status_code"), "ERROR") << s.service << " " << s.name;
}

TEST(Tracing, ARabbitPublishIsTracedIntoTheAuditor) {
  SagaWorld world;
  world.add_env(tracing_env());
  ASSERT_NO_FATAL_FAILURE(world.start_stage("auditor"));
  GatewayProcess gw(
      {"--broker", "rabbit", "--rabbit-url", rabbit_url(), "--exchange", world.rabbit_topology().exchange},
      tracing_env());
  HttpClient c(gw.port());
  ASSERT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200; }, 30s)) << gw.logs();
  const std::string trace_id = util::random_hex(16), caller_span = util::random_hex(8);
  const auto reply = c.post_json("/rabbit",
                                 R"({"topic":"pix.notification.sent","value":{"transactionId":"traced-r",)"
                                 R"("status":"notified"}})",
                                 {{"traceparent", "00-" + trace_id + "-" + caller_span + "-01"}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  const std::string queue = world.rabbit_topology().queue_prefix + "pix.notification.sent";
  const auto spans = wait_for_trace(
      trace_id, {"api-rabbitmq POST /rabbit", "api-rabbitmq send pix.notification.sent", "auditor process " + queue,
                 "auditor audit append", "auditor send " + world.prefix() + "pix.audit.log"});
  SCOPED_TRACE("spans:" + names_of(spans));
  const auto& server = the_span(spans, "api-rabbitmq", "POST /rabbit");
  EXPECT_EQ(server.parent, caller_span);
  const auto& send = the_span(spans, "api-rabbitmq", "send pix.notification.sent");
  EXPECT_EQ(send.parent, server.id);
  EXPECT_EQ(send.tag("messaging.system"), "rabbitmq");
  EXPECT_EQ(send.tag("messaging.destination.name"), world.rabbit_topology().exchange);
  EXPECT_EQ(send.tag("messaging.rabbitmq.destination.routing_key"), "pix.notification.sent");
  const auto& consume = the_span(spans, "auditor", "process " + queue);
  EXPECT_EQ(consume.parent, send.id);
  EXPECT_EQ(consume.tag("span.kind"), "consumer");
  EXPECT_EQ(the_span(spans, "auditor", "audit append").parent, consume.id);
  EXPECT_EQ(the_span(spans, "auditor", "send " + world.prefix() + "pix.audit.log").parent, consume.id);
}

/// @brief A TCP relay from a port of its own to the real backend, so that a test can take "the
/// backend" away and bring it back without touching the shared Jaeger.
class Relay {
 public:
  explicit Relay(std::uint16_t upstream) : upstream_(upstream) {
    asio::ip::tcp::acceptor probe(io_, {asio::ip::make_address("127.0.0.1"), 0});
    port_ = probe.local_endpoint().port();  // free now; nothing listens until up()
  }
  ~Relay() { down(); }
  std::uint16_t port() const { return port_; }
  void up() {
    acceptor_.emplace(io_);
    acceptor_->open(asio::ip::tcp::v4());
    acceptor_->set_option(asio::socket_base::reuse_address(true));
    acceptor_->bind({asio::ip::make_address("127.0.0.1"), port_});
    acceptor_->listen();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  void down() {
    if (!thread_.joinable()) return;
    io_.stop();
    thread_.join();
    acceptor_.reset();
  }

 private:
  void accept() {
    acceptor_->async_accept([this](boost::system::error_code ec, asio::ip::tcp::socket client) {
      if (ec) return;
      auto down = std::make_shared<asio::ip::tcp::socket>(std::move(client));
      auto up = std::make_shared<asio::ip::tcp::socket>(io_);
      boost::system::error_code cec;
      up->connect({asio::ip::make_address("127.0.0.1"), upstream_}, cec);
      if (!cec) {
        pump(down, up);
        pump(up, down);
      }
      accept();
    });
  }
  void pump(std::shared_ptr<asio::ip::tcp::socket> from, std::shared_ptr<asio::ip::tcp::socket> to) {
    auto buf = std::make_shared<std::array<char, 16384>>();
    from->async_read_some(asio::buffer(*buf), [this, from, to, buf](boost::system::error_code ec, std::size_t n) {
      if (ec) {
        boost::system::error_code ignored;
        to->shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        return;
      }
      asio::async_write(*to, asio::buffer(buf->data(), n),
                        [this, from, to, buf](boost::system::error_code wec, std::size_t) {
                          if (!wec) pump(from, to);
                        });
    });
  }

  asio::io_context io_;
  std::uint16_t upstream_;
  std::uint16_t port_ = 0;
  std::optional<asio::ip::tcp::acceptor> acceptor_;
  std::thread thread_;
};

double metric(HttpClient& c, const std::string& series) {
  const auto text = c.request("GET", "/metrics").body;
  const auto at = text.find("\n" + series + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 2));
}

TEST(Tracing, WithTheBackendDownTheGatewayServesAndCountsDropsThenExportResumes) {
  std::string error;
  const auto backend = http::parse_url(otlp_endpoint(), error);
  ASSERT_TRUE(backend) << error;
  Relay relay(backend->port);
  auto env = tracing_env("http://127.0.0.1:" + std::to_string(relay.port()));
  env["OTEL_BSP_MAX_QUEUE_SIZE"] = "64";
  env["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] = "32";
  SagaWorld world;  // topics of its own; no stage runs
  GatewayProcess gw({"--broker", "kafka", "--kafka-bootstrap", world.bootstrap(), "--topic-prefix", world.prefix()},
                    env);
  HttpClient c(gw.port());
  ASSERT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200; }, 30s)) << gw.logs();

  // Nothing listens where the spans go: every request is still answered after the broker's ack.
  constexpr int kRequests = 300;
  for (int i = 0; i < kRequests; ++i) {
    const auto r = c.post_json("/kafka", saga_payment("down-" + std::to_string(i), "\"1.00\"", 1, 2));
    ASSERT_EQ(r.status, 200) << r.body;
  }
  const double queued = metric(c, "pix_trace_queue_spans");
  const double dropped = metric(c, R"(pix_trace_spans_dropped_total{reason="queue_full"})") +
                         metric(c, R"(pix_trace_spans_dropped_total{reason="export_failed"})");
  EXPECT_LE(queued, 64) << "the queue stays within OTEL_BSP_MAX_QUEUE_SIZE";
  EXPECT_GE(dropped, 2 * kRequests - 64 - 32) << "two spans a request, all but what the queue and a batch hold dropped";
  EXPECT_EQ(metric(c, "pix_trace_spans_exported_total"), 0);

  // The backend is back: the queue drains (the batch in its backoff goes first), and then a new
  // request's trace reaches Jaeger.
  relay.up();
  EXPECT_TRUE(eventually(
      [&] { return metric(c, "pix_trace_spans_exported_total") > 0 && metric(c, "pix_trace_queue_spans") < 64; }, 90s,
      500ms))
      << gw.logs();
  const std::string trace_id = util::random_hex(16);
  const auto r = c.post_json("/kafka", saga_payment("back-1", "\"1.00\"", 1, 2),
                             {{"traceparent", "00-" + trace_id + "-" + util::random_hex(8) + "-01"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const auto spans = wait_for_trace(trace_id, {"api-kafka POST /kafka", "api-kafka send pix.payment.requested"}, 90s);
  EXPECT_EQ(spans.size(), 2u) << names_of(spans);
}

}  // namespace
}  // namespace pix::test
