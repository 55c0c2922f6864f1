#include "pix/sim/load_shard.hpp"

#include <openssl/ssl.h>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <stdexcept>

namespace pix::sim::detail {

namespace {

constexpr std::uint64_t kMaxResponseBody = std::uint64_t{8} * 1024 * 1024;

bool is_tls_error(const beast::error_code& ec) {
  return ec.category() == asio::error::get_ssl_category() || ec.category() == ssl::error::get_stream_category();
}

TransportError classify(const beast::error_code& ec, bool connecting, bool timed_out) {
  if (timed_out) return TransportError::kTimeout;  // the shard's sweeper cancelled it
  if (ec == asio::error::connection_refused) return TransportError::kConnectRefused;
  if (connecting) return TransportError::kConnectFailed;
  if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe || ec == asio::error::connection_aborted) {
    return TransportError::kReset;
  }
  // stream_truncated: the TCP connection ended without TLS's close_notify, a close all the same.
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message || ec == asio::error::eof ||
      ec == ssl::error::stream_truncated) {
    return TransportError::kClosed;
  }
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category()) {
    return TransportError::kProtocol;
  }
  if (is_tls_error(ec)) return TransportError::kTls;
  return TransportError::kOther;
}

// A handshake that did not finish. A server that resets or drops the connection during it (a
// plain-HTTP server answering a ClientHello, one refusing us) is a TLS failure to the user too,
// unless it took too long.
TransportError classify_handshake(const beast::error_code& ec, bool timed_out) {
  if (timed_out) return TransportError::kTimeout;
  if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe) return TransportError::kReset;
  return TransportError::kTls;
}

// The signs of a kept-alive connection the server closed while it sat idle: the request never
// reached it, so sending it again on a fresh connection is what any HTTP client does.
bool closed_while_idle(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::eof || ec == ssl::error::stream_truncated;
}

std::string extract_event_id(std::string_view body) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return {};
  const auto* id = v.get_object().if_contains("eventId");
  if (id == nullptr || !id->is_string()) return {};
  return std::string(id->get_string());
}

}  // namespace

Shard::Shard(const LoadOptions& options, const std::vector<tcp::endpoint>& addresses,
             const std::vector<std::vector<Header>>& headers, ssl::context* tls, Shared& shared, std::size_t index,
             std::size_t shards)
    : options_(options),
      addresses_(addresses),
      headers_(headers),
      tls_(tls),
      shared_(shared),
      index_(index),
      shards_(shards),
      pace_timer_(io_),
      pools_(addresses.size()) {
  const auto cap = std::max<std::size_t>(1, share(static_cast<std::size_t>(options.max_connections), index, shards));
  for (auto& pool : pools_) pool.cap = cap;
}

void Shard::warm_up() {
  if (options_.mode == LoadOptions::Mode::kOpenLoop) {
    warm_up_open_loop();
  } else {
    warm_up_closed_loop();
  }
  io_.run();
  io_.restart();
}

void Shard::run(Clock::time_point start) {
  deadline_ = options_.duration.count() > 0 ? start + options_.duration : Clock::time_point::max();
  last_due_ = deadline_ - std::chrono::nanoseconds(1);
  if (options_.mode == LoadOptions::Mode::kOpenLoop) {
    start_open_loop(start);
  } else {
    start_closed_loop();
  }
  io_.run();
  end_ = Clock::now();
}

void Shard::request_stop() {
  asio::post(io_, [this] {
    stopping_ = true;
    // What is due now goes out first, so `unsent` only counts requests that found no connection.
    if (queue_) {
      admit(Clock::now());
      dispatch();
    }
    stop_issuing(Clock::now());
    pace_timer_.cancel();
  });
}

RequestSpec Shard::next_spec(std::uint64_t seq) {
  RequestSpec spec;
  {
    std::lock_guard lock(shared_.source_mutex);
    spec = shared_.source(seq);
  }
  if (spec.endpoint >= addresses_.size()) {
    throw std::out_of_range("the request source chose endpoint " + std::to_string(spec.endpoint) + " of " +
                            std::to_string(addresses_.size()));
  }
  return spec;
}

