// The gateway's Server through its publisher seam: a real server on 127.0.0.1 (port 0), a
// ScriptedPublisher deciding each verdict, and a small blocking HTTP client asserting what a
// client of the API sees.
#include "pix/gateway/server.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "scripted_publisher.hpp"

namespace pix::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using namespace std::chrono_literals;
using ::testing::_;
using Reply = pix::testing::ScriptedPublisher::Reply;
using Answer = bhttp::response<bhttp::string_body>;

constexpr std::string_view kPayment =
    R"({"topic":"pix.payment.requested","value":{"transactionId":"12345","amount":100,"payer":"alice","receiver":"bob"}})";
// A safety net so that a broken server fails the test instead of hanging it; never a pass criterion.
constexpr auto kNoAnswerAfter = 10s;

Request publish_request(std::string_view body, std::string_view idempotency_key = {}) {
  Request req{bhttp::verb::post, "/kafka", 11};
  req.set(bhttp::field::host, "127.0.0.1");
  req.set(bhttp::field::content_type, "application/json");
  if (!idempotency_key.empty()) req.set("Idempotency-Key", idempotency_key);
  req.body() = std::string(body);
  req.prepare_payload();
  return req;
}

Request get_request(std::string_view target) {
  Request req{bhttp::verb::get, target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  return req;
}

boost::json::object json_of(const Answer& res) {
  boost::json::error_code ec;
  auto v = boost::json::parse(res.body(), ec);
  EXPECT_FALSE(ec) << "not JSON: " << res.body();
  return !ec && v.is_object() ? v.as_object() : boost::json::object{};
}

std::string text(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string())
                                        : std::string("<no string '") + std::string(key) + "'>";
}

/// One keep-alive connection to the server. Blocking from the test's point of view: each call
/// runs the client's own io_context until its operation completes.
class Client {
 public:
  explicit Client(std::uint16_t port) : stream_(io_) {
    stream_.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  /// Whether a new connection to `port` is accepted by anyone at all.
  static bool connects(std::uint16_t port) {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    beast::error_code ec;
    socket.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    return !ec;
  }

  /// False when the server had already closed the connection.
  bool send(const Request& req) {
    beast::error_code ec;
    bhttp::write(stream_.socket(), req, ec);
    return !ec;
  }
  /// The next answer, or nullopt when the server closed the connection instead of answering.
  std::optional<Answer> receive() {
    Answer res;
    std::optional<beast::error_code> result;
    stream_.expires_after(kNoAnswerAfter);
    bhttp::async_read(stream_, buffer_, res, [&](beast::error_code ec, std::size_t) { result = ec; });
    io_.restart();
    io_.run();
    if (*result == beast::error::timeout) ADD_FAILURE() << "no answer within the safety net";
    if (*result) return std::nullopt;
    return res;
  }
  std::optional<Answer> exchange(const Request& req) {
    if (!send(req)) return std::nullopt;
    return receive();
  }

 private:
  asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

class GatewayServer : public ::testing::Test {
 protected:
  static GatewayConfig test_config() {
    GatewayConfig c;
    c.broker = BrokerKind::kKafka;
    c.listen_address = "127.0.0.1";
    c.port = 0;
    c.publish_timeout = 100ms;  // the guard answers 504 after 100 + 250 ms without a verdict
    c.drain_timeout = 30s;      // longer than any test: the drain ends by itself or the test fails
    c.retry_after_s = 7;
    return c;
  }

  void start(const GatewayConfig& config = test_config()) {
    server_ = std::make_unique<Server>(io_, config, publisher_, registry_);
    server_->listen();
    server_->start();
    io_thread_ = std::thread([this] { io_.run(); });
  }
  std::uint16_t port() const { return server_->port(); }
  /// The answer to `req` on the test's own keep-alive connection (opened on first use);
  /// `waited`, when given, is how long it took.
  std::optional<Answer> ask(const Request& req, std::chrono::steady_clock::duration* waited = nullptr) {
    if (!client_) client_.emplace(port());
    const auto sent = std::chrono::steady_clock::now();
    auto res = client_->exchange(req);
    if (waited != nullptr) *waited = std::chrono::steady_clock::now() - sent;
    return res;
  }

  /// Starts the drain on the io thread, as pix-api does on SIGTERM, and returns once the server
  /// acted on it (acceptor closed, idle connections cancelled); the future is `done`'s argument.
  std::future<std::size_t> begin_shutdown() {
    auto drained = std::make_shared<std::promise<std::size_t>>();
    auto acted = std::make_shared<std::promise<void>>();
    auto drained_future = drained->get_future();
    auto acted_future = acted->get_future();
    asio::post(io_, [this, drained, acted] {
      server_->shutdown([drained](std::size_t unanswered) { drained->set_value(unanswered); });
      // Posted after the cancellations shutdown() posted, so it runs after them.
      asio::post(io_, [acted] { acted->set_value(); });
    });
    acted_future.wait();
    shut_down_ = true;
    return drained_future;
  }

  void TearDown() override {
    if (!server_) return;
    // What the broker still holds is answered first, so that no request outlives the server.
    publisher_.release_held(broker::PublishStatus::kBrokerUnavailable);
    if (!shut_down_) {
      auto drained = begin_shutdown();
      EXPECT_EQ(drained.wait_for(kNoAnswerAfter), std::future_status::ready);
    }
    io_.stop();
    io_thread_.join();
  }

  // Declared first: destroyed last, after the server whose callbacks it may still hold.
  ::testing::NiceMock<pix::testing::ScriptedPublisher> publisher_;
  telemetry::Registry registry_;
  asio::io_context io_;
  std::unique_ptr<Server> server_;
  std::thread io_thread_;
  bool shut_down_ = false;
  std::optional<Client> client_;
};

void expect_problem(const Answer& res, unsigned status, std::string_view type) {
  EXPECT_EQ(res.result_int(), status) << res.body();
  EXPECT_EQ(res[bhttp::field::content_type], "application/problem+json");
  const auto body = json_of(res);
  EXPECT_EQ(text(body, "type"), "urn:pix-pubsub:problem:" + std::string(type)) << res.body();
  EXPECT_EQ(body.if_contains("status") ? body.at("status").to_number<unsigned>() : 0u, status);
  EXPECT_EQ(text(body, "instance"), "/kafka");
}

TEST_F(GatewayServer, AnswersOkOnlyOnceTheBrokerAcknowledgedWithTheDocumentedBody) {
  publisher_.then(Reply::kDelayedAck, 300ms);
  start();
  std::chrono::steady_clock::duration waited{};
  auto res = ask(publish_request(kPayment), &waited);

  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u) << res->body();
  EXPECT_GE(waited, 300ms) << "answered before the broker's acknowledgement";
  EXPECT_EQ((*res)[bhttp::field::content_type], "application/json");
  EXPECT_FALSE((*res)["traceparent"].empty()) << "the answer carries the event's trace context";
  const auto events = publisher_.published();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].topic, "pix.payment.requested");
  EXPECT_EQ(events[0].key, "alice") << "requests are keyed by payer";
  EXPECT_EQ(events[0].payload, R"({"transactionId":"12345","amount":100,"payer":"alice","receiver":"bob"})");
  // README: status, broker, topic, eventId, transactionId, then partition/offset on Kafka.
  boost::json::object expected{{"status", "published"},
                               {"broker", "kafka"},
                               {"topic", "pix.payment.requested"},
                               {"eventId", events[0].id},
                               {"transactionId", "12345"},
                               {"partition", 0},
                               {"offset", 0}};
  EXPECT_EQ(json_of(*res), expected) << res->body();
}

