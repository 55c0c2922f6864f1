// The load engine against a small Beast server started in the test on port 0. Assertions are on
// counts and on lower bounds of latency (the server's injected delay), never on how fast a loaded
// machine happens to be.
#include "pix/sim/load_engine.hpp"

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <atomic>
#include <set>
#include <string>
#include <thread>

#include "pix/sim/load_report.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using pix::sim::LoadOptions;
using pix::sim::LoadResult;
using pix::sim::RequestSpec;
using pix::sim::TransportError;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

/// @brief How the TestServer answers.
struct Behaviour {
  std::chrono::milliseconds delay{0};  ///< before each answer
  int close_after = 0;                 ///< answers per connection before it is closed (0: never)
};

/// @brief An HTTP/1.1 server on 127.0.0.1:0 in its own thread. Answers every request 200 with
/// `{"eventId":"ev-<n>"}` after `delay`; a request header `X-Answer-Status: 503` picks another
/// status, `X-Hang` gets no answer at all. `close_after` closes each connection after that many
/// answers, without saying so (as a server's idle timeout does).
class TestServer {
 public:
  explicit TestServer(Behaviour behaviour = {})
      : behaviour_(behaviour), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestServer() {
    io_.stop();
    thread_.join();
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int accepted() const { return accepted_.load(); }
  int requests() const { return requests_.load(); }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
      if (ec) co_return;
      ++accepted_;
      asio::co_spawn(io_, session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    asio::steady_timer timer(io_);
    for (int answered = 0;;) {
      bhttp::request<bhttp::string_body> req;
      auto [ec, n] = co_await bhttp::async_read(stream, buffer, req, kTuple);
      (void)n;
      if (ec) co_return;
      const int id = ++requests_;
      if (req.count("X-Hang") != 0) {
        timer.expires_after(1h);
        co_await timer.async_wait(kTuple);
        co_return;
      }
      if (behaviour_.delay.count() > 0) {
        timer.expires_after(behaviour_.delay);
        co_await timer.async_wait(kTuple);
      }
      int status = 200;
      if (auto it = req.find("X-Answer-Status"); it != req.end()) status = std::stoi(std::string(it->value()));
      bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), req.version()};
      res.set(bhttp::field::content_type, "application/json");
      res.body() = R"({"status":"published","eventId":"ev-)" + std::to_string(id) + R"("})";
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, wn] = co_await bhttp::async_write(stream, res, kTuple);
      (void)wn;
      if (wec || !res.keep_alive()) co_return;
      if (behaviour_.close_after > 0 && ++answered >= behaviour_.close_after) {
        beast::error_code ignored;  // the test is about the client noticing; how the close went does not matter
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.close();
        co_return;
      }
    }
  }

  Behaviour behaviour_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::atomic<int> accepted_{0};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

LoadOptions options_for(const TestServer& server) {
  LoadOptions o;
  o.endpoints = {{"127.0.0.1", server.port()}};
  o.duration = 0s;
  o.timeout = 5s;
  return o;
}

/// Sets `stop` once the server has seen `requests` requests (as Ctrl-C would, mid-run).
std::thread stop_after(const TestServer& server, int requests, std::atomic<bool>& stop) {
  return std::thread([&server, requests, &stop] {
    while (server.requests() < requests) std::this_thread::sleep_for(5ms);
    stop = true;
  });
}

pix::sim::RequestSource fixed_body() {
  return [](std::uint64_t) { return RequestSpec{0, "/kafka", R"({"topic":"pix.payment.requested"})", {}, "load"}; };
}

TEST(LoadEngine, ClosedLoopCountsEveryAnswerAndKeepsConnectionsAlive) {
  TestServer server({2ms, 0});
  auto o = options_for(server);
  o.mode = LoadOptions::Mode::kClosedLoop;
  o.concurrency = 4;
  o.count = 200;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.sent, 200u);
  EXPECT_EQ(r.completed, 200u);
  EXPECT_EQ(r.status_counts.at(200), 200u);
  EXPECT_EQ(r.transport_errors(), 0u);
  EXPECT_EQ(r.ok(), 200u);
  EXPECT_EQ(server.requests(), 200);
  // One connection per request in flight, reused for all 200.
  EXPECT_EQ(server.accepted(), 4);
  EXPECT_EQ(r.connections_opened, 4u);
  EXPECT_EQ(r.reconnects, 0u);
  EXPECT_EQ(r.latency_ok.count(), 200u);
  EXPECT_GE(r.latency_ok.min(), 2ms);
  EXPECT_EQ(r.send_delay.count(), 0u);
}

