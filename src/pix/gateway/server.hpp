#pragma once
/// @file The publishing gateway's HTTP server: POST /kafka or /rabbit, /healthz, /readyz, /metrics.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>

#include "pix/broker/publisher.hpp"
#include "pix/gateway/authenticator.hpp"
#include "pix/gateway/config.hpp"
#include "pix/gateway/idempotency.hpp"
#include "pix/gateway/rate_limiter.hpp"
#include "pix/gateway/tls_context.hpp"
#include "pix/service/lifecycle.hpp"
#include "pix/telemetry/metrics.hpp"
#include "pix/telemetry/tracer.hpp"

namespace pix::gateway {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

class ServerProbe;

/// @brief Async HTTP/1.1 or HTTPS (keep-alive, one coroutine per connection) in front of a Publisher.
///
/// A request is answered 200 only with the broker's acknowledgement in hand; every other
/// outcome is a problem+json. With `--auth jwt` a publish needs a verified principal (bearer
/// token or client certificate) holding the topic's scope: 401 / 403 otherwise. Shutdown: stop
/// accepting, close idle connections, let busy ones finish their current request (answered with
/// Connection: close), then report.
class Server {
 public:
  /// `tracer` null: spans propagate context and record nothing.
  Server(boost::asio::io_context& io, const GatewayConfig& config, broker::Publisher& publisher,
         telemetry::Registry& metrics, telemetry::Tracer* tracer = nullptr);
  ~Server();

  /// Bind and listen. Throws std::system_error when the address is taken.
  void listen();
  /// The bound port (useful with port 0).
  std::uint16_t port() const;
  /// Start accepting connections.
  void start();
  /// Begin draining; `done(unanswered)` fires on an io thread when no request is in progress,
  /// or at the drain deadline with the number still in progress.
  void shutdown(std::function<void(std::size_t)> done);

  std::size_t requests_in_progress() const { return requests_.in_flight(); }

  /// Re-reads the TLS certificate and key when they changed (or always with `force`: SIGHUP).
  /// New connections get the new certificate; open ones keep theirs. Safe from any thread.
  void reload_tls(bool force);

 private:
  struct Connection;
  struct PublishWait;

  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> run_session(std::shared_ptr<Connection> conn);
  template <typename Stream>
  boost::asio::awaitable<void> serve(std::shared_ptr<Connection> conn, Stream& stream);
  boost::asio::awaitable<Response> handle(const Request& req, const Connection& conn);
  /// `span` is the request's SERVER span; the publish is its PRODUCER child.
  boost::asio::awaitable<Response> handle_publish(const Request& req, const Connection& conn, telemetry::Span& span);
  telemetry::Span server_span(const Request& req, const Connection& conn);
  /// 401 / 429 before the body is even parsed, or nullopt with `principal` set (or left empty
  /// when authentication is off).
  std::optional<Response> admit(const Request& req, const Connection& conn, std::optional<Principal>& principal);
  boost::asio::awaitable<Response> handle_ready(const Request& req);
  boost::asio::awaitable<void> sweep_loop();
  template <typename Token>
  auto async_publish(broker::OutboundEvent event, Token&& token);
  /// How long a request waits for a verdict before 504: the publishers enforce the ack timeout
  /// themselves, and this adds a little grace so that their own, more precise verdict normally wins.
  std::chrono::milliseconds publish_guard() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(config_.publish_timeout) +
           std::chrono::milliseconds(250);
  }

  boost::asio::io_context& io_;
  GatewayConfig config_;
  broker::Publisher& publisher_;
  telemetry::Registry& metrics_;
  telemetry::Tracer disabled_tracer_;
  telemetry::Tracer& tracer_;
  IdempotencyCache idempotency_;
  std::unique_ptr<TlsContextSource> tls_;
  std::unique_ptr<Authenticator> auth_;
  RateLimiter limiter_;
  boost::asio::ip::tcp::acceptor acceptor_;
  // Requests being handled; closed by shutdown(), which then waits for it to empty.
  service::WorkGate requests_;

  std::mutex waits_mutex_;
  std::deque<std::shared_ptr<PublishWait>> waits_;  // in deadline order

  std::mutex connections_mutex_;
  std::list<std::weak_ptr<Connection>> connections_;

  // Hot-path metrics resolved once; after the members its gauges read.
  std::unique_ptr<ServerProbe> probe_;
};

}  // namespace pix::gateway
