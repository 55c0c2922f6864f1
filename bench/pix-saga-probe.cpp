// pix-saga-probe: the saga's end-to-end latency. Binds its own queue to the notifications (so it
// takes nothing from the auditor) and, for each, measures arrival time minus the payment's
// `requestedAt` (the time the gateway accepted it).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "pix/amqp/client_flags.hpp"
#include "pix/amqp/consumer.hpp"
#include "pix/broker/cloud_event.hpp"
#include "pix/sim/histogram.hpp"
#include "pix/sim/load_engine.hpp"
#include "pix/sim/load_report.hpp"
#include "pix/telemetry/logging.hpp"
#include "pix/util/cli.hpp"

namespace {

/// Milliseconds since the epoch of "2026-11-28T17:16:04.123Z"; -1 if it is not that shape.
std::int64_t parse_rfc3339_ms(const std::string& s) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &ms) != 7) {
    return -1;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000 + ms;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pix-saga-probe: end-to-end latency of the saga, requested -> notification.sent"};
  std::string exchange = "pix", duration = "60s";
  pix::amqp::ClientFlags rabbit_flags;
  double idle_exit_s = 10;
  bool as_json = false;
  pix::amqp::add_client_flags(app, rabbit_flags);
  app.add_option("--exchange", exchange, "exchange the notifier publishes to")->capture_default_str();
  app.add_option("--duration", duration, "listen at most this long")->capture_default_str();
  app.add_option("--idle-exit-s", idle_exit_s, "stop once nothing arrived for this long (after the first)")
      ->capture_default_str();
  app.add_flag("--json", as_json, "print JSON");
  CLI11_PARSE(app, argc, argv);
  pix::telemetry::setup_logging("pix-saga-probe", "warn", "text");

  auto url = pix::amqp::resolve_url(rabbit_flags);
  if (!url) {
    std::fprintf(stderr, "pix-saga-probe: %s\n", url.error.c_str());
    return 2;
  }
  pix::amqp::ConsumerOptions o;
  o.url = *url.url;
  o.exchange = exchange;
  o.bindings = {"pix.notification.sent"};
  o.prefetch = 1000;
  o.connection_name = "pix-saga-probe";
  pix::amqp::AmqpConsumer consumer(o);

  using Clock = std::chrono::steady_clock;
  const auto listen = pix::sim::parse_duration(duration);
  if (!listen) {
    std::fprintf(stderr, "--duration: not a duration: %s\n", duration.c_str());
    return 2;
  }
  const auto end = Clock::now() + *listen;
  auto last = Clock::now();
  pix::sim::LatencyHistogram latencies;
  std::size_t unparsed = 0;
  while (Clock::now() < end) {
    auto d = consumer.next(std::chrono::milliseconds(200));
    if (!d) {
      if (latencies.count() > 0 && Clock::now() - last > std::chrono::duration<double>(idle_exit_s)) break;
      continue;
    }
    last = Clock::now();
    const auto now_ms = pix::broker::now_epoch_ms();
    consumer.ack(*d);
    boost::json::error_code ec;
    auto v = boost::json::parse(d->body, ec);
    const auto* at = !ec && v.is_object() ? v.as_object().if_contains("requestedAt") : nullptr;
    const auto requested = at && at->is_string() ? parse_rfc3339_ms(std::string(at->as_string())) : -1;
    if (requested < 0) {
      ++unparsed;  // e.g. a notification posted straight to /rabbit: not a saga payment
      continue;
    }
    latencies.record(std::chrono::milliseconds(std::max<std::int64_t>(0, now_ms - requested)));
  }
  boost::json::object out;
  out["count"] = latencies.count();
  out["other_notifications"] = unparsed;
  out["latency_us"] = pix::sim::latency_json(latencies);
  if (as_json) {
    std::printf("%s\n", boost::json::serialize(out).c_str());
  } else {
    auto ms = [&](double p) { return static_cast<long long>(latencies.value_at_percentile(p).count() / 1000000); };
    std::printf("%llu notifications; requested -> notified p50 %lld ms, p90 %lld ms, p99 %lld ms, max %lld ms\n",
                static_cast<unsigned long long>(latencies.count()), ms(50), ms(90), ms(99), ms(100));
  }
  return 0;
}