TEST_F(GatewayServer, ABrokerRefusalIs502NamingTheEvent) {
  publisher_.then(Reply::kReject);
  start();
  auto res = ask(publish_request(kPayment));
  ASSERT_TRUE(res);
  expect_problem(*res, 502, "broker-rejected");
  ASSERT_EQ(publisher_.published().size(), 1u);
  EXPECT_EQ(text(json_of(*res), "eventId"), publisher_.published()[0].id);
  EXPECT_TRUE((*res)[bhttp::field::retry_after].empty()) << "a refusal is not worth retrying as is";
}

TEST_F(GatewayServer, AnUnavailableBrokerIs503WithRetryAfter) {
  publisher_.then(Reply::kUnavailable);
  start();
  auto res = ask(publish_request(kPayment));
  ASSERT_TRUE(res);
  expect_problem(*res, 503, "broker-unavailable");
  EXPECT_EQ((*res)[bhttp::field::retry_after], "7");
  EXPECT_EQ(json_of(*res).if_contains("eventId"), nullptr) << "nothing was stored: no event to name";
}

TEST_F(GatewayServer, ABrokerAckTimeoutIs504SayingTheEventMayExist) {
  publisher_.then(Reply::kTimeout);
  start();
  auto res = ask(publish_request(kPayment));
  ASSERT_TRUE(res);
  expect_problem(*res, 504, "broker-ack-timeout");
  const auto body = json_of(*res);
  EXPECT_THAT(text(body, "detail"), ::testing::HasSubstr("the event may exist"));
  ASSERT_EQ(publisher_.published().size(), 1u);
  EXPECT_EQ(text(body, "eventId"), publisher_.published()[0].id);
}

TEST_F(GatewayServer, ABrokerThatNeverAnswersGets504AfterThePublishGuardAndTheConnectionGoesOn) {
  publisher_.then(Reply::kNever);
  start();
  std::chrono::steady_clock::duration waited{};
  auto res = ask(publish_request(kPayment), &waited);

  ASSERT_TRUE(res);
  expect_problem(*res, 504, "broker-ack-timeout");
  EXPECT_GE(waited, 350ms) << "the guard is the publish timeout (100 ms) + 250 ms";
  EXPECT_THAT(text(json_of(*res), "detail"), ::testing::HasSubstr("no broker verdict within 350 ms"));
  // The late verdict is dropped; the connection serves the next request.
  publisher_.release_held(broker::PublishStatus::kAcked);
  auto next = ask(publish_request(kPayment));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->result_int(), 200u) << next->body();
}

