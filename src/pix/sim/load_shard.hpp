#pragma once
/// @file One thread's part of a load run (the Shard), and what its connections are made of.
/// Internal to sim. The Shard's members are defined in three files, one per concern:
/// load_shard.cpp (connections, one exchange, timeouts, counting), load_open_loop.cpp (the
/// pacer and the connection pools) and load_closed_loop.cpp (the workers).

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pix/sim/load_engine.hpp"
#include "pix/sim/load_stats.hpp"
#include "pix/sim/rate.hpp"

namespace pix::sim::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Request = bhttp::request<bhttp::string_body>;

inline constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

/// @brief What came back on the wire for one request.
struct Outcome {
  int status = 0;
  std::optional<TransportError> error;
  std::string body;
};

/// @brief A socket, with TLS over it for an https endpoint: the shard's sweeper enforces the request
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

/// @brief Shared by the shards: the source is called by one thread at a time, as its contract says,
/// and so is on_answer.
struct Shared {
  explicit Shared(RequestSource s) : source(std::move(s)) {}
  std::mutex source_mutex;
  RequestSource source;
  std::mutex answer_mutex;
  std::atomic<std::uint64_t> next_seq{0};  // closed loop: the next request to send, over all shards
};

/// Shard `index`'s part of `total` split in `parts`: the first `total % parts` get one more.
inline std::size_t share(std::size_t total, std::size_t index, std::size_t parts) {
  return total / parts + (index < total % parts ? 1 : 0);
}

/// @brief One thread's part of a run: its own io_context, connections, share of the rate (every
/// `shards`-th ticket) or of the closed-loop workers, and its own Stats. Shards share nothing on
/// the hot path but the source, so a second thread adds capacity without locks on every request.
class Shard {
 public:
  /// `tls` is needed when an endpoint is https; it is only read here (OpenSSL allows one
  /// SSL_CTX to make the connections of several threads). `headers`: per endpoint, what goes on
  /// every request before the RequestSpec's own.
  Shard(const LoadOptions& options, const std::vector<tcp::endpoint>& addresses,
        const std::vector<std::vector<Header>>& headers, ssl::context* tls, Shared& shared, std::size_t index,
        std::size_t shards);

  /// Opens the first connections before the clock starts, so no request pays for them.
  void warm_up();

  /// Sends until the end of the run; returns when every request has its answer or failure.
  void run(Clock::time_point start);

  /// Thread-safe: stop issuing requests; those in flight finish.
  void request_stop();

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
    asio::co_spawn(io_, std::move(a), [](const std::exception_ptr& e, auto&&...) {
      if (e) std::rethrow_exception(e);  // out of io_.run(), to run_load's caller
    });
  }

  // ---- load_shard.cpp: connections, one exchange, timeouts, counting ----
  RequestSpec next_spec(std::uint64_t seq);
  Request make_request(RequestSpec& spec) const;
  /// Connects, and for https shakes hands, within one deadline (the request's timeout).
  asio::awaitable<std::optional<TransportError>> connect(Connection& c);
  asio::awaitable<std::optional<TransportError>> handshake(Connection& c);
  void close(Connection& c);
  /// One request on one connection: connects first if needed, and sends once more on a fresh
  /// connection when the server had closed a kept-alive one.
  asio::awaitable<Outcome> exchange(Connection& c, Request& req);
  // Timeouts: one sweeper per shard, running only while something is armed.
  void arm(Connection& c);
  void disarm(Connection& c);
  asio::awaitable<void> sweep();
  void note_sent(std::optional<std::chrono::nanoseconds> send_delay);
  void record(std::uint64_t seq, std::string& label, const Outcome& o, std::chrono::nanoseconds latency);

  // ---- load_open_loop.cpp ----
  void warm_up_open_loop();
  void start_open_loop(Clock::time_point start);
  Connection* add_connection(std::size_t endpoint);
  asio::awaitable<void> pace();
  /// Turns the tickets due by `now` into requests waiting for a connection of their endpoint.
  void admit(Clock::time_point now);
  void dispatch();
  asio::awaitable<void> grow(Connection* c);
  asio::awaitable<void> send_open_loop(Connection* c, Pending job);
  /// The run is over for new requests: what waits, or is due and not yet taken, is counted unsent.
  void stop_issuing(Clock::time_point at);

  // ---- load_closed_loop.cpp ----
  void warm_up_closed_loop();
  void start_closed_loop();
  asio::awaitable<void> work(std::size_t w);

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

}  // namespace pix::sim::detail
