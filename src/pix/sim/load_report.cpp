#include "pix/sim/load_report.hpp"

#include <fmt/format.h>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <cmath>

namespace pix::sim {

namespace detail {

struct Quantile {
  const char* name;
  double percentile;
};
constexpr std::array<Quantile, 4> kQuantiles{{{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99.9", 99.9}}};

double to_ms(std::chrono::nanoseconds d) {
  return static_cast<double>(d.count()) / 1e6;
}

// Rounded to 0.1 µs: finer than the histogram's precision anyway, and short to read.
double to_us(std::chrono::nanoseconds d) {
  return std::round(static_cast<double>(d.count()) / 100.0) / 10.0;
}

std::string latency_row(std::string_view name, const LatencyHistogram& h) {
  if (h.count() == 0) return fmt::format("  {:<12}{:>10}\n", name, "-");
  std::string row = fmt::format("  {:<12}", name);
  for (const auto& q : kQuantiles) row += fmt::format("{:>10.2f}", to_ms(h.value_at_percentile(q.percentile)));
  row += fmt::format("{:>10.2f}{:>10.2f}{:>12}\n", to_ms(h.max()), to_ms(h.mean()), h.count());
  return row;
}

bool open_loop(const LoadResult& r) {
  return r.mode == LoadOptions::Mode::kOpenLoop;
}

}  // namespace detail

boost::json::object latency_json(const LatencyHistogram& h) {
  boost::json::object o;
  o["count"] = h.count();
  o["min"] = detail::to_us(h.min());
  for (const auto& q : detail::kQuantiles) o[q.name] = detail::to_us(h.value_at_percentile(q.percentile));
  o["max"] = detail::to_us(h.max());
  o["mean"] = detail::to_us(h.mean());
  return o;
}

std::string render_table(const LoadResult& r) {
  const double seconds = std::chrono::duration<double>(r.elapsed).count();
  std::string out;
  if (detail::open_loop(r)) {
    out += fmt::format("mode          open loop, {:.0f} req/s intended\n", r.target_rate);
  } else {
    out += fmt::format("mode          closed loop, {} in flight\n", r.concurrency);
  }
  out += fmt::format("elapsed       {:.2f} s{}\n", seconds, r.stopped_early ? " (stopped early)" : "");
  out +=
      fmt::format("requests      sent {}  answered {}  transport errors {}", r.sent, r.completed, r.transport_errors());
  if (detail::open_loop(r)) out += fmt::format("  unsent {}", r.unsent);
  out += "\n";

  out += "status       ";
  if (r.status_counts.empty()) out += " none";
  for (const auto& [status, n] : r.status_counts) out += fmt::format(" {}: {}", status, n);
  out += "\n";

  out += "errors       ";
  if (r.transport_errors() == 0) out += " none";
  for (std::size_t k = 0; k < kTransportErrorKinds; ++k) {
    if (r.errors[k] != 0) out += fmt::format(" {}: {}", to_string(static_cast<TransportError>(k)), r.errors[k]);
  }
  out += "\n";

  out += fmt::format("throughput    {:.1f} answers/s", r.throughput());
  if (detail::open_loop(r) && r.target_rate > 0) {
    out += fmt::format(" ({:.1f}% of the intended rate)", 100.0 * r.throughput() / r.target_rate);
  }
  out += "\n";

  out += fmt::format("latency ms    {:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>12}\n", "p50", "p90", "p99", "p99.9", "max",
                     "mean", "count");
  out += detail::latency_row("2xx", r.latency_ok);
  out += detail::latency_row("all answers", r.latency_all);
  if (detail::open_loop(r)) out += detail::latency_row("send delay", r.send_delay);

  out += fmt::format("connections   opened {}  peak {}  reconnects {}\n", r.connections_opened, r.peak_connections,
                     r.reconnects);
  const double cpu = std::chrono::duration<double>(r.cpu_time).count();
  out += fmt::format("generator cpu {:.2f} s ({:.0f}% of one core)\n", cpu, seconds > 0 ? 100.0 * cpu / seconds : 0.0);
  return out;
}

std::string render_json(const LoadResult& r) {
  boost::json::object o;
  o["mode"] = detail::open_loop(r) ? "open_loop" : "closed_loop";
  if (detail::open_loop(r)) {
    o["target_rate"] = r.target_rate;
  } else {
    o["concurrency"] = r.concurrency;
  }
  o["elapsed_s"] = std::chrono::duration<double>(r.elapsed).count();
  o["stopped_early"] = r.stopped_early;
  o["sent"] = r.sent;
  o["completed"] = r.completed;
  o["unsent"] = r.unsent;
  o["ok"] = r.ok();
  o["server_errors"] = r.server_errors();
  o["transport_errors"] = r.transport_errors();
  boost::json::object status;
  for (const auto& [code, n] : r.status_counts) status[std::to_string(code)] = n;
  o["status"] = std::move(status);
  boost::json::object errors;
  for (std::size_t k = 0; k < kTransportErrorKinds; ++k) {
    errors[to_string(static_cast<TransportError>(k))] = r.errors[k];
  }
  o["errors"] = std::move(errors);
  o["throughput"] = r.throughput();
  boost::json::object latency;
  latency["ok"] = latency_json(r.latency_ok);
  latency["all"] = latency_json(r.latency_all);
  if (detail::open_loop(r)) latency["send_delay"] = latency_json(r.send_delay);
  o["latency_us"] = std::move(latency);
  o["connections"] =
      boost::json::object{{"opened", r.connections_opened}, {"peak", r.peak_connections}, {"reconnects", r.reconnects}};
  o["cpu_s"] = std::chrono::duration<double>(r.cpu_time).count();
  return boost::json::serialize(o);
}

}  // namespace pix::sim