TEST_F(GatewayServer, AReplayOfTheSameIdempotencyKeyAnswersTheSameWithoutPublishingAgain) {
  EXPECT_CALL(publisher_, on_publish(_)).Times(1);
  start();
  auto first = ask(publish_request(kPayment, "order-1"));
  auto again = ask(publish_request(kPayment, "order-1"));
  ASSERT_TRUE(first);
  ASSERT_TRUE(again);
  EXPECT_EQ(first->result_int(), 200u) << first->body();
  EXPECT_EQ(again->result_int(), 200u) << again->body();
  EXPECT_EQ(again->body(), first->body()) << "same eventId, partition and offset";
  EXPECT_EQ((*again)["Idempotent-Replayed"], "true");
  EXPECT_TRUE((*first)["Idempotent-Replayed"].empty());
}

TEST_F(GatewayServer, MalformedJsonIs400AndPublishesNothing) {
  EXPECT_CALL(publisher_, on_publish(_)).Times(0);
  start();
  auto res = ask(publish_request(R"({"topic":"pix.payment.requested","value":)"));
  ASSERT_TRUE(res);
  expect_problem(*res, 400, "malformed-json");
}

TEST_F(GatewayServer, AMissingFieldIs422NamingItAndPublishesNothing) {
  EXPECT_CALL(publisher_, on_publish(_)).Times(0);
  start();
  auto res = ask(publish_request(
      R"({"topic":"pix.payment.requested","value":{"transactionId":"1","amount":100,"receiver":"b"}})"));
  ASSERT_TRUE(res);
  expect_problem(*res, 422, "invalid-field");
  EXPECT_EQ(text(json_of(*res), "field"), "value.payer");
}

TEST_F(GatewayServer, ReadyzFollowsTheBrokerProbe) {
  start();
  publisher_.set_ready(true, "metadata ok");
  auto ready = ask(get_request("/readyz"));
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->result_int(), 200u);
  EXPECT_EQ(json_of(*ready),
            (boost::json::object{{"status", "ready"}, {"broker", "kafka"}, {"detail", "metadata ok"}}));

  publisher_.set_ready(false, "all brokers down");
  auto down = ask(get_request("/readyz"));
  ASSERT_TRUE(down);
  EXPECT_EQ(down->result_int(), 503u);
  EXPECT_EQ(json_of(*down),
            (boost::json::object{{"status", "unavailable"}, {"broker", "kafka"}, {"detail", "all brokers down"}}));
}

TEST_F(GatewayServer, MetricsCountEachVerdictAndEachAnswerUnderTheirExportedNames) {
  publisher_.then(Reply::kAck);
  publisher_.then(Reply::kReject);
  start();
  ASSERT_TRUE(ask(publish_request(kPayment)));
  ASSERT_TRUE(ask(publish_request(kPayment)));
  auto metrics = ask(get_request("/metrics"));
  ASSERT_TRUE(metrics);
  const std::string& text = metrics->body();
  for (std::string_view line : {
           R"(pix_publish_total{broker="kafka",topic="pix.payment.requested",result="acked"} 1)",
           R"(pix_publish_total{broker="kafka",topic="pix.payment.requested",result="rejected"} 1)",
           R"(pix_publish_total{broker="kafka",topic="pix.audit.log",result="acked"} 0)",
           R"(pix_http_requests_total{route="/kafka",method="POST",code="200"} 1)",
           R"(pix_http_requests_total{route="/kafka",method="POST",code="502"} 1)",
           R"(pix_broker_ack_duration_seconds_count{broker="kafka"} 2)",
           R"(pix_http_open_connections 1)",
       }) {
    EXPECT_THAT(text, ::testing::HasSubstr(std::string(line) + "\n"));
  }
}

TEST_F(GatewayServer, ShutdownAnswersTheRequestInFlightAndTakesNoNewWork) {
  EXPECT_CALL(publisher_, on_publish(_)).Times(1);
  publisher_.then(Reply::kNever);
  start();
  Client idle(port());
  ASSERT_TRUE(idle.exchange(get_request("/healthz")));  // a keep-alive connection, now idle
  Client busy(port());
  ASSERT_TRUE(busy.send(publish_request(kPayment)));
  ASSERT_TRUE(publisher_.wait_published(1, kNoAnswerAfter));
  const std::uint16_t served = port();

  auto drained = begin_shutdown();
  EXPECT_EQ(drained.wait_for(0s), std::future_status::timeout) << "drained with a request in flight";
  EXPECT_FALSE(Client::connects(served)) << "no new connections once the drain began";
  EXPECT_FALSE(idle.exchange(publish_request(kPayment))) << "an idle connection is closed, its request not read";

  publisher_.release_held(broker::PublishStatus::kAcked);
  auto res = busy.receive();
  ASSERT_TRUE(res) << "the request in flight gets its answer";
  EXPECT_EQ(res->result_int(), 200u) << res->body();
  EXPECT_FALSE(res->keep_alive()) << "answered Connection: close";
  ASSERT_EQ(drained.wait_for(kNoAnswerAfter), std::future_status::ready);
  EXPECT_EQ(drained.get(), 0u) << "nothing left unanswered";
}

}  // namespace
}  // namespace pix::gateway
