#include "pix/sim/load_engine.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "pix/http/url.hpp"
#include "pix/sim/rate.hpp"
#include "pix/util/text.hpp"

namespace pix::sim {

namespace detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Request = bhttp::request<bhttp::string_body>;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// Requests an open-loop shard builds ahead and holds while they wait for a connection. Past this,
// due tickets stay in the queue (keeping their intended time, so their latency is still honest):
// a stalled server costs no memory.
constexpr std::size_t kMaxWaiting = 65536;
// A closed-loop worker whose connect failed waits this long before its next request, so a server
// that is down does not turn the generator into a busy loop counting millions of refusals.
constexpr auto kConnectRetryDelay = std::chrono::milliseconds(50);
// Open loop: most connects in progress at once per endpoint (and thread). A hiccup of a few ms
// leaves a burst of requests waiting; opening one connection for each would leave hundreds of
// connections behind for a backlog that clears by itself. A few at a time still follows a server
// that stays slow, since every finished connect that finds requests still waiting opens the next.
constexpr std::size_t kMaxConcurrentConnects = 8;
constexpr std::uint64_t kMaxResponseBody = 8 * 1024 * 1024;
constexpr auto kMonitorTick = std::chrono::milliseconds(50);

struct Outcome {
  int status = 0;
  std::optional<TransportError> error;
  std::string body;
};

/// What a shard has counted; written by the shard's thread, read by the monitor, under a mutex.
struct Stats {
  std::uint64_t sent = 0;
  std::uint64_t completed = 0;
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;  // non-2xx answers and transport errors, for the progress line
  std::uint64_t unsent = 0;
  std::uint64_t connections_opened = 0;
  std::uint64_t open_connections = 0;
  std::uint64_t peak_connections = 0;
  std::uint64_t reconnects = 0;
  std::map<int, std::uint64_t> status_counts;
  std::array<std::uint64_t, kTransportErrorKinds> errors{};
  LatencyHistogram latency_ok;
  LatencyHistogram latency_all;
  LatencyHistogram send_delay;
  std::vector<Answer> answers;
};

/// A socket, with TLS over it for an https endpoint: the shard's sweeper enforces the request
/// timeout by cancelling the socket (one timer for all connections, rather than one armed and
/// cancelled around every connect, handshake, write and read), which ends the TLS operations too.
struct Connection {
  Connection(asio::io_context& io, std::size_t endpoint_index) : socket(io), endpoint(endpoint_index) {}
  tcp::socket socket;
  // Over `socket` (a reference, so cancel and close stay the socket's); made anew for each TCP
  // connection, since a TLS session's state cannot outlive it. After `socket`: destroyed first.
  // Beast's ssl_stream: a request's header and body buffers go out as one TLS record.
  std::optional<beast::ssl_stream<tcp::socket&>> tls;
  Clock::time_point deadline = Clock::time_point::max();  // of the connect or exchange under way
  bool timed_out = false;                                 // the sweeper cancelled it
  beast::flat_buffer buffer;
  std::size_t endpoint;
  bool open = false;
  std::uint64_t uses = 0;  // requests answered on the current TCP connection
};

/// Shared by the shards: the source is called by one thread at a time, as its contract says, and
/// so is on_answer.
struct Shared {
  explicit Shared(RequestSource s) : source(std::move(s)) {}
  std::mutex source_mutex;
  RequestSource source;
  std::mutex answer_mutex;
  std::atomic<std::uint64_t> next_seq{0};  // closed loop: the next request to send, over all shards
};

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

// RFC 9110 token characters: what a header name may be made of.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  return std::all_of(s.begin(), s.end(), [&](char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
           kSpecials.find(ch) != std::string_view::npos;
  });
}

// Why a header cannot be sent as it is; empty when it can.
std::string header_problem(std::string_view name, std::string_view value) {
  if (!is_token(name)) return "'" + std::string(name) + "' is not a header name (letters, digits, -, _ ...)";
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    return "the value of " + std::string(name) + " has a line break or NUL in it";
  }
  return {};
}

