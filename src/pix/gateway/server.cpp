#include "pix/gateway/server.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <iterator>
#include <optional>

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
namespace ssl = asio::ssl;
using Clock = std::chrono::steady_clock;

namespace {
std::int64_t ticks(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
}  // namespace

// A TCP socket, wrapped in TLS when the gateway serves HTTPS. Read and write deadlines are
// enforced by the server's sweeper (one timer for all connections) rather than by a timer armed
// and cancelled around every read and write.
struct Server::Connection {
  explicit Connection(tcp::socket s) : plain(std::move(s)) {}
  Connection(tcp::socket s, std::shared_ptr<ssl::context> ctx)
      : tls_context(std::move(ctx)), tls(std::in_place, std::move(s), *tls_context) {}
  void expires_after(Clock::duration d) { deadline.store(ticks(Clock::now() + d), std::memory_order_relaxed); }
  tcp::socket& socket() { return tls ? tls->next_layer() : *plain; }

  std::optional<tcp::socket> plain;
  std::shared_ptr<ssl::context> tls_context;  // before `tls`: outlives it
  // Beast's ssl_stream, not asio's: it coalesces a response's header and body buffers into one
  // TLS record and one write (asio's encrypts and sends each buffer of the sequence on its own).
  std::optional<boost::beast::ssl_stream<tcp::socket>> tls;
  std::optional<std::string> cert_cn;     // CN of a client certificate TLS verified
  std::string peer;                       // client address, the rate limit's key without auth
  bool over_capacity = false;             // accepted beyond --max-connections: answer 503, close
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
constexpr auto kTlsHandshakeTimeout = std::chrono::seconds(10);

// The CN of the client certificate TLS verified, if one was presented.
std::optional<std::string> verified_client_cn(SSL* ssl) {
  X509* cert = SSL_get_peer_certificate(ssl);
  if (cert == nullptr) return std::nullopt;
  std::optional<std::string> cn;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    char buf[256];
    const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
    if (n > 0) cn = std::string(buf, static_cast<std::size_t>(n));
  }
  X509_free(cert);
  return cn;
}

http::Problem too_many_header_fields(std::size_t max) {
  http::Problem p;
  p.status = 431;
  p.type = "headers-too-large";
  p.title = "The request has too many header fields";
  p.detail = "at most " + std::to_string(max) + " header fields are accepted";
  return p;
}

// RFC 6750 §3: what the client should do, in the header as well as the body.
std::string bearer_challenge(std::string_view error, std::string_view detail, std::string_view scope = {}) {
  std::string h = "Bearer realm=\"pix-api\"";
  if (!error.empty()) h += ", error=\"" + std::string(error) + "\"";
  if (!detail.empty()) h += ", error_description=\"" + std::string(detail) + "\"";
  if (!scope.empty()) h += ", scope=\"" + std::string(scope) + "\"";
  return h;
}

bool valid_idempotency_key(std::string_view key) {
  if (key.empty() || key.size() > 255) return false;
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

Server::Server(asio::io_context& io, const GatewayConfig& config, broker::Publisher& publisher,
               telemetry::Registry& metrics, telemetry::Tracer* tracer)
    : io_(io),
      config_(config),
      publisher_(publisher),
      metrics_(metrics),
      tracer_(tracer ? *tracer : disabled_tracer_),
      idempotency_({config.idempotency_window, config.idempotency_max_keys}),
      tls_(config.tls.enabled() ? std::make_unique<TlsContextSource>(config.tls) : nullptr),
      auth_(config.auth.required ? std::make_unique<Authenticator>(config.auth) : nullptr),
      limiter_(config.limits.rate_per_principal, config.limits.rate_burst),
      acceptor_(io),
      ack_latency_(&metrics.histogram("pix_broker_ack_duration_seconds",
                                      "Time from handing an event to the broker client to its verdict",
                                      {{"broker", config.broker == BrokerKind::kKafka ? "kafka" : "rabbitmq"}})),
      replays_(&metrics.counter("pix_idempotent_replays_total",
                                "Requests answered from the Idempotency-Key window without publishing")) {
  const std::string broker = config.broker == BrokerKind::kKafka ? "kafka" : "rabbitmq";
  telemetry::register_build_info(metrics, config.service_name());
  telemetry::describe_tracing_metrics(metrics);  // exported with tracing off too: dashboards see zeros
  static_assert(static_cast<std::size_t>(broker::PublishStatus::kNacked) + 1 == kStatuses);
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
                [this] { return static_cast<double>(requests_.in_flight()); });
  metrics.gauge("pix_http_open_connections", "Open HTTP connections", {},
                [this] { return static_cast<double>(open_connections_.load()); });
  metrics.gauge("pix_idempotency_keys", "Idempotency keys remembered", {},
                [this] { return static_cast<double>(idempotency_.size()); });
  metrics.gauge("pix_idempotency_index_rows", "Rows of the Idempotency-Key expiry index, stale ones included", {},
                [this] { return static_cast<double>(idempotency_.rows()); });
  metrics.describe("pix_auth_rejections_total", "Publish requests refused 401 or 403, by reason", "counter");
  rate_limited_ = &metrics.counter("pix_rate_limited_total", "Requests refused 429 by the per-principal rate limit");
  connections_refused_ = &metrics.counter("pix_http_connections_refused_total",
                                          "Connections answered 503 and closed beyond --max-connections");
  tls_handshake_failures_ =
      &metrics.counter("pix_tls_handshake_failures_total", "TLS handshakes that failed (plaintext to HTTPS included)");
  metrics.describe("pix_tls_reloads_total", "Certificate reloads by result", "counter");
  metrics.describe("pix_tls_certificate_expiry_seconds", "Seconds until the serving certificate expires", "gauge");
  if (tls_) {
    metrics.gauge("pix_tls_certificate_expiry_seconds", "Seconds until the serving certificate expires", {},
                  [this] { return tls_->seconds_until_expiry(); });
  }
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
    if (tls_ && (tick / 10) % config_.tls.reload_check.count() == 0) reload_tls(false);
    const auto now_ticks = ticks(now);
    std::lock_guard lock(connections_mutex_);
    connections_.remove_if([](const auto& w) { return w.expired(); });
    for (auto& w : connections_) {
      auto conn = w.lock();
      if (!conn) continue;
      const auto d = conn->deadline.load(std::memory_order_relaxed);
      if (d == 0 || d > now_ticks) continue;
      asio::post(conn->socket().get_executor(), [conn, now_ticks] {
        const auto d2 = conn->deadline.load(std::memory_order_relaxed);
        if (d2 != 0 && d2 <= now_ticks) {
          beast::error_code ignored;
          conn->socket().cancel(ignored);
        }
      });
    }
  }
}