TEST(LoadEngine, KeepAnswersCarriesTheEventIdOfEach200) {
  TestServer server;
  auto o = options_for(server);
  o.concurrency = 3;
  o.count = 50;
  o.keep_answers = true;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  ASSERT_EQ(r.answers.size(), 50u);
  std::set<std::string> ids;
  std::set<std::uint64_t> seqs;
  for (const auto& a : r.answers) {
    EXPECT_EQ(a.status, 200);
    EXPECT_FALSE(a.error);
    EXPECT_EQ(a.label, "load");
    EXPECT_EQ(a.event_id.rfind("ev-", 0), 0u) << a.event_id;
    ids.insert(a.event_id);
    seqs.insert(a.seq);
  }
  EXPECT_EQ(ids.size(), 50u);
  EXPECT_EQ(seqs.size(), 50u);
  EXPECT_EQ(*seqs.rbegin(), 49u);
}

TEST(LoadEngine, StatusCodesAreCountedApart) {
  TestServer server;
  auto o = options_for(server);
  o.concurrency = 4;
  o.count = 100;
  auto source = [](std::uint64_t seq) {
    RequestSpec spec{0, "/kafka", "{}", {}, "load"};
    if (seq % 10 == 9) spec.headers.emplace_back("X-Answer-Status", "503");
    if (seq % 10 == 4) spec.headers.emplace_back("X-Answer-Status", "422");
    return spec;
  };
  const LoadResult r = pix::sim::run_load(o, source);
  EXPECT_EQ(r.status_counts.at(200), 80u);
  EXPECT_EQ(r.status_counts.at(422), 10u);
  EXPECT_EQ(r.status_counts.at(503), 10u);
  EXPECT_EQ(r.ok(), 80u);
  EXPECT_EQ(r.server_errors(), 10u);
  EXPECT_EQ(r.latency_ok.count(), 80u);
  EXPECT_EQ(r.latency_all.count(), 100u);
}

TEST(LoadEngine, OpenLoopSendsAtTheIntendedRate) {
  TestServer server({1ms, 0});
  auto o = options_for(server);
  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 250;
  o.concurrency = 4;
  o.duration = 2s;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  // Exactly the requests due in the 2 s are accounted for: sent, or (if the box was too loaded to
  // send them before the end) unsent.
  EXPECT_EQ(r.sent + r.unsent, 500u);
  EXPECT_EQ(r.completed, r.sent);
  EXPECT_GE(r.sent, 400u);
  EXPECT_EQ(r.transport_errors(), 0u);
  EXPECT_NEAR(r.throughput(), 250.0, 50.0);
  EXPECT_GE(r.latency_ok.min(), 1ms);
  EXPECT_EQ(r.send_delay.count(), r.sent);
}

TEST(LoadEngine, OpenLoopLatencyCountsTheWaitForABusyConnection) {
  // One connection, 100 ms per request, 20 requests per second intended: request k is due at
  // k x 50 ms but can only leave at k x 100 ms, so it waits k x 50 ms, and that wait is latency.
  TestServer server({100ms, 0});
  auto o = options_for(server);
  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 20;
  o.concurrency = 1;
  o.max_connections = 1;
  o.count = 10;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.completed, 10u);
  EXPECT_EQ(server.accepted(), 1);
  EXPECT_GE(r.latency_ok.min(), 100ms);
  EXPECT_GE(r.latency_ok.max(), 100ms + 9 * 50ms);
  EXPECT_GE(r.send_delay.max(), 9 * 50ms);
}

TEST(LoadEngine, OpenLoopOpensMoreConnectionsRatherThanFallingBehind) {
  // 200/s against 50 ms answers needs about 10 connections in flight; it starts with one.
  TestServer server({50ms, 0});
  auto o = options_for(server);
  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 200;
  o.concurrency = 1;
  o.max_connections = 64;
  o.count = 200;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.completed, 200u);
  EXPECT_EQ(r.transport_errors(), 0u);
  EXPECT_GE(server.accepted(), 5);
  EXPECT_LE(server.accepted(), 64);
  EXPECT_EQ(r.connections_opened, static_cast<std::uint64_t>(server.accepted()));
  EXPECT_GE(r.latency_ok.min(), 50ms);
}

