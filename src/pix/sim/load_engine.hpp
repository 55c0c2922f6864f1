#pragma once
/// @file The load engine: sends what a RequestSource produces to HTTP/1.1 endpoints (http or
/// https) over keep-alive connections, open loop (a fixed rate, latency from each request's intended send
/// time) or closed loop (a fixed number of requests in flight), and measures what came back.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pix/sim/histogram.hpp"
#include "pix/sim/parsing.hpp"  // Endpoint and Header; the URL, header and duration parsers
#include "pix/sim/request_source.hpp"

namespace pix::sim {

/// @brief Why a request got no HTTP answer.
enum class TransportError : std::uint8_t {
  kConnectRefused,  ///< nothing listens on the port
  kConnectFailed,   ///< the connection could not be made for another reason (unreachable...)
  kTimeout,         ///< no complete answer within the request timeout (connect included)
  kReset,           ///< the server reset the connection (RST, broken pipe)
  kClosed,          ///< the server closed the connection without (a complete) answer
  kProtocol,        ///< the answer was not valid HTTP
  kTls,             ///< TLS failed: the handshake (certificate not trusted, wrong host, no TLS there...) or later
  kOther,
};
inline constexpr std::size_t kTransportErrorKinds = 8;

/// Stable name of an error kind ("connect_refused", "timeout"...), used in reports and JSON.
std::string_view to_string(TransportError kind);

/// @brief What came back for one request (kept with `keep_answers`, or passed to `on_answer`).
struct Answer {
  std::uint64_t seq = 0;
  std::chrono::system_clock::time_point at;  ///< when the answer (or the failure) came
  int status = 0;                            ///< HTTP status; 0 when `error` is set
  std::optional<TransportError> error;
  std::string event_id;  ///< the JSON body's `eventId` for a 2xx that has one (only with keep_answers)
  std::string label;     ///< the RequestSpec's label
  std::chrono::nanoseconds latency{0};
};

/// @brief How to run a load.
struct LoadOptions {
  /// Open loop sends at `rate` whatever the server does; closed loop keeps `concurrency` requests
  /// in flight, each sent as soon as the previous one on its connection is answered.
  enum class Mode : std::uint8_t { kOpenLoop, kClosedLoop };

  std::vector<Endpoint> endpoints;  ///< RequestSpec::endpoint indexes this
  /// https endpoints: CA certificates (PEM) the servers' certificates must chain to; empty: the
  /// system's default CAs.
  std::string ca_file;
  /// Sent with every request, after the engine's own (a Host, User-Agent or Content-Type here
  /// replaces the engine's) and before the RequestSpec's (which win over these).
  std::vector<Header> headers;
  Mode mode = Mode::kClosedLoop;
  double rate = 0;  ///< open loop: requests per second, over all endpoints
  /// Closed loop: requests in flight. Open loop: keep-alive connections opened per endpoint before
  /// the clock starts; more are opened (up to `max_connections`) while requests wait for one.
  int concurrency = 64;
  int max_connections = 1024;                                    ///< open loop: most connections per endpoint
  std::chrono::nanoseconds duration = std::chrono::seconds(10);  ///< 0: no time limit
  std::uint64_t count = 0;                                       ///< requests to send; 0: until `duration`
  std::chrono::milliseconds timeout = std::chrono::seconds(10);  ///< per request, connect included
  bool progress = false;                                         ///< a live line on stderr every second
  bool keep_answers = false;                                     ///< fill LoadResult::answers (with each 2xx's eventId)
  int io_threads = 1;  ///< each thread runs its own share of the connections and of the rate
  /// Called for every answer and failure, on an engine thread (never two at once), with the body.
  std::function<void(const Answer&, std::string_view body)> on_answer;
  /// Set (from anywhere, a signal handler included) to stop sending; in-flight requests finish.
  const std::atomic<bool>* stop = nullptr;
};

/// @brief What a run sent and got back.
struct LoadResult {
  LoadOptions::Mode mode = LoadOptions::Mode::kClosedLoop;
  double target_rate = 0;  ///< open loop
  int concurrency = 0;

  std::uint64_t sent = 0;       ///< requests tried (a failed connect counts: it was that request's)
  std::uint64_t completed = 0;  ///< requests that got an HTTP answer, whatever the status
  /// Open loop: requests due before the end that were never sent because no connection came free
  /// in time; a sign that the server (or the generator) could not keep up with the rate.
  std::uint64_t unsent = 0;
  std::map<int, std::uint64_t> status_counts;
  std::array<std::uint64_t, kTransportErrorKinds> errors{};  ///< by TransportError

  std::chrono::nanoseconds elapsed{0};   ///< from the first intended send to the last answer
  std::chrono::nanoseconds cpu_time{0};  ///< user + system CPU of this process during the run
  std::uint64_t connections_opened = 0;
  std::uint64_t peak_connections = 0;  ///< most connections open at once
  /// Requests sent again, once, on a fresh connection because the server had closed the kept-alive
  /// one before reading them (idle timeout); not errors.
  std::uint64_t reconnects = 0;
  bool stopped_early = false;  ///< `stop` was set

  /// Latency of 2xx answers; of every HTTP answer; and (open loop) how late requests left
  /// compared with their intended time: the time they waited for a free connection.
  LatencyHistogram latency_ok;
  LatencyHistogram latency_all;
  LatencyHistogram send_delay;

  std::vector<Answer> answers;  ///< with keep_answers, in completion order

  std::uint64_t ok() const noexcept;                ///< 2xx answers
  std::uint64_t server_errors() const noexcept;     ///< 5xx answers
  std::uint64_t transport_errors() const noexcept;  ///< requests without an HTTP answer
  double throughput() const noexcept;               ///< answers per second of `elapsed`
};

/// Runs a load until `count` requests, `duration` or `stop`, whichever comes first, then waits for
/// the requests in flight (each bounded by `timeout`). Blocks the calling thread, which prints the
/// progress line. Throws std::invalid_argument for inconsistent options (a CA file that does not
/// load included) and std::runtime_error when an endpoint's host does not resolve; everything
/// that happens on the wire (TLS handshakes included) is counted, not thrown.
LoadResult run_load(const LoadOptions& options, RequestSource source);

}  // namespace pix::sim