void Server::reload_tls(bool force) {
  if (!tls_) return;
  const auto r = tls_->reload_if_changed(force);
  if (r.changed) {
    metrics_.counter("pix_tls_reloads_total", "Certificate reloads by result", {{"result", "ok"}}).inc();
    spdlog::info("TLS certificate reloaded from {} (expires in {:.0f} days)", config_.tls.cert_file,
                 tls_->seconds_until_expiry() / 86400);
  } else if (!r.error.empty()) {
    metrics_.counter("pix_tls_reloads_total", "Certificate reloads by result", {{"result", "failed"}}).inc();
    spdlog::error("TLS certificate not reloaded, the previous one stays in use: {}", r.error);
  }
}

awaitable<void> Server::accept_loop() {
  asio::steady_timer backoff(io_);
  auto last_warning = Clock::time_point{};
  while (!requests_.closed()) {
    // With one I/O thread every connection already runs on it alone: a strand would only add cost.
    auto ex = config_.io_threads > 1 ? asio::any_io_executor(asio::make_strand(io_))
                                     : asio::any_io_executor(io_.get_executor());
    auto [ec, socket] = co_await acceptor_.async_accept(ex, kNoCompletion);
    if (ec) {
      if (requests_.closed() || ec == asio::error::operation_aborted) break;
      // Out of file descriptors: the pending connection stays queued, so accepting again at once
      // would spin. Wait a little; closing connections frees descriptors meanwhile.
      const bool exhausted = ec == asio::error::no_descriptors || ec.value() == ENFILE;
      if (Clock::now() - last_warning > std::chrono::seconds(1)) {
        spdlog::warn("accept failed: {}{}", ec.message(), exhausted ? " (backing off 100 ms)" : "");
        last_warning = Clock::now();
      }
      if (exhausted) {
        backoff.expires_after(std::chrono::milliseconds(100));
        co_await backoff.async_wait(kNoCompletion);
      }
      continue;
    }
    beast::error_code opt_ec;
    socket.set_option(tcp::no_delay(true), opt_ec);
    const auto remote = socket.remote_endpoint(opt_ec);
    auto conn = tls_ ? std::make_shared<Connection>(std::move(socket), tls_->current())
                     : std::make_shared<Connection>(std::move(socket));
    if (!opt_ec) conn->peer = remote.address().to_string();
    if (static_cast<std::size_t>(open_connections_.load()) >= config_.limits.max_connections) {
      conn->over_capacity = true;
      connections_refused_->inc();
    }
    {
      std::lock_guard lock(connections_mutex_);  // the sweeper drops the closed ones
      connections_.push_back(conn);
    }
    auto conn_ex = conn->socket().get_executor();
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
  if (conn->tls) {
    conn->expires_after(kTlsHandshakeTimeout);
    auto [hec] = co_await conn->tls->async_handshake(ssl::stream_base::server, kNoCompletion);
    if (hec) {
      // Plaintext HTTP sent to the HTTPS port ends here too: there is no TLS to answer it in.
      tls_handshake_failures_->inc();
      spdlog::debug("TLS handshake with {} failed: {}", conn->peer, hec.message());
    } else {
      conn->cert_cn = verified_client_cn(conn->tls->native_handle());
      co_await serve(conn, *conn->tls);
      // close_notify, bounded: a peer that never answers it is cut off by the sweeper.
      conn->expires_after(std::chrono::seconds(2));
      co_await conn->tls->async_shutdown(kNoCompletion);
    }
  } else {
    co_await serve(conn, *conn->plain);
  }
  conn->deadline.store(0, std::memory_order_relaxed);
  beast::error_code ignored;
  conn->socket().shutdown(tcp::socket::shutdown_send, ignored);
  --open_connections_;
}

template <typename Stream>
awaitable<void> Server::serve(std::shared_ptr<Connection> conn, Stream& stream) {
  beast::flat_buffer buffer;
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(config_.max_body_bytes);
    parser.header_limit(16 * 1024);
    conn->expires_after(config_.idle_timeout);
    conn->busy = false;
    if (requests_.closed()) break;
    auto [ec, bytes] = co_await bhttp::async_read(stream, buffer, parser, kNoCompletion);
    (void)bytes;
    if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::bad_descriptor) {
      break;
    }
    conn->busy = true;
    const auto started = Clock::now();
    const std::size_t fields =
        ec ? 0 : static_cast<std::size_t>(std::distance(parser.get().begin(), parser.get().end()));
    if (ec || fields > config_.limits.max_header_fields) {
      // The request is unreadable (too large, malformed): answer once, then close, since the
      // rest of the stream cannot be trusted to start at a request boundary.
      Request bare;
      bare.version(11);
      Response res = problem_response(bare,
                                      ec ? unreadable_request(ec, config_.max_body_bytes)
                                         : too_many_header_fields(config_.limits.max_header_fields),
                                      "");
      res.keep_alive(false);
      conn->expires_after(std::chrono::seconds(10));
      co_await bhttp::async_write(stream, res, kNoCompletion);
      record(Route::kUnparsed, bare, res, std::chrono::duration<double>(Clock::now() - started).count());
      break;
    }
    const Request& req = parser.get();
    Response res;
    // Counted until the answer is ready; once shutdown() has closed the gate, a request read
    // from a keep-alive connection is answered 503 (nothing was published: retrying is safe).
    std::optional<service::WorkGate::Ticket> ticket(std::in_place, requests_);
    if (!ticket->admitted()) {
      http::Problem p;
      p.status = 503;
      p.type = "draining";
      p.title = "The gateway is shutting down";
      p.detail = "this instance takes no new requests; retry (another instance will answer)";
      p.retry_after_s = config_.retry_after_s;
      res = problem_response(req, p, "");
      record(Route::kOther, req, res, 0);
    } else if (conn->over_capacity) {
      http::Problem p;
      p.status = 503;
      p.type = "too-many-connections";
      p.title = "The gateway has too many open connections";
      p.detail = "at most " + std::to_string(config_.limits.max_connections) + " connections are served; retry later";
      p.retry_after_s = config_.retry_after_s;
      res = problem_response(req, p, "");
      record(Route::kOther, req, res, 0);
    } else {
      res = co_await handle(req, *conn);
    }
    ticket.reset();
    const bool keep_alive = req.keep_alive() && !requests_.closed() && !conn->over_capacity;
    res.keep_alive(keep_alive);
    conn->expires_after(std::chrono::seconds(30));
    beast::error_code wec;
    if (req.method() == bhttp::verb::head) {
      // HEAD: the headers a GET would get (Content-Length included), and no body (RFC 9110 §9.3.2).
      bhttp::response_serializer<bhttp::string_body> sr{res};
      std::tie(wec, std::ignore) = co_await bhttp::async_write_header(stream, sr, kNoCompletion);
    } else {
      std::tie(wec, std::ignore) = co_await bhttp::async_write(stream, res, kNoCompletion);
    }
    if (config_.access_log) {
      spdlog::info("{} {} -> {}", std::string_view(req.method_string()), std::string_view(req.target()),
                   res.result_int());
    }
    if (wec || !keep_alive) break;
  }
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