TEST(LoadEngine, RefusedConnectionsAreCountedPerRequest) {
  LoadOptions o;
  o.endpoints = {{"127.0.0.1", 1}};
  o.duration = 0s;
  o.concurrency = 1;
  o.count = 3;
  LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.sent, 3u);
  EXPECT_EQ(r.completed, 0u);
  EXPECT_EQ(r.errors[static_cast<std::size_t>(TransportError::kConnectRefused)], 3u);
  EXPECT_EQ(r.transport_errors(), 3u);

  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 100;
  o.count = 5;
  r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.sent, 5u);
  EXPECT_EQ(r.errors[static_cast<std::size_t>(TransportError::kConnectRefused)], 5u);
}

TEST(LoadEngine, AConnectionTheServerClosedIsReopenedWithoutAnError) {
  TestServer server({0ms, 1});  // every connection closed after its first answer
  auto o = options_for(server);
  o.concurrency = 2;
  o.count = 20;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.completed, 20u);
  EXPECT_EQ(r.transport_errors(), 0u);
  EXPECT_EQ(r.status_counts.at(200), 20u);
  EXPECT_GE(r.reconnects, 1u);
  EXPECT_EQ(r.connections_opened, static_cast<std::uint64_t>(server.accepted()));
  EXPECT_EQ(server.requests(), 20);
}

TEST(LoadEngine, ARequestWithoutAnswerTimesOut) {
  TestServer server;
  auto o = options_for(server);
  o.concurrency = 1;
  o.count = 2;
  o.timeout = 200ms;
  auto source = [](std::uint64_t seq) {
    RequestSpec spec{0, "/kafka", "{}", {}, "load"};
    if (seq == 0) spec.headers.emplace_back("X-Hang", "1");
    return spec;
  };
  const LoadResult r = pix::sim::run_load(o, source);
  EXPECT_EQ(r.errors[static_cast<std::size_t>(TransportError::kTimeout)], 1u);
  EXPECT_EQ(r.status_counts.at(200), 1u);  // the next request went on a fresh connection
  EXPECT_EQ(server.accepted(), 2);
}

TEST(LoadEngine, StopFlagEndsTheRunEarly) {
  TestServer server({5ms, 0});
  auto o = options_for(server);
  o.concurrency = 2;
  o.duration = 60s;
  std::atomic<bool> stop{false};
  o.stop = &stop;
  std::thread stopper = stop_after(server, 20, stop);
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  stopper.join();
  EXPECT_TRUE(r.stopped_early);
  EXPECT_GE(r.completed, 20u);
  EXPECT_EQ(r.completed, r.sent);  // in-flight requests were let finish
  EXPECT_LT(r.elapsed, 30s);
}

TEST(LoadEngine, OpenLoopWithNoLimitRunsUntilStopped) {
  // What `pix-sim payments --duration 0` does (compose's sim profile): no duration, no count.
  TestServer server;
  auto o = options_for(server);
  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 500;
  o.duration = 0s;
  o.count = 0;
  std::atomic<bool> stop{false};
  o.stop = &stop;
  std::thread stopper = stop_after(server, 50, stop);
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  stopper.join();
  EXPECT_TRUE(r.stopped_early);
  EXPECT_GE(r.completed, 50u);
  EXPECT_EQ(r.completed, r.sent);
  EXPECT_EQ(r.transport_errors(), 0u);
}

TEST(LoadEngine, TwoThreadsShareTheWorkExactly) {
  TestServer server;
  auto o = options_for(server);
  o.io_threads = 2;
  o.concurrency = 4;
  o.count = 300;
  o.keep_answers = true;
  LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.completed, 300u);
  EXPECT_EQ(server.accepted(), 4);
  std::set<std::uint64_t> seqs;
  for (const auto& a : r.answers) seqs.insert(a.seq);
  EXPECT_EQ(seqs.size(), 300u);

  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 500;
  o.count = 250;
  r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.completed, 250u);
  seqs.clear();
  for (const auto& a : r.answers) seqs.insert(a.seq);
  EXPECT_EQ(seqs.size(), 250u);
  EXPECT_EQ(*seqs.rbegin(), 249u);
}

TEST(LoadEngine, RejectsInconsistentOptions) {
  LoadOptions o;
  EXPECT_THROW(pix::sim::run_load(o, fixed_body()), std::invalid_argument);  // no endpoint
  o.endpoints = {{"127.0.0.1", 1}};
  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 0;
  EXPECT_THROW(pix::sim::run_load(o, fixed_body()), std::invalid_argument);
  o.mode = LoadOptions::Mode::kClosedLoop;
  o.concurrency = 0;
  EXPECT_THROW(pix::sim::run_load(o, fixed_body()), std::invalid_argument);
}

