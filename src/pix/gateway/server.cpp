#include "pix/gateway/server.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>

#include "pix/gateway/outbound.hpp"
#include "pix/gateway/publish_request.hpp"
#include "pix/http/problem.hpp"
#include "pix/telemetry/trace_context.hpp"
#include "pix/util/hash.hpp"
#include "pix/util/random_id.hpp"

namespace pix::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {
std::int64_t ticks(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
}  // namespace

// A plain socket: its read and write deadlines are enforced by the server's sweeper (one timer for
// all connections) rather than by a timer armed and cancelled around every read and write.
struct Server::Connection {
  explicit Connection(tcp::socket s) : socket(std::move(s)) {}
  void expires_after(Clock::duration d) { deadline.store(ticks(Clock::now() + d), std::memory_order_relaxed); }
  tcp::socket socket;
  std::atomic<std::int64_t> deadline{0};  // of the current read or write, in steady-clock ticks
  bool busy = false;                      // touched only on the connection's executor
};

// One request waiting for its broker's verdict. The publisher's callback or the sweeper, whichever
// comes first, completes it; the sweeper also bounds a publisher that never calls back.
struct Server::PublishWait {
  virtual ~PublishWait() = default;
  /// Posts the result to the waiting coroutine; `self` (this wait) lives until it is delivered.
  virtual void complete(std::shared_ptr<PublishWait> self, broker::PublishResult r) = 0;
  std::atomic<bool> fired{false};
  Clock::time_point deadline;
};

namespace {

constexpr auto kNoCompletion = asio::as_tuple(use_awaitable);

const std::string kRequestsTotal = "pix_http_requests_total";
const std::string kRequestsHelp = "HTTP requests by route, method and status code";
const std::string kRequestDuration = "pix_http_request_duration_seconds";
const std::string kRequestDurationHelp = "HTTP request latency, from the request read to the response ready";
const std::string kPublishTotal = "pix_publish_total";
const std::string kPublishHelp = "Publish attempts by broker, topic and result";

template <typename Token>
auto async_probe(broker::Publisher& publisher, Token&& token) {
  return asio::async_initiate<Token, void(bool, std::string)>(
      [&publisher](auto handler) {
        using Handler = decltype(handler);
        auto shared = std::make_shared<Handler>(std::move(handler));
        publisher.probe([shared](bool ok, std::string detail) {
          auto ex = asio::get_associated_executor(*shared);
          asio::post(ex, [shared, ok, d = std::move(detail)]() mutable { (*shared)(ok, std::move(d)); });
        });
      },
      token);
}

Response json_response(const Request& req, bhttp::status status, std::string body,
                       std::string_view content_type = "application/json") {
  Response res{status, req.version()};
  res.set(bhttp::field::content_type, content_type);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response problem_response(const Request& req, const http::Problem& p, std::string_view instance) {
  Response res =
      json_response(req, static_cast<bhttp::status>(p.status), http::to_json(p, instance), "application/problem+json");
  if (p.retry_after_s > 0) res.set(bhttp::field::retry_after, std::to_string(p.retry_after_s));
  return res;
}

http::Problem method_not_allowed(std::string_view method, std::string_view allow) {
  http::Problem p;
  p.status = 405;
  p.type = "method-not-allowed";
  p.title = "Method not allowed";
  p.detail = std::string(method) + " is not allowed here; use " + std::string(allow);
  return p;
}

// Problems for requests Beast could not even parse.
http::Problem unreadable_request(const beast::error_code& ec, std::size_t max_body) {
  http::Problem p;
  if (ec == bhttp::error::body_limit) {
    p.status = 413;
    p.type = "payload-too-large";
    p.title = "The body is too large";
    p.detail = "the body exceeds " + std::to_string(max_body) + " bytes";
  } else if (ec == bhttp::error::header_limit) {
    p.status = 431;
    p.type = "headers-too-large";
    p.title = "The request headers are too large";
  } else {
    p.status = 400;
    p.type = "bad-request";
    p.title = "The HTTP request could not be parsed";
    p.detail = ec.message();
  }
  return p;
}

constexpr auto kSweepPeriod = std::chrono::milliseconds(100);

bool valid_idempotency_key(std::string_view key) {
  if (key.empty() || key.size() > 255) return false;
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

Server::Server(asio::io_context& io, const GatewayConfig& config, broker::Publisher& publisher,
               telemetry::Registry& metrics)
    : io_(io),
      config_(config),
      publisher_(publisher),
      metrics_(metrics),
      idempotency_({config.idempotency_window, config.idempotency_max_keys}),
      acceptor_(io),
      ack_latency_(&metrics.histogram("pix_broker_ack_duration_seconds",
                                      "Time from handing an event to the broker client to its verdict",
                                      {{"broker", config.broker == BrokerKind::kKafka ? "kafka" : "rabbitmq"}})),
      replays_(&metrics.counter("pix_idempotent_replays_total",
                                "Requests answered from the Idempotency-Key window without publishing")) {
  const std::string broker = config.broker == BrokerKind::kKafka ? "kafka" : "rabbitmq";
  telemetry::register_build_info(metrics, config.service_name());
  static_assert(static_cast<std::size_t>(broker::PublishStatus::kShuttingDown) + 1 == kStatuses);
  metrics.describe(kRequestsTotal, kRequestsHelp, "counter");
  for (std::size_t r = 0; r < kRoutes; ++r) {
    request_duration_[r] =
        &metrics.histogram(kRequestDuration, kRequestDurationHelp, {{"route", route_label(static_cast<Route>(r))}});
  }
  // Every topic and result from the start: dashboards see zeros rather than missing series.
  for (std::size_t t = 0; t < domain::kTopicNames.size(); ++t) {
    for (std::size_t st = 0; st < kStatuses; ++st) {
      publishes_[t][st] =
          &metrics.counter(kPublishTotal, kPublishHelp,
                           {{"broker", broker},
                            {"topic", std::string(domain::kTopicNames[t])},
                            {"result", std::string(broker::to_string(static_cast<broker::PublishStatus>(st)))}});
    }
  }
  metrics.gauge("pix_publish_in_flight", "Events handed to the broker and not yet acknowledged", {{"broker", broker}},
                [this] { return static_cast<double>(publisher_.in_flight()); });
  metrics.gauge("pix_http_requests_in_progress", "HTTP requests being handled", {},
                [this] { return static_cast<double>(active_.load()); });
  metrics.gauge("pix_http_open_connections", "Open HTTP connections", {},
                [this] { return static_cast<double>(open_connections_.load()); });
  metrics.gauge("pix_idempotency_keys", "Idempotency keys remembered", {},
                [this] { return static_cast<double>(idempotency_.size()); });
}

Server::~Server() = default;

void Server::listen() {
  const tcp::endpoint ep(asio::ip::make_address(config_.listen_address), config_.port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

std::uint16_t Server::port() const {
  return acceptor_.local_endpoint().port();
}

void Server::start() {
  asio::co_spawn(io_, accept_loop(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  asio::co_spawn(io_, sweep_loop(), asio::detached);
}

/// Adapts the callback-style Publisher to a coroutine: resumes on the awaiting coroutine's executor
/// with the broker's verdict, or with kTimedOut when none came by `deadline` (a client must never
/// hang on a broker that holds its connection open and answers nothing). Exactly one of the two
/// completes the handler; a verdict arriving after the deadline is dropped. The deadline is kept by
/// the sweeper: waits are queued in deadline order (all use the same delay), so no timer is armed
/// and cancelled per request.
template <typename Token>
auto Server::async_publish(broker::OutboundEvent event, Token&& token) {
  return asio::async_initiate<Token, void(broker::PublishResult)>(
      [this](auto handler, broker::OutboundEvent ev) {
        using Handler = decltype(handler);
        struct Wait final : PublishWait {
          explicit Wait(Handler h) : handler(std::move(h)) {}
          void complete(std::shared_ptr<PublishWait> self, broker::PublishResult r) override {
            auto ex = asio::get_associated_executor(handler);
            asio::post(ex, [self = std::move(self), this, r = std::move(r)]() mutable { handler(std::move(r)); });
          }
          Handler handler;
        };
        auto wait = std::make_shared<Wait>(std::move(handler));
        wait->deadline = Clock::now() + publish_guard();
        {
          std::lock_guard lock(waits_mutex_);
          waits_.push_back(wait);
        }
        publisher_.publish(std::move(ev), [wait](broker::PublishResult r) mutable {
          if (wait->fired.exchange(true)) return;
          auto* raw = wait.get();
          raw->complete(std::move(wait), std::move(r));
        });
      },
      token, std::move(event));
}

asio::awaitable<void> Server::sweep_loop() {
  asio::steady_timer timer(io_);
  int tick = 0;
  for (;;) {
    timer.expires_after(kSweepPeriod);
    auto [ec] = co_await timer.async_wait(kNoCompletion);
    if (ec) co_return;
    const auto now = Clock::now();
    // Verdicts that never came: answer 504 (the publisher's own timeout normally wins).
    std::vector<std::shared_ptr<PublishWait>> expired;
    {
      std::lock_guard lock(waits_mutex_);
      while (!waits_.empty()) {
        auto& front = waits_.front();
        if (!front->fired.load(std::memory_order_relaxed) && front->deadline > now) break;
        if (!front->fired.exchange(true)) expired.push_back(std::move(front));
        waits_.pop_front();
      }
    }
    for (auto& w : expired) {
      auto* raw = w.get();
      raw->complete(std::move(w),
                    broker::PublishResult{broker::PublishStatus::kTimedOut,
                                          "no broker verdict within " + std::to_string(publish_guard().count()) +
                                              " ms (the event may have been stored)",
                                          -1, -1});
    }
    // Reads and writes past their deadline (idle keep-alive, a client that stopped reading): once a
    // second is precise enough for timeouts counted in seconds.
    if (++tick % 10 != 0) continue;
    const auto now_ticks = ticks(now);
    std::lock_guard lock(connections_mutex_);
    connections_.remove_if([](const auto& w) { return w.expired(); });
    for (auto& w : connections_) {
      auto conn = w.lock();
      if (!conn) continue;
      const auto d = conn->deadline.load(std::memory_order_relaxed);
      if (d == 0 || d > now_ticks) continue;
      asio::post(conn->socket.get_executor(), [conn, now_ticks] {
        const auto d2 = conn->deadline.load(std::memory_order_relaxed);
        if (d2 != 0 && d2 <= now_ticks) {
          beast::error_code ignored;
          conn->socket.cancel(ignored);
        }
      });
    }
  }
}

awaitable<void> Server::accept_loop() {
  while (!draining_.load()) {
    // With one I/O thread every connection already runs on it alone: a strand would only add cost.
    auto ex = config_.io_threads > 1 ? asio::any_io_executor(asio::make_strand(io_))
                                     : asio::any_io_executor(io_.get_executor());
    auto [ec, socket] = co_await acceptor_.async_accept(ex, kNoCompletion);
    if (ec) {
      if (draining_.load() || ec == asio::error::operation_aborted) break;
      spdlog::warn("accept failed: {}", ec.message());
      continue;
    }
    socket.set_option(tcp::no_delay(true));
    auto conn = std::make_shared<Connection>(std::move(socket));
    {
      std::lock_guard lock(connections_mutex_);  // the sweeper drops the closed ones
      connections_.push_back(conn);
    }
    auto conn_ex = conn->socket.get_executor();
    asio::co_spawn(conn_ex, run_session(std::move(conn)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& err) {
        spdlog::error("connection ended by an unexpected error: {}", err.what());
      }
    });
  }
}

awaitable<void> Server::run_session(std::shared_ptr<Connection> conn) {
  ++open_connections_;
  beast::flat_buffer buffer;
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(config_.max_body_bytes);
    parser.header_limit(16 * 1024);
    conn->expires_after(config_.idle_timeout);
    conn->busy = false;
    if (draining_.load()) break;
    auto [ec, bytes] = co_await bhttp::async_read(conn->socket, buffer, parser, kNoCompletion);
    (void)bytes;
    if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::bad_descriptor) {
      break;
    }
    conn->busy = true;
    const auto started = Clock::now();
    if (ec) {
      // The request is unreadable (too large, malformed): answer once, then close, since the
      // rest of the stream cannot be trusted to start at a request boundary.
      Request bare;
      bare.version(11);
      Response res = problem_response(bare, unreadable_request(ec, config_.max_body_bytes), "");
      res.keep_alive(false);
      conn->expires_after(std::chrono::seconds(10));
      co_await bhttp::async_write(conn->socket, res, kNoCompletion);
      record(Route::kUnparsed, bare, res, std::chrono::duration<double>(Clock::now() - started).count());
      break;
    }
    ++active_;
    const Request& req = parser.get();
    Response res = co_await handle(req);
    --active_;
    const bool keep_alive = req.keep_alive() && !draining_.load();
    res.keep_alive(keep_alive);
    conn->expires_after(std::chrono::seconds(30));
    auto [wec, wbytes] = co_await bhttp::async_write(conn->socket, res, kNoCompletion);
    (void)wbytes;
    if (config_.access_log) {
      spdlog::info("{} {} -> {}", std::string_view(req.method_string()), std::string_view(req.target()),
                   res.result_int());
    }
    if (wec || !keep_alive) break;
  }
  conn->deadline.store(0, std::memory_order_relaxed);
  beast::error_code ignored;
  conn->socket.shutdown(tcp::socket::shutdown_send, ignored);
  --open_connections_;
}

std::string Server::route_label(Route route) const {
  switch (route) {
    case Route::kPublish:
      return config_.route();
    case Route::kHealthz:
      return "/healthz";
    case Route::kReadyz:
      return "/readyz";
    case Route::kMetrics:
      return "/metrics";
    case Route::kOther:
      return "other";
    case Route::kUnparsed:
      return "unparsed";
  }
  return "other";
}

void Server::record(Route route, const Request& req, const Response& res, double seconds) {
  const auto key = (static_cast<std::uint64_t>(route) << 40) | (static_cast<std::uint64_t>(req.method()) << 16) |
                   static_cast<std::uint64_t>(res.result_int());
  telemetry::Counter* counter = nullptr;
  {
    std::lock_guard lock(request_counters_mutex_);
    auto [it, fresh] = request_counters_.try_emplace(key, nullptr);
    if (fresh) {
      const bool named = req.method() != bhttp::verb::unknown;
      it->second = &metrics_.counter(kRequestsTotal, kRequestsHelp,
                                     {{"route", route_label(route)},
                                      {"method", named ? std::string(req.method_string()) : std::string("other")},
                                      {"code", std::to_string(res.result_int())}});
    }
    counter = it->second;
  }
  counter->inc();
  request_duration_[static_cast<std::size_t>(route)]->observe(seconds);
}

awaitable<Response> Server::handle(const Request& req) {
  const auto started = Clock::now();
  std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  const bool is_get = req.method() == bhttp::verb::get || req.method() == bhttp::verb::head;
  Route route = Route::kOther;
  Response res;

  if (path == config_.route()) {
    route = Route::kPublish;
    if (req.method() != bhttp::verb::post) {
      res = problem_response(req, method_not_allowed(req.method_string(), "POST"), path);
      res.set(bhttp::field::allow, "POST");
    } else {
      res = co_await handle_publish(req);
    }
  } else if (path == "/healthz" || path == "/readyz" || path == "/metrics") {
    route = path == "/healthz" ? Route::kHealthz : path == "/readyz" ? Route::kReadyz : Route::kMetrics;
    if (!is_get) {
      res = problem_response(req, method_not_allowed(req.method_string(), "GET"), path);
      res.set(bhttp::field::allow, "GET, HEAD");
    } else if (path == "/healthz") {
      res = json_response(req, bhttp::status::ok, R"({"status":"alive"})");
    } else if (path == "/readyz") {
      res = co_await handle_ready(req);
    } else {
      res = json_response(req, bhttp::status::ok, metrics_.render(), "text/plain; version=0.0.4; charset=utf-8");
    }
  } else {
    http::Problem p;
    p.status = 404;
    p.type = "not-found";
    p.title = "No such resource";
    p.detail = "this service answers POST " + config_.route() + ", GET /healthz, /readyz, /metrics";
    res = problem_response(req, p, path);
  }
  record(route, req, res, std::chrono::duration<double>(Clock::now() - started).count());
  co_return res;
}

awaitable<Response> Server::handle_ready(const Request& req) {
  if (draining_.load()) {
    co_return json_response(req, bhttp::status::service_unavailable, R"({"status":"draining"})");
  }
  auto [ok, detail] = co_await async_probe(publisher_, kNoCompletion);
  boost::json::object o;
  o["status"] = ok ? "ready" : "unavailable";
  o["broker"] = config_.broker == BrokerKind::kKafka ? "kafka" : "rabbitmq";
  o["detail"] = detail;
  co_return json_response(req, ok ? bhttp::status::ok : bhttp::status::service_unavailable, boost::json::serialize(o));
}

awaitable<Response> Server::handle_publish(const Request& req) {
  const std::string instance = config_.route();
  auto parsed = parse_publish_request(req[bhttp::field::content_type], req.body());
  if (auto* problem = std::get_if<http::Problem>(&parsed)) co_return problem_response(req, *problem, instance);
  PublishCommand& cmd = std::get<PublishCommand>(parsed);

  std::string key;
  if (auto it = req.find("Idempotency-Key"); it != req.end()) {
    key = std::string(it->value());
    if (!valid_idempotency_key(key)) {
      http::Problem p;
      p.status = 400;
      p.type = "invalid-header";
      p.title = "A header has an invalid value";
      p.detail = "Idempotency-Key must be 1 to 255 visible ASCII characters";
      p.field = "Idempotency-Key";
      co_return problem_response(req, p, instance);
    }
    const auto lookup =
        idempotency_.begin(key, util::fnv1a64(cmd.payload, util::fnv1a64(domain::topic_name(cmd.topic))));
    switch (lookup.outcome) {
      case IdempotencyCache::Outcome::kFirst:
        break;
      case IdempotencyCache::Outcome::kReplay: {
        replays_->inc();
        Response res = json_response(req, static_cast<bhttp::status>(lookup.response.status), lookup.response.body);
        res.set("Idempotent-Replayed", "true");
        co_return res;
      }
      case IdempotencyCache::Outcome::kInProgress: {
        http::Problem p;
        p.status = 409;
        p.type = "request-in-progress";
        p.title = "A request with this Idempotency-Key is still being processed";
        p.detail = "retry after it completes";
        p.field = "Idempotency-Key";
        p.retry_after_s = 1;
        co_return problem_response(req, p, instance);
      }
      case IdempotencyCache::Outcome::kMismatch: {
        http::Problem p;
        p.status = 422;
        p.type = "idempotency-key-reused";
        p.title = "The Idempotency-Key was already used for a different request";
        p.detail = "use a new key for a new event";
        p.field = "Idempotency-Key";
        co_return problem_response(req, p, instance);
      }
    }
  }

  const std::string topic(domain::topic_name(cmd.topic));
  const domain::Topic cmd_topic = cmd.topic;
  std::string event_id = key.empty() ? util::uuid_v4() : key;
  std::optional<telemetry::TraceContext> parent;
  if (auto it = req.find("traceparent"); it != req.end()) parent = telemetry::parse_traceparent(it->value());
  const auto trace = telemetry::TraceContext::child_of(parent);
  std::string transaction_id = cmd.transaction_id;

  auto event =
      make_outbound_event(std::move(cmd), config_.broker, event_id, config_.source, trace, broker::now_epoch_ms());
  if (config_.broker == BrokerKind::kKafka) event.topic.insert(0, config_.topic_prefix);
  const auto sent = Clock::now();
  broker::PublishResult result = co_await async_publish(std::move(event), use_awaitable);
  ack_latency_->observe(std::chrono::duration<double>(Clock::now() - sent).count());
  const std::string broker = config_.broker == BrokerKind::kKafka ? "kafka" : "rabbitmq";
  publishes_[static_cast<std::size_t>(cmd_topic)][static_cast<std::size_t>(result.status)]->inc();

  if (result.status == broker::PublishStatus::kAcked) {
    boost::json::object o;
    o["status"] = "published";
    o["broker"] = broker;
    o["topic"] = topic;
    o["eventId"] = event_id;
    o["transactionId"] = transaction_id;
    if (config_.broker == BrokerKind::kKafka) {
      if (!config_.topic_prefix.empty()) o["kafkaTopic"] = config_.topic_prefix + topic;
      o["partition"] = result.partition;
      o["offset"] = result.offset;
    } else {
      o["exchange"] = config_.exchange;
      o["routingKey"] = topic;
    }
    Response res = json_response(req, bhttp::status::ok, boost::json::serialize(o));
    res.set("traceparent", trace.to_traceparent());
    if (!key.empty()) idempotency_.complete(key, {200, res.body()});
    co_return res;
  }

  if (!key.empty()) idempotency_.abandon(key);
  http::Problem p;
  p.detail = result.detail;
  switch (result.status) {
    case broker::PublishStatus::kTimedOut:
      p.status = 504;
      p.type = "broker-ack-timeout";
      p.title = "The broker did not acknowledge the event in time";
      p.detail += "; the event may exist: retrying with the same Idempotency-Key is safe";
      p.event_id = event_id;
      break;
    case broker::PublishStatus::kRejected:
      p.status = 502;
      p.type = "broker-rejected";
      p.title = "The broker refused the event";
      p.event_id = event_id;
      break;
    default:
      p.status = 503;
      p.type = "broker-unavailable";
      p.title = "The broker cannot take the event now";
      p.retry_after_s = config_.retry_after_s;
      break;
  }
  if (p.status >= 500) spdlog::warn("publish {} to {} failed: {} ({})", event_id, topic, p.type, result.detail);
  co_return problem_response(req, p, instance);
}

void Server::shutdown(std::function<void(std::size_t)> done) {
  if (draining_.exchange(true)) return;
  beast::error_code ignored;
  acceptor_.close(ignored);
  // Idle keep-alive connections are closed now; busy ones close after their answer.
  {
    std::lock_guard lock(connections_mutex_);
    for (auto& w : connections_) {
      if (auto conn = w.lock()) {
        asio::post(conn->socket.get_executor(), [conn] {
          if (!conn->busy) {
            beast::error_code cancel_ec;  // a socket already closed needs no cancelling
            conn->socket.cancel(cancel_ec);
          }
        });
      }
    }
  }
  asio::co_spawn(io_, wait_for_quiet(std::move(done)), asio::detached);
}

awaitable<void> Server::wait_for_quiet(std::function<void(std::size_t)> done) {
  asio::steady_timer timer(io_);
  const auto deadline = Clock::now() + config_.drain_timeout;
  while (active_.load() > 0 && Clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(10));
    co_await timer.async_wait(kNoCompletion);
  }
  done(active_.load());
}

}  // namespace pix::gateway