Request Shard::make_request(RequestSpec& spec) const {
  Request req{bhttp::verb::post, spec.target.empty() ? "/" : spec.target, 11};
  for (const auto& [name, value] : headers_[spec.endpoint]) req.insert(name, value);
  for (const auto& [name, value] : spec.headers) req.set(name, value);
  req.body() = std::move(spec.body);
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

asio::awaitable<std::optional<TransportError>> Shard::connect(Connection& c) {
  arm(c);
  auto [ec] = co_await c.socket.async_connect(addresses_[c.endpoint], kTuple);
  std::optional<TransportError> failure;
  if (ec) {
    failure = classify(ec, true, c.timed_out);
  } else {
    beast::error_code nodelay_ec;  // without TCP_NODELAY requests still go, only later: not worth failing
    c.socket.set_option(tcp::no_delay(true), nodelay_ec);
    if (options_.endpoints[c.endpoint].tls) {
      failure = co_await handshake(c);
    }
  }
  disarm(c);
  if (failure) {
    c.tls.reset();
    beast::error_code ignored;  // it failed to open: closing is all that is left to do
    c.socket.close(ignored);
    c.timed_out = false;
    co_return failure;
  }
  c.open = true;
  c.uses = 0;
  std::lock_guard lock(stats_mutex_);
  ++stats_.connections_opened;
  stats_.peak_connections = std::max(stats_.peak_connections, ++stats_.open_connections);
  co_return std::nullopt;
}

asio::awaitable<std::optional<TransportError>> Shard::handshake(Connection& c) {
  const std::string& host = options_.endpoints[c.endpoint].host;
  c.tls.emplace(c.socket, *tls_);
  // SNI carries host names only (RFC 6066); an IP address is still checked against the
  // certificate's IP SANs by host_name_verification.
  beast::error_code not_ip;
  asio::ip::make_address(host, not_ip);
  // SSL_set_tlsext_host_name, spelled out: the macro's C cast does not pass -Wold-style-cast.
  if (not_ip && SSL_ctrl(c.tls->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                         const_cast<char*>(host.c_str())) != 1) {
    co_return TransportError::kTls;
  }
  c.tls->set_verify_mode(ssl::verify_peer);
  c.tls->set_verify_callback(ssl::host_name_verification(host));
  // The sweeper may have passed the deadline while the connect's completion was queued; its
  // cancel then found nothing to cancel, and it does not come back for this connection.
  if (c.timed_out) co_return TransportError::kTimeout;
  auto [ec] = co_await c.tls->async_handshake(ssl::stream_base::client, kTuple);
  if (ec) co_return classify_handshake(ec, c.timed_out);
  co_return std::nullopt;
}

void Shard::close(Connection& c) {
  if (!c.open) return;
  // No TLS close_notify: the connection is dropped either way, and the server reads the TCP close
  // as the end (HTTP framing tells it each request was complete), so waiting for the exchange
  // of close_notify would only make closing slower.
  c.tls.reset();
  beast::error_code ec;  // the connection is being dropped: how its shutdown went changes nothing
  c.socket.shutdown(tcp::socket::shutdown_both, ec);
  c.socket.close(ec);
  c.buffer.consume(c.buffer.size());
  c.open = false;
  std::lock_guard lock(stats_mutex_);
  --stats_.open_connections;
}

asio::awaitable<Outcome> Shard::exchange(Connection& c, Request& req) {
  for (int attempt = 0;; ++attempt) {
    if (!c.open) {
      if (auto err = co_await connect(c)) co_return Outcome{0, err, {}};
    }
    arm(c);
    // Each stream type awaited in its own branch: GCC 12 miscompiles a ?: of two awaitables under
    // co_await (it started the TLS arm on a plain connection).
    beast::error_code ec;
    if (c.tls) {
      auto [wec, written] = co_await bhttp::async_write(*c.tls, req, kTuple);
      (void)written;
      ec = wec;
    } else {
      auto [wec, written] = co_await bhttp::async_write(c.socket, req, kTuple);
      (void)written;
      ec = wec;
    }
    // As in handshake(): a deadline passed while the write's completion was queued.
    if (!ec && c.timed_out) ec = asio::error::timed_out;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(kMaxResponseBody);
    if (!ec && c.tls) {
      auto [rec, read] = co_await bhttp::async_read(*c.tls, c.buffer, parser, kTuple);
      (void)read;
      ec = rec;
    } else if (!ec) {
      auto [rec, read] = co_await bhttp::async_read(c.socket, c.buffer, parser, kTuple);
      (void)read;
      ec = rec;
    }
    disarm(c);
    if (ec) {
      const bool reused = c.uses > 0;
      const bool timed_out = std::exchange(c.timed_out, false);
      close(c);
      if (attempt == 0 && reused && !timed_out && closed_while_idle(ec)) {
        std::lock_guard lock(stats_mutex_);
        ++stats_.reconnects;
        continue;
      }
      co_return Outcome{0, classify(ec, false, timed_out), {}};
    }
    ++c.uses;
    auto res = parser.release();
    if (!res.keep_alive()) close(c);
    co_return Outcome{static_cast<int>(res.result_int()), std::nullopt, std::move(res.body())};
  }
}

void Shard::arm(Connection& c) {
  if (c.deadline == Clock::time_point::max()) ++armed_;  // re-arming moves the deadline only
  c.deadline = Clock::now() + options_.timeout;
  c.timed_out = false;
  if (!sweeping_) {
    sweeping_ = true;
    spawn(sweep());
  }
}

void Shard::disarm(Connection& c) {
  if (c.deadline == Clock::time_point::max()) return;
  c.deadline = Clock::time_point::max();
  --armed_;
}

asio::awaitable<void> Shard::sweep() {
  // A tenth of the timeout (1 ms to 100 ms): a timeout fires at most 10% late.
  const auto period =
      std::clamp<Clock::duration>(options_.timeout / 10, std::chrono::milliseconds(1), std::chrono::milliseconds(100));
  asio::steady_timer timer(io_);
  while (armed_ > 0) {
    timer.expires_after(period);
    co_await timer.async_wait(kTuple);
    const auto now = Clock::now();
    auto check = [now](Connection& c) {
      if (c.deadline > now || c.timed_out) return;
      c.timed_out = true;
      beast::error_code ignored;  // cancelling a socket that is closing already changes nothing
      c.socket.cancel(ignored);
    };
    for (auto& pool : pools_) {
      for (auto& c : pool.all) check(*c);
    }
    for (auto& worker : workers_) {
      for (auto& c : worker) check(*c);
    }
  }
  sweeping_ = false;
}

void Shard::note_sent(std::optional<std::chrono::nanoseconds> send_delay) {
  std::lock_guard lock(stats_mutex_);
  ++stats_.sent;
  if (send_delay) stats_.send_delay.record(*send_delay);
}

void Shard::record(std::uint64_t seq, std::string& label, const Outcome& o, std::chrono::nanoseconds latency) {
  const bool want_answer = options_.keep_answers || options_.on_answer;
  const bool success = !o.error && o.status >= 200 && o.status < 300;
  Answer a;
  if (want_answer) {
    a.seq = seq;
    a.at = std::chrono::system_clock::now();
    a.status = o.status;
    a.error = o.error;
    if (success) a.event_id = extract_event_id(o.body);
    a.label = std::move(label);
    a.latency = latency;
  }
  {
    std::lock_guard lock(stats_mutex_);
    if (o.error) {
      ++stats_.errors[static_cast<std::size_t>(*o.error)];
      ++stats_.failed;
    } else {
      ++stats_.completed;
      ++stats_.status_counts[o.status];
      stats_.latency_all.record(latency);
      if (success) {
        ++stats_.ok;
        stats_.latency_ok.record(latency);
      } else {
        ++stats_.failed;
      }
    }
    if (options_.keep_answers) stats_.answers.push_back(a);
  }
  if (options_.on_answer) {
    std::lock_guard lock(shared_.answer_mutex);
    options_.on_answer(a, o.body);
  }
}

}  // namespace pix::sim::detail