TEST(ParseHttpUrl, TakesHostPortAndTarget) {
  std::string error;
  auto u = pix::sim::parse_http_url("http://127.0.0.1:5000/kafka", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->endpoint.host, "127.0.0.1");
  EXPECT_EQ(u->endpoint.port, 5000);
  EXPECT_EQ(u->target, "/kafka");
  u = pix::sim::parse_http_url("http://localhost", error);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->endpoint.port, 80);
  EXPECT_EQ(u->target, "/");
  u = pix::sim::parse_http_url("http://[::1]:5001/rabbit?x=1", error);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->endpoint.host, "::1");
  EXPECT_EQ(u->endpoint.port, 5001);
  EXPECT_EQ(u->target, "/rabbit?x=1");
  for (const char* bad : {"https://127.0.0.1/kafka", "127.0.0.1:5000/kafka", "http://:5000/", "http://h:0/",
                          "http://h:70000/", "http://h:12ab/"}) {
    error.clear();
    EXPECT_FALSE(pix::sim::parse_http_url(bad, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST(ParseDuration, AcceptsTheUsualSuffixes) {
  using pix::sim::parse_duration;
  EXPECT_EQ(parse_duration("10s"), std::chrono::nanoseconds(10s));
  EXPECT_EQ(parse_duration("10"), std::chrono::nanoseconds(10s));
  EXPECT_EQ(parse_duration("500ms"), std::chrono::nanoseconds(500ms));
  EXPECT_EQ(parse_duration("2m"), std::chrono::nanoseconds(120s));
  EXPECT_EQ(parse_duration("1.5s"), std::chrono::nanoseconds(1500ms));
  EXPECT_EQ(parse_duration("250us"), std::chrono::nanoseconds(250us));
  EXPECT_EQ(parse_duration("0"), std::chrono::nanoseconds(0));
  for (const char* bad : {"", "s", "-1s", "10 parsecs", "10x", "abc"}) EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(LoadReport, TableAndJsonCarryTheSameNumbers) {
  LoadResult r;
  r.mode = LoadOptions::Mode::kOpenLoop;
  r.target_rate = 100;
  r.sent = 12;
  r.completed = 11;
  r.status_counts = {{200, 9}, {503, 2}};
  r.errors[static_cast<std::size_t>(TransportError::kTimeout)] = 1;
  r.elapsed = 2s;
  for (int i = 1; i <= 9; ++i) r.latency_ok.record(std::chrono::milliseconds(i));
  r.latency_all = r.latency_ok;
  r.latency_all.record(40ms);
  r.latency_all.record(50ms);

  const std::string table = pix::sim::render_table(r);
  EXPECT_NE(table.find("open loop, 100 req/s"), std::string::npos) << table;
  EXPECT_NE(table.find("503: 2"), std::string::npos) << table;
  EXPECT_NE(table.find("timeout: 1"), std::string::npos) << table;
  EXPECT_NE(table.find("p99.9"), std::string::npos) << table;
  EXPECT_NE(table.find("50.00"), std::string::npos) << table;  // max of all answers, in ms

  const auto v = boost::json::parse(pix::sim::render_json(r));
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("mode").as_string(), "open_loop");
  EXPECT_EQ(o.at("sent").to_number<std::uint64_t>(), 12u);
  EXPECT_EQ(o.at("ok").to_number<std::uint64_t>(), 9u);
  EXPECT_EQ(o.at("server_errors").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(o.at("transport_errors").to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(o.at("status").as_object().at("503").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(o.at("errors").as_object().at("timeout").to_number<std::uint64_t>(), 1u);
  EXPECT_DOUBLE_EQ(o.at("throughput").to_number<double>(), 5.5);
  const auto& all = o.at("latency_us").as_object().at("all").as_object();
  EXPECT_DOUBLE_EQ(all.at("max").to_number<double>(), 50000.0);
  EXPECT_EQ(all.at("count").to_number<std::uint64_t>(), 11u);
  EXPECT_GE(all.at("p50").to_number<double>(), 5000.0);
  EXPECT_LE(all.at("p50").to_number<double>(), 6100.0);
}

}  // namespace