awaitable<Response> Server::handle(const Request& req, const Connection& conn) {
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
      // Only the publishing route is traced: probes and scrapes would bury the payments.
      telemetry::Span span = server_span(req, conn);
      res = co_await handle_publish(req, conn, span);
      span.set("http.response.status_code", std::int64_t{res.result_int()});
      if (res.result_int() >= 500) span.set_error(std::to_string(res.result_int()) + " " + std::string(res.reason()));
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
  if (requests_.closed()) {
    co_return json_response(req, bhttp::status::service_unavailable, R"({"status":"draining"})");
  }
  auto [ok, detail] = co_await async_probe(publisher_, kNoCompletion);
  boost::json::object o;
  o["status"] = ok ? "ready" : "unavailable";
  o["broker"] = config_.broker == BrokerKind::kKafka ? "kafka" : "rabbitmq";
  o["detail"] = detail;
  co_return json_response(req, ok ? bhttp::status::ok : bhttp::status::service_unavailable, boost::json::serialize(o));
}

void Server::count_rejection(const std::string& reason) {
  telemetry::Counter* counter = nullptr;
  {
    std::lock_guard lock(rejection_counters_mutex_);
    auto [it, fresh] = rejection_counters_.try_emplace(reason, nullptr);
    if (fresh) {
      it->second = &metrics_.counter("pix_auth_rejections_total", "Publish requests refused 401 or 403, by reason",
                                     {{"reason", reason}});
    }
    counter = it->second;
  }
  counter->inc();
}

