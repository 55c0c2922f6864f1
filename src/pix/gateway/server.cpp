// Over 600 lines on purpose: what is left is one piece (accepting, the connection loop, routing,
// the publish path and its verdict guard); metrics live in server_probe, answers in responses. The
// next seam is the verdict wait (PublishWait, async_publish, the sweeper's first half): its own file.
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

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <iterator>
#include <optional>

#include "pix/gateway/outbound.hpp"
#include "pix/gateway/publish_request.hpp"
#include "pix/gateway/responses.hpp"
#include "pix/gateway/server_probe.hpp"
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

constexpr auto kSweepPeriod = std::chrono::milliseconds(100);
constexpr auto kTlsHandshakeTimeout = std::chrono::seconds(10);

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
      probe_(std::make_unique<ServerProbe>(metrics, config, publisher, requests_, idempotency_, tls_.get())) {}

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
  asio::co_spawn(io_, accept_loop(), [](const std::exception_ptr& e) {
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
      [this](auto handler, const broker::OutboundEvent& ev) {
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
        publisher_.publish(ev, [wait](broker::PublishResult r) mutable {
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
    probe_->tls_reloaded(true);
    spdlog::info("TLS certificate reloaded from {} (expires in {:.0f} days)", config_.tls.cert_file,
                 tls_->seconds_until_expiry() / 86400);
  } else if (!r.error.empty()) {
    probe_->tls_reloaded(false);
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
    if (static_cast<std::size_t>(probe_->open_connections()) >= config_.limits.max_connections) {
      conn->over_capacity = true;
      probe_->connection_refused();
    }
    {
      std::lock_guard lock(connections_mutex_);  // the sweeper drops the closed ones
      connections_.push_back(conn);
    }
    auto conn_ex = conn->socket().get_executor();
    asio::co_spawn(conn_ex, run_session(std::move(conn)), [](const std::exception_ptr& e) {
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
  probe_->connection_opened();
  if (conn->tls) {
    conn->expires_after(kTlsHandshakeTimeout);
    auto [hec] = co_await conn->tls->async_handshake(ssl::stream_base::server, kNoCompletion);
    if (hec) {
      // Plaintext HTTP sent to the HTTPS port ends here too: there is no TLS to answer it in.
      probe_->tls_handshake_failed();
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
  probe_->connection_closed();
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
      Response res = ec ? unreadable_request(ec, config_.max_body_bytes)
                        : too_many_header_fields(config_.limits.max_header_fields);
      res.keep_alive(false);
      conn->expires_after(std::chrono::seconds(10));
      co_await bhttp::async_write(stream, res, kNoCompletion);
      probe_->request(Route::kUnparsed, bhttp::verb::unknown, res.result_int(),
                      std::chrono::duration<double>(Clock::now() - started).count());
      break;
    }
    const Request& req = parser.get();
    Response res;
    // Counted until the answer is ready; once shutdown() has closed the gate, a request read
    // from a keep-alive connection is answered 503 (nothing was published: retrying is safe).
    std::optional<service::WorkGate::Ticket> ticket(std::in_place, requests_);
    if (!ticket->admitted() || conn->over_capacity) {
      res = !ticket->admitted() ? draining(req, config_.retry_after_s)
                                : too_many_connections(req, config_.limits.max_connections, config_.retry_after_s);
      probe_->request(Route::kOther, req.method(), res.result_int(), 0);
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
      res = method_not_allowed(req, path, "POST", "POST");
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
      res = method_not_allowed(req, path, "GET", "GET, HEAD");
    } else if (path == "/healthz") {
      res = alive(req);
    } else if (path == "/readyz") {
      res = co_await handle_ready(req);
    } else {
      res = metrics_text(req, metrics_.render());
    }
  } else {
    res = not_found(req, path, config_.route());
  }
  probe_->request(route, req.method(), res.result_int(), std::chrono::duration<double>(Clock::now() - started).count());
  co_return res;
}

awaitable<Response> Server::handle_ready(const Request& req) {
  if (requests_.closed()) co_return readiness_draining(req);
  auto [ok, detail] = co_await async_probe(publisher_, kNoCompletion);
  co_return readiness(req, ok, config_.broker, detail);
}

std::optional<Response> Server::admit(const Request& req, const Connection& conn, std::optional<Principal>& principal) {
  const std::string instance = config_.route();
  if (auth_) {
    const auto it = req.find(bhttp::field::authorization);
    const std::string_view authorization = it == req.end() ? std::string_view{} : std::string_view(it->value());
    Authentication a = auth_->authenticate(authorization, req.target(), conn.cert_cn ? &*conn.cert_cn : nullptr);
    if (!a.principal) {
      probe_->auth_rejected(a.reason);
      return unauthorized(req, instance, a);
    }
    principal = std::move(a.principal);
  }
  if (limiter_.enabled()) {
    const auto d = limiter_.acquire(principal ? std::string_view(principal->name) : std::string_view(conn.peer));
    if (!d.allowed) {
      probe_->rate_limited();
      return rate_limited(req, instance, config_.limits.rate_per_principal, principal ? principal->name : conn.peer,
                          d.retry_after_s);
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
    probe_->auth_rejected("insufficient_scope");
    co_return forbidden(req, instance, principal->name, security::publish_scope(domain::topic_name(cmd.topic)));
  }

  std::string key;
  if (auto it = req.find("Idempotency-Key"); it != req.end()) {
    key = std::string(it->value());
    if (!valid_idempotency_key(key)) co_return invalid_idempotency_key(req, instance);
    const auto lookup =
        // The principal is part of the fingerprint: another caller's key is "reused", never replayed.
        idempotency_.begin(key,
                           util::fnv1a64(cmd.payload, util::fnv1a64(domain::topic_name(cmd.topic),
                                                                    util::fnv1a64(principal ? principal->name : ""))));
    switch (lookup.outcome) {
      case IdempotencyCache::Outcome::kFirst:
        break;
      case IdempotencyCache::Outcome::kReplay:
        probe_->replayed();
        co_return replayed(req, lookup.response);
      case IdempotencyCache::Outcome::kInProgress:
        co_return idempotency_in_progress(req, instance);
      case IdempotencyCache::Outcome::kMismatch:
        co_return idempotency_key_reused(req, instance);
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
    send.set("messaging.system", broker_name(config_.broker))
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
    event.headers.push_back({kafka ? "ce_principal" : "cloudEvents_principal", principal->name});
  }
  const auto sent = Clock::now();
  broker::PublishResult result = co_await async_publish(std::move(event), use_awaitable);
  probe_->publish_verdict(cmd_topic, result.status, std::chrono::duration<double>(Clock::now() - sent).count());

  if (result.status == broker::PublishStatus::kAcked) {
    if (kafka) {
      send.set("messaging.destination.partition.id", std::to_string(result.partition))
          .set("messaging.kafka.offset", std::int64_t{result.offset});
    }
    send.end();
    Response res = published(req, config_, topic, event_id, transaction_id, result);
    res.set("traceparent", trace.to_traceparent());
    if (!key.empty()) idempotency_.complete(key, {200, res.body()});
    co_return res;
  }

  if (!key.empty()) idempotency_.abandon(key);
  send.set_error(std::string(broker::to_string(result.status)) + ": " + result.detail);
  send.end();
  const http::Problem p = publish_failure(result, event_id, config_.retry_after_s);
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
