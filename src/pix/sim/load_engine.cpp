// run_load: checks the options, resolves the endpoints, runs one Shard per I/O thread
// (load_shard.hpp) while this thread watches for the stop flag and prints the progress line, then
// adds the shards' counts into the result.
#include "pix/sim/load_engine.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "pix/sim/header_check.hpp"
#include "pix/sim/load_progress.hpp"
#include "pix/sim/load_shard.hpp"
#include "pix/sim/load_stats.hpp"

namespace pix::sim {

namespace detail {
namespace {

// How often the monitor looks at the stop flag and at the shards' threads.
constexpr auto kMonitorTick = std::chrono::milliseconds(50);

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

std::chrono::nanoseconds process_cpu_time() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return std::chrono::nanoseconds(0);
  auto to_ns = [](const timeval& tv) {
    return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
  };
  return to_ns(usage.ru_utime) + to_ns(usage.ru_stime);
}

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

}  // namespace
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

  detail::ProgressLine progress(stderr, ::isatty(STDERR_FILENO) == 1, start);
  bool stop_sent = false;
  bool stopped_early = false;
  auto next_progress = start + std::chrono::seconds(1);
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
      if (options.progress) {
        detail::ProgressSnapshot totals;
        for (auto& s : shards) s->with_stats([&](const detail::Stats& st) { detail::add_to(totals, st); });
        progress.print(now, totals);
      }
      // Advanced with or without the line: it is also the monitor's wake-up time.
      next_progress = std::max(next_progress + std::chrono::seconds(1), now);
    }
  }
  for (auto& t : threads) t.join();
  if (options.progress) progress.finish();
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
    s->with_stats([&](detail::Stats& st) { detail::add_to(result, st); });
  }
  result.elapsed = end - start;
  if (shard_count > 1) {
    std::stable_sort(result.answers.begin(), result.answers.end(),
                     [](const Answer& a, const Answer& b) { return a.at < b.at; });
  }
  return result;
}

}  // namespace pix::sim