std::optional<Response> Server::admit(const Request& req, const Connection& conn, std::optional<Principal>& principal) {
  const std::string instance = config_.route();
  if (auth_) {
    const auto it = req.find(bhttp::field::authorization);
    const std::string_view authorization = it == req.end() ? std::string_view{} : std::string_view(it->value());
    Authentication a = auth_->authenticate(authorization, req.target(), conn.cert_cn ? &*conn.cert_cn : nullptr);
    if (!a.principal) {
      count_rejection(a.reason);
      http::Problem p;
      p.status = 401;
      p.type = "unauthorized";
      p.title = "Authentication is required";
      p.detail = a.detail;
      if (a.reason == "query_string")
        p.field = "access_token";
      else if (a.reason != "missing")
        p.field = "Authorization";
      Response res = problem_response(req, p, instance);
      res.set(bhttp::field::www_authenticate, bearer_challenge(a.error, a.error.empty() ? "" : a.detail));
      return res;
    }
    principal = std::move(a.principal);
  }
  if (limiter_.enabled()) {
    const auto d = limiter_.acquire(principal ? std::string_view(principal->name) : std::string_view(conn.peer));
    if (!d.allowed) {
      rate_limited_->inc();
      http::Problem p;
      p.status = 429;
      p.type = "rate-limited";
      p.title = "Too many requests";
      p.detail = "more than " + std::to_string(static_cast<long>(config_.limits.rate_per_principal)) +
                 " requests/s from " + (principal ? principal->name : conn.peer) + "; slow down";
      p.retry_after_s = d.retry_after_s;
      return problem_response(req, p, instance);
    }
  }
  return std::nullopt;
}