// What goes on every request to one endpoint, before the RequestSpec's own headers: the engine's
// Host, User-Agent and Content-Type (each unless the user gave it), then the user's headers.
std::vector<Header> base_headers(const Endpoint& e, const std::vector<Header>& user) {
  auto given = [&](std::string_view name) {
    return std::any_of(user.begin(), user.end(), [&](const Header& h) { return beast::iequals(h.first, name); });
  };
  std::vector<Header> out;
  const bool v6 = e.host.find(':') != std::string::npos;  // an IPv6 literal goes in brackets
  if (!given("Host")) out.emplace_back("Host", (v6 ? "[" + e.host + "]" : e.host) + ":" + std::to_string(e.port));
  if (!given("User-Agent")) out.emplace_back("User-Agent", "pix-sim/" PIX_VERSION);
  if (!given("Content-Type")) out.emplace_back("Content-Type", "application/json");
  out.insert(out.end(), user.begin(), user.end());
  return out;
}

std::string extract_event_id(std::string_view body) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return {};
  const auto* id = v.get_object().if_contains("eventId");
  if (id == nullptr || !id->is_string()) return {};
  return std::string(id->get_string());
}

std::size_t share(std::size_t total, std::size_t index, std::size_t parts) {
  return total / parts + (index < total % parts ? 1 : 0);
}

std::chrono::nanoseconds process_cpu_time() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return std::chrono::nanoseconds(0);
  auto to_ns = [](const timeval& tv) {
    return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
  };
  return to_ns(usage.ru_utime) + to_ns(usage.ru_stime);
}