telemetry::Span Server::server_span(const Request& req, const Connection& conn) {
  std::optional<telemetry::TraceContext> parent;
  if (auto it = req.find("traceparent"); it != req.end()) parent = telemetry::parse_traceparent(it->value());
  telemetry::Span span = tracer_.start("POST " + config_.route(), telemetry::SpanKind::kServer, parent);
  if (span.recording()) {
    span.set("http.request.method", "POST")
        .set("http.route", config_.route())
        .set("url.scheme", config_.scheme())
        .set("url.path", config_.route())
        .set("client.address", conn.peer)
        .set("server.port", std::int64_t{port()})
        .set("network.protocol.version", req.version() == 11 ? "1.1" : "1.0");
    if (auto it = req.find(bhttp::field::user_agent); it != req.end()) {
      span.set("user_agent.original", std::string(it->value()));
    }
  }
  return span;
}

awaitable<Response> Server::handle_publish(const Request& req, const Connection& conn, telemetry::Span& span) {
  const std::string instance = config_.route();
  std::optional<Principal> principal;
  if (auto refused = admit(req, conn, principal)) co_return std::move(*refused);
  if (principal) span.set("enduser.id", principal->name);
  auto parsed = parse_publish_request(req[bhttp::field::content_type], req.body());
  if (auto* problem = std::get_if<http::Problem>(&parsed)) co_return problem_response(req, *problem, instance);
  PublishCommand& cmd = std::get<PublishCommand>(parsed);
  if (principal && !principal->may_publish(domain::topic_name(cmd.topic))) {
    count_rejection("insufficient_scope");
    const std::string scope = security::publish_scope(domain::topic_name(cmd.topic));
    http::Problem p;
    p.status = 403;
    p.type = "forbidden";
    p.title = "Not allowed to publish to this topic";
    p.detail = principal->name + " lacks the scope " + scope;
    p.field = "topic";
    Response res = problem_response(req, p, instance);
    res.set(bhttp::field::www_authenticate, bearer_challenge("insufficient_scope", p.detail, scope));
    co_return res;
  }

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
        // The principal is part of the fingerprint: another caller's key is "reused", never replayed.
        idempotency_.begin(key,
                           util::fnv1a64(cmd.payload, util::fnv1a64(domain::topic_name(cmd.topic),
                                                                    util::fnv1a64(principal ? principal->name : ""))));
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
  std::string event_id =
      key.empty() ? util::uuid_v4()
                  : idempotent_event_id(principal ? std::string_view(principal->name) : kUnauthenticatedScope, key);
  std::string transaction_id = cmd.transaction_id;
  span.set("pix.transaction_id", transaction_id).set("pix.event_id", event_id).set("pix.topic", topic);
  // The PRODUCER span's context is what the event carries in `traceparent`.
  const bool kafka = config_.broker == BrokerKind::kKafka;
  telemetry::Span send = span.child("send " + topic, telemetry::SpanKind::kProducer);
  const auto trace = send.context();

  auto event =
      make_outbound_event(std::move(cmd), config_.broker, event_id, config_.source, trace, broker::now_epoch_ms());
  if (kafka) event.topic.insert(0, config_.topic_prefix);
  if (send.recording()) {
    send.set("messaging.system", kafka ? "kafka" : "rabbitmq")
        .set("messaging.operation.type", "send")
        .set("messaging.operation.name", "send")
        .set("messaging.message.id", event_id)
        .set("messaging.destination.name", kafka ? event.topic : config_.exchange);
    if (kafka) {
      send.set("messaging.kafka.message.key", event.key);
    } else {
      send.set("messaging.rabbitmq.destination.routing_key", event.topic);
    }
  }
  // Who asked, as a CloudEvents extension attribute: the audit trail and every stage see it.
  if (principal) {
    event.headers.push_back(
        {config_.broker == BrokerKind::kKafka ? "ce_principal" : "cloudEvents_principal", principal->name});
  }
  const auto sent = Clock::now();
  broker::PublishResult result = co_await async_publish(std::move(event), use_awaitable);
  ack_latency_->observe(std::chrono::duration<double>(Clock::now() - sent).count());
  const std::string broker = config_.broker == BrokerKind::kKafka ? "kafka" : "rabbitmq";
  publishes_[static_cast<std::size_t>(cmd_topic)][static_cast<std::size_t>(result.status)]->inc();

  if (result.status == broker::PublishStatus::kAcked) {
    if (kafka) {
      send.set("messaging.destination.partition.id", std::to_string(result.partition))
          .set("messaging.kafka.offset", std::int64_t{result.offset});
    }
    send.end();
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
  send.set_error(std::string(broker::to_string(result.status)) + ": " + result.detail);
  send.end();
  http::Problem p;
  p.detail = result.detail;
  switch (result.status) {
    case broker::PublishStatus::kTimedOut:
    case broker::PublishStatus::kNacked: {
      const bool nacked = result.status == broker::PublishStatus::kNacked;
      p.status = 504;
      p.type = nacked ? "broker-nacked" : "broker-ack-timeout";
      p.title = nacked ? "The broker refused the event in one of its queues"
                       : "The broker did not acknowledge the event in time";
      p.detail += "; the event may exist: retrying with the same Idempotency-Key is safe";
      p.event_id = event_id;
      break;
    }
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
  if (p.status >= 500) {
    const telemetry::ActiveSpan active(span);  // the log line carries the trace's ids
    spdlog::warn("publish {} to {} failed: {} ({})", event_id, topic, p.type, result.detail);
  }
  co_return problem_response(req, p, instance);
}

void Server::shutdown(std::function<void(std::size_t)> done) {
  if (!requests_.close()) return;
  beast::error_code ignored;
  acceptor_.close(ignored);
  // Idle keep-alive connections are closed now; busy ones close after their answer.
  {
    std::lock_guard lock(connections_mutex_);
    for (auto& w : connections_) {
      if (auto conn = w.lock()) {
        asio::post(conn->socket().get_executor(), [conn] {
          if (!conn->busy) {
            beast::error_code cancel_ec;  // a socket already closed needs no cancelling
            conn->socket().cancel(cancel_ec);
          }
        });
      }
    }
  }
  // `done` once: when the last request in progress is answered, or at the drain deadline.
  struct Drain {
    Drain(std::function<void(std::size_t)> d, asio::io_context& io, std::chrono::milliseconds bound)
        : done(std::move(d)), deadline(io, bound) {}
    std::function<void(std::size_t)> done;
    std::atomic<bool> fired{false};
    asio::steady_timer deadline;
    void fire(std::size_t unanswered) {
      if (!fired.exchange(true)) done(unanswered);
    }
  };
  auto drain = std::make_shared<Drain>(std::move(done), io_, config_.drain_timeout);
  drain->deadline.async_wait([this, drain](const beast::error_code& ec) {
    if (!ec) drain->fire(requests_.in_flight());
  });
  requests_.on_idle([this, drain] {
    asio::post(io_, [drain] {
      drain->deadline.cancel();
      drain->fire(0);
    });
  });
}

}  // namespace pix::gateway