std::string short_latency(std::chrono::nanoseconds d) {
  const double us = static_cast<double>(d.count()) / 1e3;
  char buf[32];
  if (us < 1000) {
    std::snprintf(buf, sizeof buf, "%.0fus", us);
  } else if (us < 1e6) {
    std::snprintf(buf, sizeof buf, "%.1fms", us / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.2fs", us / 1e6);
  }
  return buf;
}

/// One thread's part of a run: its own io_context, connections, share of the rate (every
/// `shards`-th ticket) or of the closed-loop workers, and its own Stats. Shards share nothing on
/// the hot path but the source, so a second thread adds capacity without locks on every request.
class Shard {
 public:
  /// `tls` is needed when an endpoint is https; it is only read here (OpenSSL allows one
  /// SSL_CTX to make the connections of several threads).
  Shard(const LoadOptions& options, const std::vector<tcp::endpoint>& addresses,
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

  /// Opens the first connections before the clock starts, so no request pays for them.
  void warm_up() {
    if (options_.mode == LoadOptions::Mode::kOpenLoop) {
      const auto initial = share(static_cast<std::size_t>(options_.concurrency), index_, shards_);
      for (std::size_t e = 0; e < pools_.size(); ++e) {
        for (std::size_t i = 0; i < std::min(initial, pools_[e].cap); ++i) {
          Connection* c = add_connection(e);
          pools_[e].idle.push_back(c);
          spawn(connect(*c));
        }
      }
    } else {
      workers_.resize(share(static_cast<std::size_t>(options_.concurrency), index_, shards_));
      for (auto& worker : workers_) {
        for (std::size_t e = 0; e < addresses_.size(); ++e) {
          worker.push_back(std::make_unique<Connection>(io_, e));
          spawn(connect(*worker.back()));
        }
      }
    }
    io_.run();
    io_.restart();
  }

  /// Sends until the end of the run; returns when every request has its answer or failure.
  void run(Clock::time_point start) {
    deadline_ = options_.duration.count() > 0 ? start + options_.duration : Clock::time_point::max();
    last_due_ = deadline_ - std::chrono::nanoseconds(1);
    if (options_.mode == LoadOptions::Mode::kOpenLoop) {
      queue_.emplace(RateSchedule(options_.rate, start), options_.count, index_, shards_);
      spawn(pace());
    } else {
      for (std::size_t w = 0; w < workers_.size(); ++w) spawn(work(w));
    }
    io_.run();
    end_ = Clock::now();
  }

  /// Thread-safe: stop issuing requests; those in flight finish.
  void request_stop() {
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

  template <typename F>
  void with_stats(F&& f) {
    std::lock_guard lock(stats_mutex_);
    f(stats_);
  }

  Clock::time_point end() const { return end_; }

 private:
  struct Pending {
    Ticket ticket;
    RequestSpec spec;
  };
  struct Pool {
    Pool() = default;
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;
    Pool(Pool&&) = default;
    Pool& operator=(Pool&&) = default;
    std::vector<std::unique_ptr<Connection>> all;
    std::vector<Connection*> idle;
    std::deque<Pending> waiting;
    std::size_t connecting = 0;
    std::size_t cap = 1;
  };

  template <typename Awaitable>
  void spawn(Awaitable a) {
    asio::co_spawn(io_, std::move(a), [](std::exception_ptr e, auto&&...) {
      if (e) std::rethrow_exception(e);  // out of io_.run(), to run_load's caller
    });
  }

  Connection* add_connection(std::size_t endpoint) {
    auto& pool = pools_[endpoint];
    pool.all.push_back(std::make_unique<Connection>(io_, endpoint));
    return pool.all.back().get();
  }

  RequestSpec next_spec(std::uint64_t seq) {
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

  Request make_request(RequestSpec& spec) const {
    Request req{bhttp::verb::post, spec.target.empty() ? "/" : spec.target, 11};
    for (const auto& [name, value] : headers_[spec.endpoint]) req.insert(name, value);
    for (const auto& [name, value] : spec.headers) req.set(name, value);
    req.body() = std::move(spec.body);
    req.keep_alive(true);
    req.prepare_payload();
    return req;
  }

  /// Connects, and for https shakes hands, within one deadline (the request's timeout).
  asio::awaitable<std::optional<TransportError>> connect(Connection& c) {
    arm(c);
    auto [ec] = co_await c.socket.async_connect(addresses_[c.endpoint], kTuple);
    std::optional<TransportError> failure;
    if (ec) {
      failure = classify(ec, true, c.timed_out);
    } else {
      beast::error_code nodelay_ec;  // without TCP_NODELAY requests still go, only later: not worth failing
      c.socket.set_option(tcp::no_delay(true), nodelay_ec);
      if (options_.endpoints[c.endpoint].tls) failure = co_await handshake(c);
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

  asio::awaitable<std::optional<TransportError>> handshake(Connection& c) {
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

  void close(Connection& c) {
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

  /// One request on one connection: connects first if needed, and sends once more on a fresh
  /// connection when the server had closed a kept-alive one.
  asio::awaitable<Outcome> exchange(Connection& c, Request& req) {
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

  // ---- timeouts: one sweeper per shard, running only while something is armed ----

  void arm(Connection& c) {
    if (c.deadline == Clock::time_point::max()) ++armed_;  // re-arming moves the deadline only
    c.deadline = Clock::now() + options_.timeout;
    c.timed_out = false;
    if (!sweeping_) {
      sweeping_ = true;
      spawn(sweep());
    }
  }

  void disarm(Connection& c) {
    if (c.deadline == Clock::time_point::max()) return;
    c.deadline = Clock::time_point::max();
    --armed_;
  }

  asio::awaitable<void> sweep() {
    // A tenth of the timeout (1 ms to 100 ms): a timeout fires at most 10% late.
    const auto period = std::clamp<Clock::duration>(options_.timeout / 10, std::chrono::milliseconds(1),
                                                    std::chrono::milliseconds(100));
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

  void note_sent(std::optional<std::chrono::nanoseconds> send_delay) {
    std::lock_guard lock(stats_mutex_);
    ++stats_.sent;
    if (send_delay) stats_.send_delay.record(*send_delay);
  }

  void record(std::uint64_t seq, std::string& label, const Outcome& o, std::chrono::nanoseconds latency) {
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

  // ---- open loop ----

  asio::awaitable<void> pace() {
    while (issuing_) {
      const auto now = Clock::now();
      if (now >= deadline_) {
        stop_issuing(last_due_);
        break;
      }
      admit(now);
      dispatch();
      if (queue_->exhausted()) break;  // with a count: what waits goes out as connections come free
      // With the waiting line full, completions admit more; they wake this loop when there is room.
      pacer_parked_ = waiting_total_ >= kMaxWaiting;
      pace_timer_.expires_at(pacer_parked_ ? deadline_ : std::min(queue_->next_due(), deadline_));
      co_await pace_timer_.async_wait(kTuple);
      pacer_parked_ = false;
    }
  }

  // Turns the tickets due by `now` into requests waiting for a connection of their endpoint.
  void admit(Clock::time_point now) {
    if (!issuing_) return;
    now = std::min(now, last_due_);
    while (waiting_total_ < kMaxWaiting) {
      auto ticket = queue_->take(now);
      if (!ticket) break;
      RequestSpec spec = next_spec(ticket->seq);
      auto& pool = pools_[spec.endpoint];
      pool.waiting.push_back(Pending{*ticket, std::move(spec)});
      ++waiting_total_;
    }
  }

  void dispatch() {
    for (std::size_t e = 0; e < pools_.size(); ++e) {
      Pool& pool = pools_[e];
      while (!pool.waiting.empty() && !pool.idle.empty()) {
        Connection* c = pool.idle.back();  // the most recently used: likely still open
        pool.idle.pop_back();
        Pending job = std::move(pool.waiting.front());
        pool.waiting.pop_front();
        --waiting_total_;
        spawn(send_open_loop(c, std::move(job)));
      }
      // Requests wait: open more connections (up to the cap) rather than letting the rate sag; the
      // wait so far is charged to those requests anyway.
      while (pool.connecting < std::min(pool.waiting.size(), kMaxConcurrentConnects) && pool.all.size() < pool.cap) {
        ++pool.connecting;
        spawn(grow(add_connection(e)));
      }
    }
  }

  asio::awaitable<void> grow(Connection* c) {
    // A failed connect is nobody's request yet: the connection joins the idle ones closed, and the
    // request that takes it tries again (and is charged with the failure).
    co_await connect(*c);
    Pool& pool = pools_[c->endpoint];
    --pool.connecting;
    pool.idle.push_back(c);
    dispatch();
  }

  asio::awaitable<void> send_open_loop(Connection* c, Pending job) {
    note_sent(Clock::now() - job.ticket.intended);
    Request req = make_request(job.spec);
    const Outcome o = co_await exchange(*c, req);
    const auto done = Clock::now();
    record(job.ticket.seq, job.spec.label, o, open_loop_latency(job.ticket, done));
    pools_[c->endpoint].idle.push_back(c);
    // With a count the pacer may be gone already; the end of the run still ends the waiting.
    if (issuing_ && done >= deadline_) stop_issuing(last_due_);
    admit(done);
    dispatch();
    if (pacer_parked_ && waiting_total_ < kMaxWaiting) pace_timer_.cancel();
  }

  // The run is over for new requests: what waits, or is due and not yet taken, is counted unsent.
  void stop_issuing(Clock::time_point at) {
    if (!issuing_) return;
    issuing_ = false;
    std::uint64_t dropped = 0;
    for (auto& pool : pools_) {
      dropped += pool.waiting.size();
      pool.waiting.clear();
    }
    waiting_total_ = 0;
    if (queue_) dropped += queue_->due_untaken(std::min(at, last_due_));
    std::lock_guard lock(stats_mutex_);
    stats_.unsent += dropped;
  }

  // ---- closed loop ----

  asio::awaitable<void> work(std::size_t w) {
    asio::steady_timer backoff(io_);
    const std::uint64_t count = options_.count;
    for (;;) {
      if (stopping_ || Clock::now() >= deadline_) break;
      const std::uint64_t seq = shared_.next_seq.fetch_add(1);
      if (count != 0 && seq >= count) break;
      RequestSpec spec = next_spec(seq);
      Connection& c = *workers_[w][spec.endpoint];
      Request req = make_request(spec);
      const auto sent_at = Clock::now();
      note_sent(std::nullopt);
      const Outcome o = co_await exchange(c, req);
      record(seq, spec.label, o, Clock::now() - sent_at);
      // A refused connect or a failed handshake fails again at once: do not spin on it.
      if (o.error == TransportError::kConnectRefused || o.error == TransportError::kConnectFailed ||
          o.error == TransportError::kTls) {
        backoff.expires_after(kConnectRetryDelay);
        co_await backoff.async_wait(kTuple);
      }
    }
  }

  // io_ first: the connections' sockets must go before it.
  asio::io_context io_;
  const LoadOptions& options_;
  const std::vector<tcp::endpoint>& addresses_;
  const std::vector<std::vector<Header>>& headers_;  // per endpoint: see base_headers
  ssl::context* tls_;
  Shared& shared_;
  std::size_t index_;
  std::size_t shards_;

  asio::steady_timer pace_timer_;
  std::size_t armed_ = 0;  // connections with a deadline
  bool sweeping_ = false;
  std::optional<OpenLoopQueue> queue_;
  std::vector<Pool> pools_;
  std::size_t waiting_total_ = 0;
  bool issuing_ = true;
  bool stopping_ = false;
  bool pacer_parked_ = false;
  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::time_point last_due_ = Clock::time_point::max();
  Clock::time_point end_;

  std::vector<std::vector<std::unique_ptr<Connection>>> workers_;  // closed loop: [worker][endpoint]

  std::mutex stats_mutex_;
  Stats stats_;
};

void validate(const LoadOptions& o) {
  auto fail = [](const std::string& what) { throw std::invalid_argument(what); };
  if (o.endpoints.empty()) fail("no endpoint to send to");
  if (o.mode == LoadOptions::Mode::kOpenLoop && (!std::isfinite(o.rate) || o.rate <= 0)) {
    fail("open loop needs a rate > 0");
  }
  if (o.concurrency < 1) fail("concurrency must be at least 1");
  if (o.max_connections < 1) fail("max_connections must be at least 1");
  if (o.timeout.count() <= 0) fail("the request timeout must be positive");
  if (o.duration.count() < 0) fail("the duration cannot be negative");
  if (o.io_threads < 1 || o.io_threads > 64) fail("io_threads must be between 1 and 64");
  for (const auto& [name, value] : o.headers) {
    if (auto problem = header_problem(name, value); !problem.empty()) fail("header: " + problem);
  }
}

// One client context for the run's https endpoints: TLS 1.2 or later, the server's certificate
// verified against `ca_file` (or the system's CAs). Nothing when no endpoint is https.
std::unique_ptr<ssl::context> make_tls_context(const LoadOptions& o) {
  const bool any = std::any_of(o.endpoints.begin(), o.endpoints.end(), [](const Endpoint& e) { return e.tls; });
  if (!any) return nullptr;
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_verify_mode(ssl::verify_peer);
  beast::error_code ec;
  if (o.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) throw std::invalid_argument("cannot load the system's CA certificates: " + ec.message());
  } else {
    ctx->load_verify_file(o.ca_file, ec);
    if (ec) throw std::invalid_argument("cannot load CA certificates from " + o.ca_file + ": " + ec.message());
  }
  return ctx;
}

std::vector<tcp::endpoint> resolve(const std::vector<Endpoint>& endpoints) {
  asio::io_context io;
  tcp::resolver resolver(io);
  std::vector<tcp::endpoint> out;
  for (const auto& e : endpoints) {
    beast::error_code ec;
    const auto results = resolver.resolve(e.host, std::to_string(e.port), ec);
    if (ec || results.empty()) {
      throw std::runtime_error("cannot resolve " + e.host + ": " + (ec ? ec.message() : "no address"));
    }
    // Prefer IPv4: "localhost" often resolves to ::1 first while the services listen on 127.0.0.1.
    auto chosen = results.begin()->endpoint();
    for (const auto& r : results) {
      if (r.endpoint().address().is_v4()) {
        chosen = r.endpoint();
        break;
      }
    }
    out.push_back(chosen);
  }
  return out;
}

}  // namespace detail

std::string_view to_string(TransportError kind) {
  switch (kind) {
    case TransportError::kConnectRefused:
      return "connect_refused";
    case TransportError::kConnectFailed:
      return "connect_failed";
    case TransportError::kTimeout:
      return "timeout";
    case TransportError::kReset:
      return "reset";
    case TransportError::kClosed:
      return "closed";
    case TransportError::kProtocol:
      return "protocol";
    case TransportError::kTls:
      return "tls";
    case TransportError::kOther:
      return "other";
  }
  return "other";
}

std::optional<HttpUrl> parse_http_url(std::string_view url, std::string& error) {
  auto parsed = http::parse_url(url, error);
  if (!parsed) return std::nullopt;
  HttpUrl out;
  out.endpoint.host = std::move(parsed->host);
  out.endpoint.port = parsed->port;
  out.endpoint.tls = parsed->tls;
  out.target = std::move(parsed->target);
  return out;
}

std::optional<Header> parse_header_line(std::string_view line, std::string& error) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) {
    error = "a header is 'Name: value', and '" + std::string(line) + "' has no ':'";
    return std::nullopt;
  }
  const std::string_view name = line.substr(0, colon);
  const std::string_view value = util::trim_blanks(line.substr(colon + 1));
  if (auto problem = detail::header_problem(name, value); !problem.empty()) {
    error = problem;
    return std::nullopt;
  }
  return Header{std::string(name), std::string(value)};
}

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || !std::isfinite(value) || value < 0) return std::nullopt;
  const std::string_view unit = text.substr(static_cast<std::size_t>(end - text.data()));
  double ns_per_unit = 0;
  if (unit.empty() || unit == "s") {
    ns_per_unit = 1e9;
  } else if (unit == "ms") {
    ns_per_unit = 1e6;
  } else if (unit == "us" || unit == "\xC2\xB5s") {
    ns_per_unit = 1e3;
  } else if (unit == "ns") {
    ns_per_unit = 1;
  } else if (unit == "m" || unit == "min") {
    ns_per_unit = 60e9;
  } else if (unit == "h") {
    ns_per_unit = 3600e9;
  } else {
    return std::nullopt;
  }
  const double ns = value * ns_per_unit;
  if (ns > 9e18) return std::nullopt;
  return std::chrono::nanoseconds(std::llround(ns));
}

std::uint64_t LoadResult::ok() const noexcept {
  std::uint64_t n = 0;
  for (const auto& [status, count] : status_counts) {
    if (status >= 200 && status < 300) n += count;
  }
  return n;
}

std::uint64_t LoadResult::server_errors() const noexcept {
  std::uint64_t n = 0;
  for (const auto& [status, count] : status_counts) {
    if (status >= 500 && status < 600) n += count;
  }
  return n;
}

std::uint64_t LoadResult::transport_errors() const noexcept {
  std::uint64_t n = 0;
  for (const auto count : errors) n += count;
  return n;
}

double LoadResult::throughput() const noexcept {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  return seconds > 0 ? static_cast<double>(completed) / seconds : 0.0;
}

LoadResult run_load(const LoadOptions& options, RequestSource source) {
  using detail::Clock;
  detail::validate(options);
  const auto tls = detail::make_tls_context(options);
  const auto addresses = detail::resolve(options.endpoints);
  std::vector<std::vector<Header>> headers;
  for (const auto& e : options.endpoints) headers.push_back(detail::base_headers(e, options.headers));

  detail::Shared shared(std::move(source));
  const auto shard_count = static_cast<std::size_t>(options.io_threads);
  std::vector<std::unique_ptr<detail::Shard>> shards;
  for (std::size_t i = 0; i < shard_count; ++i) {
    shards.push_back(std::make_unique<detail::Shard>(options, addresses, headers, tls.get(), shared, i, shard_count));
  }
  for (auto& s : shards) s->warm_up();

  const auto cpu_before = detail::process_cpu_time();
  const auto start = Clock::now();
  std::mutex done_mutex;
  std::condition_variable done_cv;
  std::size_t finished = 0;
  std::vector<std::exception_ptr> failures(shard_count);
  std::atomic<bool> any_failure{false};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < shard_count; ++i) {
    threads.emplace_back([&, i] {
      try {
        shards[i]->run(start);
      } catch (...) {
        failures[i] = std::current_exception();  // rethrown below, once every thread has ended
        any_failure = true;
      }
      {
        std::lock_guard lock(done_mutex);
        ++finished;
      }
      done_cv.notify_all();
    });
  }

  const bool tty = ::isatty(STDERR_FILENO) == 1;
  bool stop_sent = false;
  bool stopped_early = false;
  auto next_progress = start + std::chrono::seconds(1);
  std::uint64_t last_completed = 0;
  auto last_progress = start;
  bool printed_progress = false;
  auto print_progress = [&](Clock::time_point now) {
    std::uint64_t sent = 0, ok = 0, failed = 0, completed = 0;
    LatencyHistogram all;
    for (auto& s : shards) {
      s->with_stats([&](const detail::Stats& st) {
        sent += st.sent;
        ok += st.ok;
        failed += st.failed;
        completed += st.completed;
        all.merge(st.latency_all);
      });
    }
    const double window = std::chrono::duration<double>(now - last_progress).count();
    const double rate = window > 0 ? static_cast<double>(completed - last_completed) / window : 0.0;
    last_completed = completed;
    last_progress = now;
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - start).count();
    std::fprintf(stderr, "%s[%4llds] sent %llu  ok %llu  err %llu  rate %.0f/s  p99 %s%s", tty ? "\r" : "",
                 static_cast<long long>(secs), static_cast<unsigned long long>(sent),
                 static_cast<unsigned long long>(ok), static_cast<unsigned long long>(failed), rate,
                 detail::short_latency(all.value_at_percentile(99)).c_str(), tty ? "\033[K" : "\n");
    std::fflush(stderr);
    printed_progress = true;
  };

  for (;;) {
    {
      std::unique_lock lock(done_mutex);
      const auto wake = std::min(Clock::now() + detail::kMonitorTick, next_progress);
      if (done_cv.wait_until(lock, wake, [&] { return finished == shard_count; })) break;
    }
    const bool failed = any_failure.load();
    const bool asked = options.stop != nullptr && options.stop->load();
    if (!stop_sent && (asked || failed)) {
      stop_sent = true;
      stopped_early = asked;
      for (auto& s : shards) s->request_stop();
    }
    const auto now = Clock::now();
    if (now >= next_progress) {
      if (options.progress) print_progress(now);
      // Advanced with or without the line: it is also the monitor's wake-up time.
      next_progress = std::max(next_progress + std::chrono::seconds(1), now);
    }
  }
  for (auto& t : threads) t.join();
  if (options.progress && printed_progress && tty) std::fputc('\n', stderr);
  for (const auto& f : failures) {
    if (f) std::rethrow_exception(f);
  }

  LoadResult result;
  result.mode = options.mode;
  result.target_rate = options.mode == LoadOptions::Mode::kOpenLoop ? options.rate : 0.0;
  result.concurrency = options.concurrency;
  result.stopped_early = stopped_early;
  result.cpu_time = detail::process_cpu_time() - cpu_before;
  auto end = start;
  for (auto& s : shards) {
    end = std::max(end, s->end());
    s->with_stats([&](detail::Stats& st) {
      result.sent += st.sent;
      result.completed += st.completed;
      result.unsent += st.unsent;
      result.connections_opened += st.connections_opened;
      result.peak_connections += st.peak_connections;
      result.reconnects += st.reconnects;
      for (const auto& [status, n] : st.status_counts) result.status_counts[status] += n;
      for (std::size_t k = 0; k < kTransportErrorKinds; ++k) result.errors[k] += st.errors[k];
      result.latency_ok.merge(st.latency_ok);
      result.latency_all.merge(st.latency_all);
      result.send_delay.merge(st.send_delay);
      std::move(st.answers.begin(), st.answers.end(), std::back_inserter(result.answers));
    });
  }
  result.elapsed = end - start;
  if (shard_count > 1) {
    std::stable_sort(result.answers.begin(), result.answers.end(),
                     [](const Answer& a, const Answer& b) { return a.at < b.at; });
  }
  return result;
}

}  // namespace pix::sim
